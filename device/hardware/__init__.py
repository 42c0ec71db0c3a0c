"""GPIO devices (gpiozero): buttons with our own debounce, LEDs and buzzer feedback."""

from __future__ import annotations

from typing import Any


class HardwareError(RuntimeError):
    """The kiosk's hardware cannot be used; the message says what to do."""


def make_pin_factory(simulate: bool) -> Any:
    """MockFactory (PWM-capable mock pins) when simulating, else gpiozero's default for the board."""
    if simulate:
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        return MockFactory(pin_class=MockPWMPin)
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    if Device.pin_factory is None:
        try:
            Device.ensure_pin_factory()
        except BadPinFactory as exc:
            raise HardwareError(
                f"no GPIO access ({exc}): on a Raspberry Pi install python3-lgpio (Raspberry Pi OS has it) "
                "and run as a user in the 'gpio' group; on a PC use --simulate"
            ) from None
    return Device.pin_factory
