"""Appointments at the entrance kiosk of shared lines, end to end: bookings made on the gateway's
booking API reach the entrance kiosk (a real process) as the signed list over real Mosquitto; one is
redeemed by its QR in a camera clip, two by typed code with the uplink cut; the booking's field picks
the line; counter kiosks (real processes) calling from those lines call each appointment at its slot
ahead of the walk-ins who came earlier, and the hall display and the voice name the counter that called.
The figures reach the gateway by kind once the uplink is back."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tomli_w

from device.audio.player import Announcer, call_words
from device.config import AudioConfig
from gateway.commands import command_key, public_hex
from gateway.config import Settings
from tests.device.shared_lines import Office
from tests.device.test_appointments import write_qr_clip
from tests.gateway.conftest import gateway_factory  # noqa: F401 - the gateway fixture, used here too
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow  # a gateway, three kiosk processes and a broker restart

OFFICE = "03390"
ENTRANCE = 4  # the entrance kiosk's [device] counter: the number of the office's shared lines
BOOKING = {"enabled": True, "push_interval_s": 5.0, "offices": {OFFICE: {
    "fields": {"land": "Đất đai", "civil": "Hộ tịch"}, "hours": ["00:00-23:30"], "slot_minutes": 30,
    "capacity": 2, "weekdays": list(range(7))}}}


def _registry(tmp: Path) -> Path:
    """The bundled registry with the entrance kiosk bound to the lines' number (counter 4), as
    ``make demo`` binds Bình Lư's (demo/run.py ``shared_line_registry``): the signed list goes to it."""
    registry = tomllib.loads(Settings().registry_file.read_text(encoding="utf-8"))
    for office in registry["offices"]:
        if office["code"] == OFFICE:
            # the lines' number and the counters that call from them (3 and 5): the gateway refuses a
            # serving counter the office does not have (unknown_counter)
            office["counters"] = max(office["counters"], ENTRANCE, 5)
    registry["devices"].append({"device_id": "kiosk-entrance", "office_code": OFFICE, "counter": ENTRANCE})
    path = tmp / "registry.toml"
    path.write_text(tomli_w.dumps(registry), encoding="utf-8")
    return path


def _book(gw, day: str, slot: str, field: str) -> str:
    r = gw.public.post("/api/v1/booking", json={"office": OFFICE, "service_field": field, "day": day,
                                               "slot": slot})
    assert r.status_code == 201, r.text
    return r.json()["code"]


def _spoken(data_dir: Path, label: str) -> np.ndarray:
    """The samples the simulated speaker wrote for the call of ``label``."""
    files = sorted((data_dir / "audio").glob(f"*-{label}.wav"))
    assert files, f"no call of {label} was spoken in {data_dir}"
    samples, _rate = sf.read(str(files[-1]), dtype="float32")
    return samples


def test_appointments_redeemed_at_the_entrance_called_by_counters_ahead_of_walk_ins(
        mosquitto, gateway_factory, tmp_path: Path):  # noqa: F811 - the fixture imported above
    gw = gateway_factory(mosquitto.url, booking=BOOKING, registry={"file": str(_registry(tmp_path))})
    day = gw.app.state.kpi.today().isoformat()
    slots = gw.public.get("/api/v1/booking/slots", params={"office": OFFICE, "service_field": "land",
                                                            "day": day}).json()
    slot = next(s["slot"] for s in slots if s["free"] == 2)  # the next slot that has not started
    qr_code, typed_code = _book(gw, day, slot, "land"), _book(gw, day, slot, "land")
    civil_code = _book(gw, day, slot, "civil")
    clip = tmp_path / "qr.avi"  # the camera's clip: written once the walk-ins have their tickets
    key = public_hex(command_key(gw.settings.data_dir))
    entrance = {"commands": {"trusted_keys": [key]},
                "calling": {"appointments": {"call_early_min": 60, "qr_camera": f"video:{clip}"}}}
    office = Office(tmp_path, mosquitto.url, {3: ["land"], 5: ["civil"]}, office=OFFICE,
                    entrance_counter=ENTRANCE, entrance=entrance)
    office.start()
    c3, c5 = office.counters[3], office.counters[5]
    try:
        walk_ins = [office.ticket("land")["label"] for _ in range(2)]
        assert walk_ins == ["1001", "1002"]  # citizens without a booking came first
        # then a citizen holds up the QR (the clip appears whole: the camera never opens half a file)
        write_qr_clip(tmp_path / "qr-writing.avi", f"MOTCUA-HEN:{qr_code}").replace(clip)
        wait_for(lambda: sum(office.entrance.status()["appointments"].values()) == 3, timeout=120,
                 what="the signed day list reached the entrance kiosk")
        wait_for(lambda: office.entrance.status()["appointments"]["redeemed"] == 1, timeout=120,
                 what="the QR in the camera clip redeemed at the entrance")

        mosquitto.stop()  # the uplink is cut; the office's LAN (loopback HTTP here) is up
        wait_for(lambda: not office.entrance.status()["broker_connected"], what="entrance offline")
        typed = office.redeem(typed_code.lower())
        assert typed["status"] == 200 and typed["ticket_kind"] == "appointment", typed
        assert typed["label"] == "H1004" and typed["slot"] == slot and typed["service_field"] == "land"
        civil = office.redeem(civil_code)
        assert civil["label"] == "H2001" and civil["service_field"] == "civil"  # the booking's line
        again = office.redeem(typed_code)
        assert again["status"] == 409 and again["kind"] == "appointment_used"
        wrong = office.redeem("ZZZZZZ")
        assert wrong["status"] == 409 and wrong["kind"] == "appointment_unknown"
        at_counter = c3.press("ticket")  # a counter issues nothing: tickets come from the entrance
        assert at_counter["kind"] == "line_ticket_at_entrance"

        called = [c3.press("next")["called_label"] for _ in range(4)]
        assert called == ["H1003", "H1004", "1001", "1002"]  # both appointments ahead of the walk-ins
        assert c5.press("next")["called_label"] == "H2001"
        hall = office.entrance.status()
        assert hall["message"] == "Mời số H2001 đến quầy số 5"  # the hall display names the counter
        assert {"label": "H1003", "counter": 3} in hall["line"]["calls"]
        assert c3.status()["serving"] == "1002"
        voice = Announcer(AudioConfig(), tmp_path / "voice", simulate=True)
        for label, counter in (("H1003", 3), ("H2001", 5)):
            wait_for(lambda label=label: list((office.entrance.data_dir / "audio").glob(f"*-{label}.wav")),
                     timeout=60, what=f"the call of {label} spoken")
            expected = voice.assemble(call_words(label, counter))  # "Mời số … đến quầy số <counter>"
            got = _spoken(office.entrance.data_dir, label)
            assert got.shape == expected.shape and np.abs(got - expected).max() < 2 / 32768

        mosquitto.start()
        wait_for(lambda: office.entrance.status()["outbox_depth"] == 0, timeout=120,
                 what="the entrance's outbox drained after the uplink came back")
    finally:
        office.stop()

    def figures() -> dict:
        return gw.public.get(f"/api/v1/offices/{OFFICE}/kinds").json()

    def called(body: dict) -> dict:  # (kind, field) -> tickets called
        return {(r["kind"], r["service_field"]): r["called"] for r in body["by_kind"]}

    want = {("appointment", "land"): 2, ("appointment", "civil"): 1, ("walk_in", "land"): 2}
    wait_for(lambda: called(figures()) == want, timeout=120, what=f"the figures at the gateway: {want}")
    appointments = figures()["appointments"]
    assert {k: appointments[k] for k in ("booked", "redeemed", "no_show_rate")} == {
        "booked": 3, "redeemed": 3, "no_show_rate": None}
    by_field = [(f["service_field"], f["booked"]) for f in appointments["by_field"]]
    assert by_field == [("civil", 1), ("land", 2)]
