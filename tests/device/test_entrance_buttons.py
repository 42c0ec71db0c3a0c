"""The entrance kiosk's buttons on gpiozero's MockFactory (in process, real SQLite, fake clock): field
buttons issue walk-in tickets, a per-field priority button a priority ticket, the one global priority
button makes the next field button within ``[line] priority_window_s`` issue a priority ticket, and the
door's human pace drops a double press (device/entrance.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from contract.config_errors import ConfigError
from device.app import Kiosk
from device.clock import FakeClock
from tests.device.helpers import VN, example_table, make_config, outbox_events

TOKEN = "0123456789abcdef"
ENTRANCE = {"role": "entrance", "token": TOKEN, "priority_window_s": 10.0}
PINS = {"field_land": 20, "field_civil": 21, "priority_civil": 16}  # + the example's global `priority`


def make_entrance(tmp: Path, clock: FakeClock) -> Kiosk:
    pins = example_table()["buttons"]["pins"] | PINS
    cfg = make_config(line=ENTRANCE, buttons={"pins": pins, "min_gap_ms": 300})
    return Kiosk(cfg, tmp / "k", simulate=True, clock=clock)


def test_field_priority_and_global_priority_buttons_on_mock_pins(tmp_path):
    clock = FakeClock(datetime(2026, 12, 5, 8, 0, tzinfo=VN))
    kiosk = make_entrance(tmp_path, clock)
    try:
        assert isinstance(kiosk.factory, MockFactory)

        def press(name: str):
            clock.advance(1)  # a person's pace between presses
            return kiosk.buttons.sim_press(name)  # the mock pin driven low then high

        assert press("field_land").label == "1001"
        prio = press("priority_civil")
        assert prio.label == "U2001" and prio.ticket_kind == "priority" and "Hộ tịch" in prio.message
        armed = press("priority")  # the global button issues nothing by itself
        assert armed.ok and armed.label is None and "ƯU TIÊN" in armed.message
        assert kiosk.status()["message"] == armed.message  # the screen tells what to do next
        assert press("field_land").label == "U1002"  # within the window: a priority ticket
        assert press("field_land").label == "1003"  # used once: the next citizen gets a walk-in
        press("priority")
        clock.advance(11)  # the citizen walked away: the window (10 s) is over
        assert press("field_land").label == "1004"
        first = press("field_civil")
        double = kiosk.buttons.sim_press("field_civil")  # a second press 0 s later: not a person
        assert first.label == "2002" and not double.ok and double.kind == "too_fast"
        issued = [(e["data"]["label"], e["data"].get("kind", "walk_in")) for e in outbox_events(kiosk.store)
                  if e["type"] == "ticket.issued"]
        assert issued == [("1001", "walk_in"), ("U2001", "priority"), ("U1002", "priority"),
                          ("1003", "walk_in"), ("1004", "walk_in"), ("2002", "walk_in")]
        printed = sorted(p.name for p in (tmp_path / "k" / "prints").glob("*.bin"))
        assert len(printed) == 6
        assert kiosk.buttons.sim_press("next").kind == "line_entrance_choose_field"  # counters call
    finally:
        kiosk.shutdown()


def test_a_shared_line_ticket_names_its_field_and_the_counters_that_call_from_it(tmp_path):
    clock = FakeClock(datetime(2026, 12, 5, 8, 0, tzinfo=VN))
    kiosk = make_entrance(tmp_path, clock)
    printed: list = []
    real = kiosk.printer.print_ticket
    kiosk.printer.print_ticket = lambda t: (printed.append(t), real(t))[1]  # what goes to the printer
    try:
        first = kiosk.buttons.sim_press("field_land")
        assert printed[0].line == "Đất đai" and printed[0].where == "Màn hình sẽ báo quầy"
        assert first.message == ("Số của bạn: 1001 – Đất đai. Khi đến lượt, màn hình và loa sẽ báo số quầy "
                                 "của bạn.")
        kiosk.entrance.saw_request(3, ["land", "civil"])  # counter 3's request named its fields
        kiosk.entrance.saw_request(5, ["land"])
        clock.advance(1)
        second = kiosk.entrance.issue("land", "walk_in")
        assert printed[1].where == "Quầy phục vụ: 3, 5" and "Quầy phục vụ: 3, 5." in second.message
        assert printed[1].counter == kiosk.cfg.device.counter  # still on the QR reference
        assert [f["counters"] for f in kiosk.status()["line"]["fields"]] == [[3, 5], [3], []]
    finally:
        kiosk.shutdown()


@pytest.mark.parametrize(("line", "pins"), [
    ({}, {"priority_land": 20}),  # a per-field priority button on a counter's own line
    (ENTRANCE, {"priority_tax": 20}),  # not a field of [calling.fields]
    (ENTRANCE | {"priority_window_s": 1.0}, {}),  # shorter than anyone can walk between two buttons
    (ENTRANCE | {"priority_window_s": float("nan")}, {}),
])
def test_priority_button_config_refused_naming_the_key(line, pins):
    with pytest.raises(ConfigError) as err:
        make_config(line=line, buttons={"pins": make_config().buttons.pins | pins})
    assert str(err.value).startswith("config error: [buttons.pins]" if pins else "config error: [line]")
