"""Instant LED/buzzer feedback, switched on synchronously inside the button handler."""

from __future__ import annotations

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

    def _led_for(self, button: str) -> Any:
        if button in self.leds:
            return self.leds[button]
        if button.startswith("rate_"):
            return self.leds.get("rate")
        return None

    def flash(self, button: str, seconds: float = FLASH_S) -> None:
        """Turn the LED and buzzer on now (synchronously, before the action runs); gpiozero's own
        ``blink``/``beep`` thread (one cycle) turns them off after ``seconds``."""
        led = self._led_for(button)
        for out in (led, self.buzzer):
            if out is None:
                continue
            out.on()
            if out is self.buzzer:
                out.beep(on_time=seconds, off_time=0, n=1)
            else:
                out.blink(on_time=seconds, off_time=0, n=1)

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
        for dev in list(self.leds.values()) + ([self.buzzer] if self.buzzer else []):
            dev.close()
