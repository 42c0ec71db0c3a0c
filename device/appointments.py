"""Appointments at the kiosk: the day's list from the gateway, redeemed by code or QR, offline.

The list arrives as the signed ``load_appointments`` command (args ``contract.payloads.
AppointmentDay``; gateway/booking/push.py) and is kept in the kiosk's SQLite (``appointments``):
it replaces that day's bookings not yet redeemed (a cancelled booking is absent from the new list;
a redeemed one stays redeemed). From then on redeeming needs no network.

Redeem (typed on the touch display, or a QR read by the camera, device/qr_camera.py), with
``[calling.appointments]`` (device/config_queue.py):

- unknown code, a code of another day, or already redeemed: refused with a reason, counted
  (``refused.appointment_unknown`` / ``appointment_used``), nothing issued;
- on the entrance kiosk of shared lines (device/line_owner.py), a booking whose service field has no
  line there (not in ``[calling.fields]``): refused (``appointment_no_line``), since no counter would
  ever call it; otherwise the booking's field picks the line (and its number series);
- earlier than ``early_redeem_min`` before the slot: refused ("come back at HH:MM");
- later than ``late_min`` after the slot start: ``late_policy`` ``walk_in`` issues a walk-in
  ticket (the booking counts as redeemed late), ``refuse`` refuses;
- otherwise an ``appointment`` ticket with the booking's field and slot, called at its slot
  ahead of walk-ins (device/calling.py).

The booking is marked redeemed in the same transaction as its ticket and ``ticket.issued`` event,
so a crash can neither lose a redeemed ticket nor redeem a code twice. Bookings not redeemed
``no_show_min`` after their slot are marked ``no_show`` (:meth:`AppointmentDesk.sweep`).
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from contract.payloads import AppointmentDay, CommandRequest
from device.config_queue import calling_of
from device.queue import Outcome

QR_PREFIX = "MOTCUA-HEN:"
UNKNOWN, USED = "appointment_unknown", "appointment_used"  # refusal kinds (health ``refused``)
EARLY, LATE = "appointment_early", "appointment_late"
NO_LINE = "appointment_no_line"  # entrance kiosk: the booking's field has no line here


def normalise(raw: str) -> str:
    raw = raw.strip()
    if raw.upper().startswith(QR_PREFIX):
        raw = raw[len(QR_PREFIX):]
    return "".join(ch for ch in raw.upper() if ch.isalnum())[:16]


def _at(day: str, slot: str, tz: Any) -> datetime:
    return datetime.fromisoformat(f"{day}T{slot}").replace(tzinfo=tz)


class AppointmentDesk:
    """``kiosk`` gives the live config, engine, store, clock, lock and dispatch (for printing)."""

    def __init__(self, kiosk: Any) -> None:
        self.kiosk = kiosk
        self._lock = threading.Lock()
        self._last_sweep = float("-inf")

    # ------------------------------------------------------------------ the day's list

    def load(self, day: AppointmentDay) -> int:
        iso = day.service_day.isoformat()
        rows = [(iso, a.code, a.service_field, a.slot) for a in day.appointments]
        with self.kiosk.store.tx() as cur:
            cur.execute("DELETE FROM appointments WHERE service_day=? AND state='booked'", (iso,))
            cur.executemany(
                "INSERT INTO appointments(service_day, code, service_field, slot) VALUES(?,?,?,?) "
                "ON CONFLICT(service_day, code) DO NOTHING", rows)
        return len(rows)

    def load_command(self, req: CommandRequest) -> tuple[bool, str, dict]:
        try:
            day = AppointmentDay.model_validate(req.args)
        except ValidationError as exc:
            return False, f"bad appointment list: {exc.errors()[0]['msg']}"[:200], {}
        n = self.load(day)
        return True, f"{n} appointments for {day.service_day}", {"service_day": day.service_day.isoformat(),
                                                                 "appointments": n}

    # ------------------------------------------------------------------ redeem

    def redeem(self, raw: str, source: str = "typed") -> Outcome:
        """Redeem a code (typed or from a QR); prints and announces like a ticket button."""
        k = self.kiosk
        if k.line_client is not None:  # a counter on shared lines: the entrance kiosk redeems codes
            from device.line_client import MSG_NOT_HERE, NOT_HERE

            return Outcome(False, f"appointment_{source}", MSG_NOT_HERE, kind=NOT_HERE)
        with k.lock, self._lock:
            out = self._redeem(normalise(raw))
            out.action = f"appointment_{source}"
            if out.ok and k.entrance is not None:  # shared lines: which line, which counters
                out.message += f" – {k.entrance.line_text(out.service_field)}"
            if out.ok:
                k.dispatch.print_ticket(out)
            if source == "qr":
                k.display.qr_redeemed(out)
            k.after(out)
            return out

    def _refuse(self, kind: str, message: str) -> Outcome:
        self.kiosk.store.bump("refused." + kind)
        return Outcome(False, "appointment", message, kind=kind)

    def _redeem(self, code: str) -> Outcome:
        k = self.kiosk
        calling, tz = calling_of(k.cfg).appointments, k.cfg.device.tz
        today = k.engine.local_date().isoformat()
        with k.store.read() as cur:
            row = cur.execute(
                "SELECT service_field, slot, state FROM appointments WHERE service_day=? AND code=?",
                (today, code),
            ).fetchone()
            other = cur.execute("SELECT service_day FROM appointments WHERE code=? AND service_day<>?",
                                (code, today)).fetchone()
        if row is None:
            when = f" Lịch hẹn của mã này là ngày {other[0]}." if other else ""
            return self._refuse(UNKNOWN, f"Không tìm thấy lịch hẹn hôm nay với mã {code}.{when} "
                                         "(no appointment today)")
        field, slot, state = row
        if k.line_owner is not None and field not in calling_of(k.cfg).fields:  # no counter would call it
            return self._refuse(NO_LINE, f"Lĩnh vực của lịch hẹn ({field}) không có ở máy cấp số này, "
                                         "vui lòng báo cán bộ (no line for this field)")
        if state != "booked":
            return self._refuse(USED, f"Mã {code} đã được dùng (already redeemed)")
        now, start = k.clock.wall().astimezone(tz), _at(today, slot, tz)
        if now < start - timedelta(minutes=calling.early_redeem_min):
            back = (start - timedelta(minutes=calling.early_redeem_min)).strftime("%H:%M")
            return self._refuse(EARLY, f"Quá sớm: lịch hẹn lúc {slot}, vui lòng lấy số từ {back} (too early)")
        late = now > start + timedelta(minutes=calling.late_min)
        if late and calling.late_policy == "refuse":
            return self._refuse(LATE, f"Đã quá giờ hẹn {slot} hơn {calling.late_min} phút: vui lòng lấy số "
                                      "thường (late: take a walk-in ticket)")

        def mark(cur: sqlite3.Cursor, _day: str) -> None:
            cur.execute("UPDATE appointments SET state='redeemed' WHERE service_day=? AND code=?",
                        (today, code))

        if late:
            out = k.engine.issue(kind="walk_in", service_field=field, also=mark)
            if out.ok:
                out.message = f"Bạn đến muộn quá {calling.late_min} phút: số thường {out.label} (late)"
            return out
        out = k.engine.issue(kind="appointment", service_field=field, slot=slot, appointment_code=code,
                             also=mark)
        if out.ok:
            out.message = f"Số hẹn của bạn: {out.label}, được gọi lúc {slot}"
        return out

    # ------------------------------------------------------------------ no-shows and display

    def sweep_due(self) -> int:
        """:meth:`sweep` at most once a minute (called from the kiosk's tick)."""
        now = self.kiosk.clock.monotonic()
        if now - self._last_sweep < 60:
            return 0
        self._last_sweep = now
        return self.sweep()

    def sweep(self) -> int:
        """Mark today's bookings not redeemed ``no_show_min`` after their slot as no-shows."""
        k = self.kiosk
        now = k.clock.wall().astimezone(k.cfg.device.tz)
        cutoff = (now - timedelta(minutes=calling_of(k.cfg).appointments.no_show_min))
        with k.store.tx() as cur:
            return cur.execute(
                "UPDATE appointments SET state='no_show' WHERE state='booked' AND "
                "(service_day<? OR (service_day=? AND slot<?))",
                (cutoff.date().isoformat(), cutoff.date().isoformat(), cutoff.strftime("%H:%M"))).rowcount
