"""Buttons on GPIO with our own debounce (gpiozero's mock pins ignore ``bounce_time``).

Debounce rule: a press edge is accepted only if no edge (press or release) of the same button
happened in the last ``debounce_ms``. Contact bounce produces edges microseconds apart, so it is
ignored; a human pressing again is hundreds of milliseconds later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from device.hardware.feedback import Feedback


class Debouncer:
    def __init__(self, debounce_s: float, mono: Callable[[], float] = time.monotonic) -> None:
        self.debounce_s, self.mono = debounce_s, mono
        self._last_edge: dict[str, float] = {}
        self.ignored = 0

    def edge(self, name: str, pressed: bool) -> bool:
        """Record an edge; True if it is an accepted press."""
        now = self.mono()
        last = self._last_edge.get(name)
        self._last_edge[name] = now
        if not pressed:
            return False
        if last is not None and now - last < self.debounce_s:
            self.ignored += 1
            return False
        return True

    def quiet_for(self, name: str) -> float:
        """Seconds since the last edge of ``name`` (inf if none)."""
        last = self._last_edge.get(name)
        return float("inf") if last is None else self.mono() - last


class ButtonBank:
    """gpiozero Buttons (active low, pull-up) → debounce → feedback → ``on_press(name)``.

    Feedback is switched on synchronously in the pin callback, before the action runs.
    """

    def __init__(
        self,
        pins: dict[str, int],
        debounce_ms: int,
        factory: Any,
        on_press: Callable[[str], Any],
        feedback: Feedback | None = None,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        from gpiozero import Button

        self.on_press, self.feedback = on_press, feedback
        self.debouncer = Debouncer(debounce_ms / 1000.0, mono)
        self._lock = threading.RLock()
        self._sim_lock = threading.Lock()
        self._result: dict[str, Any] = {}
        self.pressed_count: dict[str, int] = dict.fromkeys(pins, 0)
        self.buttons: dict[str, Any] = {}
        for name, pin in pins.items():
            b = Button(pin, pull_up=True, bounce_time=None, pin_factory=factory)
            b.when_pressed = self._make_cb(name, True)
            b.when_released = self._make_cb(name, False)
            self.buttons[name] = b

    def _make_cb(self, name: str, pressed: bool) -> Callable[[], None]:
        return lambda: self._edge(name, pressed)

    def _edge(self, name: str, pressed: bool) -> None:
        with self._lock:
            if not self.debouncer.edge(name, pressed):
                return
            self.pressed_count[name] += 1
            if self.feedback is not None:
                self.feedback.flash(name)
            try:
                self._result[name] = self.on_press(name)
            except Exception as exc:  # a failing action must never kill the GPIO callback thread
                self._result[name] = exc

    # ------------------------------------------------------------------ simulation

    def sim_press(self, name: str) -> Any:
        """Drive the mock pin low then high, as a finger would, after the debounce window is quiet.

        Returns what the handler returned for this press. Only valid with gpiozero's MockFactory.
        """
        btn = self.buttons[name]
        with self._sim_lock:
            wait = self.debouncer.debounce_s - self.debouncer.quiet_for(name)
            if wait > 0:
                time.sleep(wait + 0.001)
            self._result.pop(name, None)
            btn.pin.drive_low()
            result = self._result.pop(name, None)
            btn.pin.drive_high()
        if isinstance(result, Exception):
            raise result
        return result

    def close(self) -> None:
        for b in self.buttons.values():
            b.close()
