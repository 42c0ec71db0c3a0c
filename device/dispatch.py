"""Button dispatch: a press (after debounce, device/hardware/buttons.py) → the human pace rule → the
queue engine → printer, voice, display and vision hooks (:class:`ButtonDispatch`).

The human pace rule (:class:`PressPacer`):

A press that comes sooner than ``[buttons] min_gap_ms`` after the previous press of the same group is
dropped and counted (``refused.too_fast``): no person presses two counter buttons 100 ms apart, a
script or a jammed key does. The groups are the citizen's ticket button at the door (``ticket``) and
the buttons at the counter (officer: ``next``, ``recall``, ``no_show``; citizen: ``rate_N``), which
are pressed in turn across one desk. A rating pressed within the gap after the officer's ``next``
opened its prompt is therefore dropped too: the citizen has not read the prompt yet.

The clock is the monotonic clock. A dropped press still restarts the gap, so a burst is dropped
whole until the buttons have been quiet for ``min_gap_ms``. This is separate from the debounce in
device/hardware/buttons.py, which removes contact bounce (edges microseconds apart) per button.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from device.line_client import MSG_NOT_HERE, NOT_HERE
from device.printer import TicketInfo
from device.queue import REFUSED_PREFIX, Outcome

log = logging.getLogger("motcua.kiosk.dispatch")
TOO_FAST = "too_fast"
TICKET_BUTTONS = {"ticket": "walk_in", "priority": "priority"}  # button at the door -> ticket kind
ENTRANCE_ONLY = "line_entrance_choose_field"
MSG_ENTRANCE = "Vui lòng chọn lĩnh vực trên màn hình (choose a service field; the counters call from here)"


def press_group(button: str) -> str:
    return "ticket" if button in TICKET_BUTTONS or button.startswith(("field_", "priority_")) else "counter"


class PressPacer:
    def __init__(self, min_gap_ms: int, mono: Callable[[], float] = time.monotonic) -> None:
        self.min_gap_s, self.mono = min_gap_ms / 1000.0, mono
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, button: str) -> bool:
        """Record a press; False if it came faster than a person could press."""
        group = press_group(button)
        with self._lock:
            now = self.mono()
            last = self._last.get(group)
            self._last[group] = now
        return last is None or now - last >= self.min_gap_s

    def wait_quiet(self, button: str) -> None:
        """Simulation only: wait as a person would before pressing ``button`` (see /api/sim/press)."""
        while True:
            with self._lock:
                last = self._last.get(press_group(button))
                wait = 0.0 if last is None else self.min_gap_s - (self.mono() - last)
            if wait <= 0:
                return
            time.sleep(wait + 0.001)


class ButtonDispatch:
    """One press, under the kiosk's lock. ``kiosk`` gives the live config, engine, printer, audio,
    display, vision and publisher (read at each press: a config reload replaces some of them)."""

    def __init__(self, kiosk: Any, pacer: PressPacer) -> None:
        self.kiosk, self.pacer = kiosk, pacer

    def press(self, name: str) -> Outcome:
        k = self.kiosk
        with k.lock:
            if not self.pacer.allow(name):
                k.store.bump(REFUSED_PREFIX + TOO_FAST)
                return Outcome(False, name, "", kind=TOO_FAST)  # display unchanged: nobody pressed this
            out = self._run(name)
            if out.prompt_label:  # the visit just completed: its citizen is asked to rate it
                k.audio.ask_rating(out.prompt_label)
            if name in ("next", "recall") and out.called_label:
                k.audio.announce(out.called_label, k.cfg.device.counter)
                k.display.called = out.called_label
            self._vision_hooks(name, out)
            k.after(out)
            return out

    def _run(self, name: str) -> Outcome:
        engine, client = self.kiosk.engine, self.kiosk.line_client
        if client is not None and name in TICKET_BUTTONS:  # a counter on shared lines issues nothing
            return Outcome(False, name, MSG_NOT_HERE, kind=NOT_HERE)
        if client is not None and name in ("next", "recall", "no_show"):
            return client.press(name)  # a request to the entrance kiosk (device/line_client.py)
        if self.kiosk.line_owner is not None:  # the entrance kiosk: tickets per field, no calling
            return self._entrance(name)
        if name in TICKET_BUTTONS:
            out = engine.issue(kind=TICKET_BUTTONS[name])
            if out.ok:
                self.print_ticket(out)
            return out
        if name == "next":
            return engine.next()
        if name == "recall":
            return engine.recall()
        if name == "no_show":
            return engine.no_show()
        if name.startswith("rate_"):
            return engine.rate(int(name[5:]))
        return Outcome(False, name, f"unknown button {name}")

    def _entrance(self, name: str) -> Outcome:
        if name == "priority" or name.startswith(("field_", "priority_")):  # device/entrance.py
            return self.kiosk.entrance.press(name)
        return Outcome(False, name, MSG_ENTRANCE, kind=ENTRANCE_ONLY)

    def print_ticket(self, out: Outcome) -> None:
        k = self.kiosk
        k.publisher.kick.set()  # publish while the ticket prints
        ticket = TicketInfo(
            out.label or "",
            out.ticket_no or 0,
            k.cfg.device.counter,
            k.cfg.device.office_code,
            out.service_day or "",
            out.waiting_ahead or 0,
            k.clock.wall().astimezone(k.cfg.device.tz),
            office_name=k.cfg.device.office_name,
            **self._line_info(out),
        )
        k.printer.last_error = None  # so a repeated fault is stamped again
        path = k.printer.print_ticket(ticket)
        k.errors.note("printer", k.printer.last_error)
        out.print_file = str(path) if path else None
        k.display.last_ticket = out.label

    def _line_info(self, out: Outcome) -> dict[str, str]:
        """On the entrance kiosk: the ticket names its field's line and counters, not the entrance."""
        entrance, field = self.kiosk.entrance, out.service_field
        return entrance.print_info(field) if entrance is not None and field is not None else {}

    def _vision_hooks(self, name: str, out: Outcome) -> None:
        vision = self.kiosk.vision
        if vision is None or not out.ok:
            return
        try:
            if name == "next" and out.completed_no:
                vision.visit_ended(out.completed_no)
            if name == "next" and out.called_label and out.ticket_no:
                vision.visit_started(out.ticket_no)
            elif name == "no_show" and out.ticket_no:
                vision.visit_discarded(out.ticket_no)
        except Exception as exc:  # vision is optional: a failing hook must not fail the press
            log.exception("vision hook failed")
            self.kiosk.last_error = f"vision: {exc}"[:200]
