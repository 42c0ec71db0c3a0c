"""Booking page → gateway → signed list over real Mosquitto → a real kiosk process, then offline:
one appointment redeemed by a QR in a camera clip, one by typed code with the uplink cut, both
called at their slot ahead of a walk-in; the figures reach the gateway by kind once the link is back."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.commands import command_key, public_hex
from tests.device.helpers import example_table
from tests.device.kiosk_proc import KioskProc, write_config
from tests.device.test_appointments import write_qr_clip
from tests.gateway.booking.test_booking_api import OFFICE
from tests.gateway.conftest import wait_for

pytestmark = pytest.mark.slow  # a gateway, a kiosk process and a broker restart


def test_booked_codes_redeemed_by_qr_and_typed_offline_and_called_first(mosquitto, gateway_factory,
                                                                           tmp_path: Path):
    booking = {"enabled": True, "push_interval_s": 5.0, "offices": {OFFICE: {
        "fields": {"land": "Đất đai"}, "hours": ["00:00-23:30"], "slot_minutes": 30, "capacity": 2,
        "weekdays": list(range(7))}}}
    gw = gateway_factory(mosquitto.url, booking=booking)
    day = gw.app.state.kpi.today().isoformat()
    slots = gw.public.get("/api/v1/booking/slots", params={"office": OFFICE, "service_field": "land",
                                                            "day": day}).json()
    slot = next(s["slot"] for s in slots if s["free"] == 2)  # the next slot that has not started
    codes = [gw.public.post("/api/v1/booking", json={"office": OFFICE, "service_field": "land", "day": day,
                                                     "slot": slot}).json()["code"] for _ in range(2)]
    clip = write_qr_clip(tmp_path / "qr.avi", f"MOTCUA-HEN:{codes[1]}")
    pins = dict(example_table()["buttons"]["pins"])
    cfg = write_config(
        tmp_path / "k.toml", device_id="k03390-q1", office=OFFICE, device={"counter": 1},
        buttons={"pins": pins}, commands={"trusted_keys": [public_hex(command_key(gw.settings.data_dir))]},
        calling={"fields": {"land": "Đất đai"}, "appointments": {
            "call_early_min": 60, "qr_camera": f"video:{clip}"}},
    )
    kiosk = KioskProc(cfg, mosquitto.url, tmp_path / "kdata").start()
    try:
        wait_for(lambda: sum(kiosk.status()["appointments"].values()) == 2, timeout=90,
                 what="the signed day list reached the kiosk")
        wait_for(lambda: kiosk.status()["appointments"]["redeemed"] == 1, timeout=90,
                 what="the QR in the camera clip redeemed")
        mosquitto.stop()  # the uplink is cut: the kiosk goes on from its own list
        wait_for(lambda: not kiosk.status()["broker_connected"], what="kiosk offline")
        walk = kiosk.press("ticket")
        typed = httpx.post(f"{kiosk.base}/api/appointment", json={"code": codes[0].lower()}, timeout=30)
        typed = typed.json()
        assert typed["ok"] and typed["ticket_kind"] == "appointment" and typed["slot"] == slot
        again = httpx.post(f"{kiosk.base}/api/appointment", json={"code": codes[0]}, timeout=30)
        assert again.status_code == 409 and again.json()["kind"] == "appointment_used"
        called = [kiosk.press("next")["called_label"] for _ in range(3)]
        assert called == ["H0001", typed["label"], walk["label"]]  # both appointments before the walk-in
        kiosk.press("next")
        mosquitto.start()
        wait_for(lambda: kiosk.status()["outbox_depth"] == 0, timeout=120, what="kiosk outbox drained")
    finally:
        kiosk.terminate()

    def kinds() -> dict:
        return {r["kind"]: r for r in gw.public.get(f"/api/v1/offices/{OFFICE}/kinds").json()["by_kind"]}

    wait_for(lambda: kinds().get("walk_in", {}).get("served") == 1, timeout=90, what="figures at the gateway")
    got = kinds()
    body = gw.public.get(f"/api/v1/offices/{OFFICE}/kinds").json()
    appointments = {k: body["appointments"][k] for k in ("booked", "redeemed", "no_show_rate")}
    assert appointments == {"booked": 2, "redeemed": 2, "no_show_rate": None}  # the day goes on
    assert got["appointment"]["issued"] == 2 and got["appointment"]["called"] == 2
    assert got["appointment"]["service_field"] == "land" and got["appointment"]["mean_punctuality_min"] < 0
