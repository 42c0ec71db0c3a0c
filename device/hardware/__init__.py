"""GPIO devices (gpiozero): buttons with our own debounce, LEDs and buzzer feedback."""

from __future__ import annotations

from typing import Any


def make_pin_factory(simulate: bool) -> Any:
    """MockFactory (PWM-capable mock pins) when simulating, else gpiozero's default for the board."""
    if simulate:
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        return MockFactory(pin_class=MockPWMPin)
    from gpiozero import Device

    if Device.pin_factory is None:
        Device._default_pin_factory()  # raises BadPinFactory with gpiozero's own explanation
    return Device.pin_factory
