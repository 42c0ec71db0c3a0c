"""Button dispatch helpers: the human pace rule.

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

import threading
import time
from collections.abc import Callable

TOO_FAST = "too_fast"


def press_group(button: str) -> str:
    return "ticket" if button == "ticket" else "counter"


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
