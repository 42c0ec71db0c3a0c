"""Buttons on gpiozero's MockFactory: debounce (ours), instant feedback, handler results."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from device.hardware.buttons import ButtonBank, Debouncer
from device.hardware.feedback import Feedback


class FakeMono:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def factory():
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


def test_bounces_count_as_one_press(factory):
    mono = FakeMono()
    presses: list[str] = []
    bank = ButtonBank({"ticket": 5, "next": 6}, 50, factory, presses.append, mono=mono)
    pin = factory.pin(5)
    # One physical press with contact bounce: edges 0.2 ms apart, then a bouncy release.
    for _ in range(4):
        pin.drive_low()
        mono.t += 0.0002
        pin.drive_high()
        mono.t += 0.0002
    pin.drive_low()
    mono.t += 0.3
    pin.drive_high()
    mono.t += 0.0003
    pin.drive_low()  # release bounce
    mono.t += 0.0003
    pin.drive_high()
    assert presses == ["ticket"]
    assert bank.debouncer.ignored >= 4
    mono.t += 0.5  # a human presses again
    pin.drive_low()
    pin.drive_high()
    assert presses == ["ticket", "ticket"]
    factory.pin(6).drive_low()  # other buttons have their own window
    assert presses[-1] == "next"
    bank.close()


def test_feedback_is_on_inside_handler(factory):
    fb = Feedback({"ticket": 23, "rate": 25}, {"pin": 18}, factory, pwm=True)
    seen = {}

    def handler(name: str) -> str:
        seen[name] = (fb._led_for(name).value, fb.buzzer.value)
        return f"did {name}"

    bank = ButtonBank({"ticket": 5, "rate_1": 17}, 50, factory, handler, feedback=fb)
    assert bank.sim_press("ticket") == "did ticket"
    assert bank.sim_press("rate_1") == "did rate_1"
    assert seen == {"ticket": (1, True), "rate_1": (1, True)}  # LED and buzzer already on
    assert all(ok for _, ok, _ in fb.check())
    bank.close()
    fb.close()


def test_feedback_check_reports_an_output_that_cannot_be_driven(factory):
    fb = Feedback({"ticket": 23, "rate": 25}, {"pin": 18}, factory)

    def broken(*_a: object) -> None:
        raise OSError("GPIO23: input/output error")

    pin = fb.leds["ticket"].pin
    pin._change_state = broken  # the pin's driver fails, as a dead GPIO line would
    report = {name: (ok, detail) for name, ok, detail in fb.check()}
    del pin._change_state  # the class's own method again, so that close() works
    assert report["ticket"] == (False, "cannot drive the pin: GPIO23: input/output error")
    assert report["rate"][0] and report["buzzer"][0]
    fb.close()


def test_sim_press_waits_out_debounce(factory):
    presses: list[str] = []
    bank = ButtonBank({"ticket": 5}, 30, factory, lambda n: presses.append(n) or len(presses))
    assert [bank.sim_press("ticket") for _ in range(3)] == [1, 2, 3]  # none swallowed as a bounce
    bank.close()


def test_debouncer_release_edges_are_not_presses():
    mono = FakeMono()
    d = Debouncer(0.05, mono)
    assert d.edge("a", True)
    mono.t += 1
    assert not d.edge("a", False)
    mono.t += 0.01
    assert not d.edge("a", True)  # 10 ms after a release: bounce
    mono.t += 0.2
    assert d.edge("a", True)


def test_pacer_drops_presses_faster_than_a_person():
    from device.dispatch import PressPacer

    mono = FakeMono()
    pacer = PressPacer(300, mono)
    assert pacer.allow("next")
    mono.t += 0.1
    assert not pacer.allow("rate_3")  # counter buttons share one pace: rating 0.1 s after next
    assert pacer.allow("ticket")  # the ticket button at the door has its own
    mono.t += 0.25
    assert not pacer.allow("rate_3")  # a burst is dropped whole: the gap restarts at each press
    mono.t += 0.31
    assert pacer.allow("rate_3")


def test_feedback_turns_itself_off(factory):
    import time

    fb = Feedback({"rate": 25}, {"pin": 18}, factory)
    fb.flash("rate_2", seconds=0.05)
    assert fb.leds["rate"].value and fb.buzzer.value  # on at once
    end = time.monotonic() + 10
    while (fb.leds["rate"].value or fb.buzzer.value) and time.monotonic() < end:
        time.sleep(0.01)
    assert not fb.leds["rate"].value and not fb.buzzer.value  # gpiozero's one-cycle blink/beep ended
    fb.close()
