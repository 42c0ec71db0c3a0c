"""The citizen's side of the entrance kiosk (``[line] role = "entrance"``): tickets per service field
from the touch page (``/lay-so``), the field buttons and the priority buttons, and what the citizen is
told about where to go. The counters' side (calls, ratings) is device/line_owner.py.

Buttons (``[buttons.pins]``, gpiozero like every button, device/hardware/buttons.py):

* ``field_<code>``: a walk-in ticket in that field's line;
* ``priority_<code>``: a priority ticket in that field's line (one priority button per field);
* ``priority`` (one global button): arms priority for ``[line] priority_window_s``; the next field
  button pressed within it issues a priority ticket. Arming is not a ticket: a citizen who walks away
  leaves nothing behind, and the next citizen's field button issues a walk-in once the window is over.
  The window is measured on the monotonic clock.

All of them share the door's human-pace group with the touch choices (device/dispatch.py), so a
double tap or a bouncing key never issues a second ticket. Nobody checks the priority entitlement at
the machine; the officer does at the counter, as with a counter's own priority button.

Where to go: the entrance knows which counters call from a field from the counters' own requests
(each names its fields) and from today's calls in its ``kiosk.db``, so the ticket and the page can
name them ("Quầy phục vụ: 1, 2"); the hall display and the voice name the counter at the call.
"""

from __future__ import annotations

from typing import Any

from device.config_line import line_of
from device.config_queue import calling_of
from device.dispatch import TOO_FAST
from device.queue import REFUSED_PREFIX, Outcome

UNKNOWN_FIELD = "line_unknown_field"
PRIORITY_ARMED = "line_priority_armed"
KINDS = ("walk_in", "priority")
MSG_TOO_FAST = "Vừa có số được in, vui lòng chờ một chút rồi chạm lại (too fast: not issued)"


class EntranceDesk:
    """``kiosk`` gives the live config, engine, store, clock, lock, pacer, dispatch and line owner."""

    def __init__(self, kiosk: Any) -> None:
        self.kiosk = kiosk
        self.armed_at: float | None = None  # monotonic time the global priority button was pressed
        self.fields_of_counter: dict[int, tuple[str, ...]] = {}  # from the counters' requests

    # ------------------------------------------------------------------ touch page and buttons

    def issue(self, field: str, kind: str) -> Outcome:
        """A touch choice: a ticket of ``kind`` in ``field``'s line, under the door's human pace."""
        k = self.kiosk
        if field not in calling_of(k.cfg).fields or kind not in KINDS:  # a stale page; not a press
            return self._unknown(field, kind, "ticket")
        # The pace is checked when the tap arrives, before waiting for the lock: a second tap that came
        # while the first ticket was printing is still a double tap.
        if not k.pacer.allow("ticket"):  # the door's human pace (device/dispatch.py)
            k.store.bump(REFUSED_PREFIX + TOO_FAST)
            return Outcome(False, "ticket", MSG_TOO_FAST, kind=TOO_FAST)
        with k.lock:
            out = self.ticket(field, kind)
            k.after(out)
            return out

    def press(self, name: str) -> Outcome:
        """A field or priority button (already paced and locked by device/dispatch.py)."""
        if name == "priority":
            self.armed_at = self.kiosk.clock.monotonic()
            window = line_of(self.kiosk.cfg).priority_window_s
            return Outcome(True, name, f"Đã chọn SỐ ƯU TIÊN: mời bấm nút lĩnh vực trong {window:g} giây "
                                       "(priority: now press a field button)", kind=PRIORITY_ARMED)
        if name.startswith("priority_"):
            return self.ticket(name[9:], "priority", action=name)
        return self.ticket(name[6:], "priority" if self._take_armed() else "walk_in", action=name)

    def _take_armed(self) -> bool:
        armed, self.armed_at = self.armed_at, None
        window = line_of(self.kiosk.cfg).priority_window_s
        return armed is not None and self.kiosk.clock.monotonic() - armed <= window

    def ticket(self, field: str, kind: str, action: str = "ticket") -> Outcome:
        """Issue and print a ticket in ``field``'s line; the message says which line and counters."""
        k = self.kiosk
        fields = calling_of(k.cfg).fields
        if field not in fields or kind not in KINDS:
            return self._unknown(field, kind, action)
        out = k.engine.issue(kind=kind, service_field=field)
        out.action = action
        if out.ok:
            prefix = "Số ưu tiên của bạn" if kind == "priority" else "Số của bạn"
            out.message = f"{prefix}: {out.label} – {self.line_text(field)}"
            k.dispatch.print_ticket(out)
        return out

    def _unknown(self, field: str, kind: str, action: str) -> Outcome:
        self.kiosk.store.bump(REFUSED_PREFIX + UNKNOWN_FIELD)
        return Outcome(False, action, f"Lĩnh vực này không có ở máy cấp số, vui lòng chọn lại (unknown field "
                                      f"{field[:40]!r} or kind {kind[:20]!r})", kind=UNKNOWN_FIELD)

    # ------------------------------------------------------------------ where to go

    def saw_request(self, counter: int, fields: list[str]) -> None:
        """A counter's request named the fields it serves (device/line_owner.py)."""
        if fields:
            self.fields_of_counter[counter] = tuple(fields)

    def counters_for(self, field: str) -> list[int]:
        """The counters known to call from ``field``: named in their requests, or seen calling today."""
        day = self.kiosk.engine.local_date().isoformat()
        with self.kiosk.store.read() as db:
            called = {r[0] for r in db.execute(
                "SELECT DISTINCT called_counter FROM tickets WHERE service_day=? AND service_field=? "
                "AND called_counter IS NOT NULL", (day, field))}
        named = {c for c, fs in self.fields_of_counter.items() if field in fs}
        return sorted(called | named)

    def line_text(self, field: str) -> str:
        """The line of a ticket in ``field`` and where to go: "Đất đai. Quầy phục vụ: 1, 2. …"."""
        return f"{calling_of(self.kiosk.cfg).fields.get(field, field)}. {self.where(field)}"

    def where(self, field: str | None) -> str:
        """Where the citizen of a ticket in ``field`` goes, in Vietnamese."""
        counters = self.counters_for(field) if field else []
        then = "Khi đến lượt, màn hình và loa sẽ báo số quầy của bạn."
        return f"{_counters_text(counters)}. {then}" if counters else then

    def print_info(self, field: str) -> dict[str, str]:
        """What the printed ticket says instead of the entrance's own counter number."""
        counters = self.counters_for(field)
        return {"line": calling_of(self.kiosk.cfg).fields.get(field, field),
                "where": _counters_text(counters) if counters else "Màn hình sẽ báo quầy"}

    def status(self) -> dict[str, Any]:
        """For the touch page: each field's label, waiting count and counters."""
        with self.kiosk.store.read() as db:
            waiting = dict(db.execute("SELECT service_field, count(*) FROM tickets WHERE state='waiting' "
                                      "GROUP BY service_field"))
        return {"fields": [{"code": c, "label": label, "waiting": waiting.get(c, 0),
                            "counters": self.counters_for(c)}
                           for c, label in calling_of(self.kiosk.cfg).fields.items()]}


def _counters_text(counters: list[int]) -> str:
    return f"Quầy phục vụ: {', '.join(map(str, counters))}"
