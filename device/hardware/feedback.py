"""Instant LED/buzzer feedback, switched on synchronously inside the button handler."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

FLASH_S = 0.15


class Feedback:
    """LEDs named like buttons (``rate`` lights for any ``rate_N``) and an optional buzzer."""

    def __init__(
        self, led_pins: dict[str, int], buzzer_pins: dict[str, int], factory: Any, pwm: bool = False
    ) -> None:
        from gpiozero import LED, PWMLED, Buzzer

        cls = PWMLED if pwm else LED
        self.leds = {name: cls(pin, pin_factory=factory) for name, pin in led_pins.items()}
        self.buzzer = Buzzer(next(iter(buzzer_pins.values())), pin_factory=factory) if buzzer_pins else None
        self._timers: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()

    def _led_for(self, button: str) -> Any:
        if button in self.leds:
            return self.leds[button]
        if button.startswith("rate_"):
            return self.leds.get("rate")
        return None

    def flash(self, button: str, seconds: float = FLASH_S) -> None:
        """Turn the LED and buzzer on now; a timer turns them off."""
        led = self._led_for(button)
        outs = [o for o in (led, self.buzzer) if o is not None]
        for o in outs:
            o.on()
        with self._lock:
            old = self._timers.pop(button, None)
            if old:
                old.cancel()
            t = threading.Timer(seconds, self._off, args=(outs,))
            t.daemon = True
            self._timers[button] = t
            t.start()

    @staticmethod
    def _off(outs: list[Any]) -> None:
        for o in outs:
            with contextlib.suppress(Exception):  # device closed at shutdown
                o.off()

    def check(self) -> list[tuple[str, bool, str]]:
        """Self-test: drive each output on and off. This proves the pin can be driven (a GPIO fault or
        a pin already in use fails); whether the LED lights or the buzzer sounds needs a person to see it."""
        results = []
        for name, dev in list(self.leds.items()) + ([("buzzer", self.buzzer)] if self.buzzer else []):
            try:
                dev.on()
                on = bool(dev.value)
                dev.off()
                off = not bool(dev.value)
            except Exception as exc:  # noqa: BLE001 - any GPIO fault is this output's failure
                results.append((name, False, f"cannot drive the pin: {exc}"[:200]))
                continue
            ok = on and off
            results.append((name, ok, "driven on/off (check by eye)" if ok else "pin did not follow"))
        return results

    def close(self) -> None:
        with self._lock:
            for t in self._timers.values():
                t.cancel()
        for dev in list(self.leds.values()) + ([self.buzzer] if self.buzzer else []):
            dev.close()
