"""Appointments at the kiosk (in-process kiosk on gpiozero's MockFactory, real SQLite, fake clock):
the day's list, redeem by typed code and by a QR in a camera clip, calling at the slot, late and
no-show rules, and the list surviving a restart offline."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import qrcode

from contract.payloads import CommandRequest
from device.app import Kiosk
from device.clock import FakeClock
from device.config import parse_config
from device.qr_camera import QrCamera
from device.vision.camera import VideoFileSource
from tests.device.helpers import VN, example_table, outbox_events
from tests.support.wait import wait_for

DAY = "2026-11-30"
LIST = {"service_day": DAY, "appointments": [
    {"code": "K7P2QX", "service_field": "land", "slot": "09:30"},
    {"code": "ABCDEF", "service_field": "civil", "slot": "10:00"},
    {"code": "HJKMNP", "service_field": "land", "slot": "08:00"},
]}


def make_kiosk(tmp: Path, clock: FakeClock, fields: dict | None = None, line: dict | None = None,
               **appointments) -> Kiosk:
    data = example_table()
    fields = fields or {"land": "Đất đai", "civil": "Hộ tịch"}
    data["calling"] = {"policy": "priority_first", "fields": fields,
                       "appointments": {"late_min": 15, "early_redeem_min": 60, "no_show_min": 30,
                                        **appointments}}
    if line:
        data["line"] = line
    return Kiosk(parse_config(data), tmp / "k", simulate=True, clock=clock)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 30, 9, 0, tzinfo=VN))


def _load(kiosk: Kiosk, body: dict = LIST) -> tuple[bool, str, dict]:
    req = CommandRequest(cmd_id=str(uuid.uuid4()), name="load_appointments", args=body,
                         issued_at=datetime.now(VN))
    return kiosk.appointments.load_command(req)


def test_typed_code_gets_an_appointment_ticket_called_at_its_slot_ahead_of_walk_ins(tmp_path, clock):
    kiosk = make_kiosk(tmp_path, clock)
    try:
        assert _load(kiosk)[0]
        walk = kiosk.engine.issue()
        appt = kiosk.appointments.redeem(" k7p2-qx ")  # typed in lower case with a dash
        assert appt.ok and appt.label == "H0002" and appt.ticket_kind == "appointment"
        assert appt.slot == "09:30" and appt.service_field == "land" and "09:30" in appt.message
        kiosk.engine.issue()
        assert kiosk.engine.next().called_label == walk.label  # 09:00: the appointment is not due yet
        clock.advance(30 * 60)  # 09:30
        assert kiosk.engine.next().called_label == "H0002"  # ahead of walk-in 0003
        issued = [e for e in outbox_events(kiosk.store) if e["type"] == "ticket.issued"]
        assert issued[1]["data"] | {} == issued[1]["data"] and issued[1]["data"]["slot"] == "09:30"
        assert kiosk.appointments.redeem("K7P2QX").kind == "appointment_used"
        assert kiosk.engine.snapshot()["appointments"] == {"booked": 2, "redeemed": 1, "no_show": 0}
    finally:
        kiosk.shutdown()


def test_refusals_early_unknown_other_day_and_late_rules(tmp_path, clock):
    kiosk = make_kiosk(tmp_path, clock)
    try:
        _load(kiosk)
        _load(kiosk, {"service_day": "2026-12-01", "appointments": [
            {"code": "QRSTUV", "service_field": "land", "slot": "08:00"}]})
        clock.jump_wall(datetime(2026, 11, 30, 8, 20, tzinfo=VN) - clock.wall())
        early = kiosk.appointments.redeem("ABCDEF")  # 10:00 slot, 60 min early window opens at 09:00
        assert not early.ok and "09:00" in early.message
        other = kiosk.appointments.redeem("QRSTUV")
        assert not other.ok and "2026-12-01" in other.message
        assert not kiosk.appointments.redeem("ZZZZZZ").ok
        clock.jump_wall(datetime(2026, 11, 30, 8, 16, tzinfo=VN) - clock.wall())
        late = kiosk.appointments.redeem("HJKMNP")  # 08:00 slot, 16 min late, late_policy walk_in
        assert late.ok and late.ticket_kind == "walk_in" and "muộn" in late.message
        refused = kiosk.store.counters("refused.")
        assert refused["appointment_early"] == 1 and refused["appointment_unknown"] == 2
    finally:
        kiosk.shutdown()


def test_entrance_kiosk_redeems_into_the_bookings_line_and_refuses_a_field_it_has_no_line_for(
        tmp_path, clock):
    """On the entrance of shared lines the booking's field picks the line (its number series); a
    booking of a field without a line there is refused, never issued into a line nobody calls."""
    line = {"role": "entrance", "token": "office-lan-secret-0123456789"}
    kiosk = make_kiosk(tmp_path, clock, fields={"land": "Đất đai"}, line=line)
    try:
        _load(kiosk)
        assert kiosk.appointments.redeem("K7P2QX").label == "H1001"  # land's series (1001 ...)
        refused = kiosk.appointments.redeem("ABCDEF")  # a civil booking: no civil line at this kiosk
        assert not refused.ok and refused.kind == "appointment_no_line" and "civil" in refused.message
        assert kiosk.store.counters("refused.")["appointment_no_line"] == 1
        assert kiosk.engine.snapshot()["appointments"]["redeemed"] == 1  # the booking stays unused
        assert [e["data"]["label"] for e in outbox_events(kiosk.store) if e["type"] == "ticket.issued"] == [
            "H1001"]
    finally:
        kiosk.shutdown()


def test_late_policy_refuse_and_no_show_sweep(tmp_path, clock):
    kiosk = make_kiosk(tmp_path, clock, late_policy="refuse")
    try:
        _load(kiosk)
        clock.jump_wall(datetime(2026, 11, 30, 8, 31, tzinfo=VN) - clock.wall())
        assert kiosk.appointments.redeem("HJKMNP").kind == "appointment_late"
        assert kiosk.appointments.sweep() == 1  # 08:00 + 30 min passed
        assert kiosk.engine.snapshot()["appointments"]["no_show"] == 1
    finally:
        kiosk.shutdown()


def test_a_new_list_replaces_bookings_but_keeps_redeemed_and_survives_a_restart(tmp_path, clock):
    kiosk = make_kiosk(tmp_path, clock)
    _load(kiosk)
    assert kiosk.appointments.redeem("K7P2QX").ok
    cancelled = {"service_day": DAY, "appointments": [LIST["appointments"][0], LIST["appointments"][2]]}
    assert _load(kiosk, cancelled)[2] == {"service_day": DAY, "appointments": 2}
    kiosk.shutdown()
    again = make_kiosk(tmp_path, clock)  # offline: nothing from the gateway after the restart
    try:
        assert again.engine.snapshot()["appointments"] == {"booked": 1, "redeemed": 1, "no_show": 0}
        assert again.appointments.redeem("ABCDEF").kind == "appointment_unknown"  # was cancelled
        assert again.appointments.redeem("K7P2QX").kind == "appointment_used"
    finally:
        again.shutdown()


@pytest.mark.parametrize("args", [
    {"service_day": DAY, "appointments": [{"code": "O0O0O0", "service_field": "land", "slot": "09:00"}]},
    {"service_day": DAY, "appointments": [{"code": "ABCDEF", "service_field": "land", "slot": "9:00"}]},
    {"service_day": DAY, "appointments": [{"code": "ABCDEF", "service_field": "land", "slot": "09:00",
                                           "phone": "0912345678"}]},  # no personal data in the list
    {"service_day": "tomorrow", "appointments": []},
])
def test_malformed_lists_are_refused_and_change_nothing(tmp_path, clock, args):
    kiosk = make_kiosk(tmp_path, clock)
    try:
        _load(kiosk)
        ok, message, _ = _load(kiosk, args)
        assert not ok and message.startswith("bad appointment list")
        assert kiosk.engine.snapshot()["appointments"]["booked"] == 3
    finally:
        kiosk.shutdown()


def write_qr_clip(path: Path, text: str, frames: int = 40) -> Path:
    """A 640x480 camera clip: a phone screen with the QR, held slightly tilted, with sensor noise."""
    qr = np.array(qrcode.make(text, box_size=5, border=4).convert("L"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    rng = np.random.default_rng(7)
    for i in range(frames):
        frame = np.full((480, 640, 3), 70, np.uint8)
        if i >= 10:  # the citizen raises the phone after a second
            h, w = qr.shape
            y, x = 120 + (i % 5), 220 + 2 * (i % 7)
            frame[y:y + h, x:x + w] = qr[:, :, None]
            rot = cv2.getRotationMatrix2D((320, 240), 8, 1.0)
            frame = cv2.warpAffine(frame, rot, (640, 480), borderValue=(70, 70, 70))
        noisy = np.clip(frame + rng.normal(0, 8, frame.shape), 0, 255).astype(np.uint8)
        writer.write(noisy)
    writer.release()
    return path


@pytest.mark.slow  # a camera clip read through at 50 fps (about 13 s on the shared machine)
def test_qr_from_a_camera_clip_redeems_once_and_keeps_no_frame(tmp_path, clock):
    kiosk = make_kiosk(tmp_path, clock)
    clip = write_qr_clip(tmp_path / "qr.avi", "MOTCUA-HEN:K7P2QX")
    got: list = []
    try:
        _load(kiosk)
        cam = QrCamera(f"video:{clip}", lambda text, src: got.append(kiosk.appointments.redeem(text, src)),
                       fps=50)
        cam.start()
        wait_for(lambda: cam.frames >= 60, timeout=60, what="the clip read through once")
        cam.stop()
        assert len(got) == 1 and got[0].ok and got[0].label == "H0001" and got[0].action == "appointment_qr"
        assert cam.redeemed == 1 and cam.last_error is None
        files = {p.name for p in (tmp_path / "k").rglob("*") if p.is_file()}
        printed = {"2026-11-30-H0001.bin", "2026-11-30-H0001.png"}  # the ticket the file printer made
        assert files - printed <= {"kiosk.db", "kiosk.db-shm", "kiosk.db-wal", "kiosk.highwater.json"}, files
    finally:
        kiosk.shutdown()


def test_a_foreign_qr_is_ignored(tmp_path):
    cam = QrCamera("video:/nonexistent", lambda *_: pytest.fail("redeemed a foreign QR"))
    assert not cam.seen("https://example.com/pay?amount=100000")
    assert cam.ignored == 1
    src = VideoFileSource(tmp_path / "none.avi")
    with pytest.raises(Exception, match="not found"):
        src.open()
