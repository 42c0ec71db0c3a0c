"""Ticket kinds on the wire and the calling policies of ``[calling]`` (real SQLite, fake clock)."""

from __future__ import annotations

import json

import pytest

from contract.codec import encode
from contract.payloads import Event, EventAdapter
from device.config import ConfigError, parse_config
from tests.device.helpers import example_table, make_config, make_engine, outbox_events

ENVELOPE = {
    "v": 1, "device_id": "kiosk-a", "office_code": "LC-1", "ts": "2026-11-30T09:00:00+07:00",
    "clock_synced": True, "event_id": "00000000-0000-4000-8000-000000000001", "seq": 1,
    "boot_id": "b", "mono_ms": 5,
}
OLD_ISSUED = ENVELOPE | {"type": "ticket.issued", "data": {
    "ticket_no": 3, "label": "0003", "counter": 1, "service_day": "2026-11-30", "waiting_ahead": 0}}


def test_old_events_without_kind_decode_as_walk_in_and_walk_in_encodes_as_before():
    ev = EventAdapter.validate_json(json.dumps(OLD_ISSUED))
    assert ev.data.kind == "walk_in" and ev.data.service_field is None and ev.data.slot is None
    assert json.loads(encode(ev)) == OLD_ISSUED  # byte-for-byte the old form: an old gateway accepts it
    prio = Event(**ENVELOPE, type="ticket.issued", data=OLD_ISSUED["data"] | {"kind": "priority",
                                                                            "service_field": "land"})
    assert json.loads(encode(prio))["data"]["kind"] == "priority"


@pytest.mark.parametrize("data", [
    {"kind": "appointment"},  # an appointment names its slot
    {"kind": "priority", "slot": "09:30"},  # only appointments have one
    {"kind": "vip"},
    {"service_field": "Land!"},
    {"kind": "appointment", "slot": "25:00"},
])
def test_bad_kinds_fields_and_slots_are_refused(data):
    with pytest.raises(ValueError):
        EventAdapter.validate_python(OLD_ISSUED | {"data": OLD_ISSUED["data"] | data})


def _engine(tmp_path, **calling):
    cfg = make_config(calling=calling)
    return make_engine(tmp_path, cfg=cfg)


def _issue(q, kinds: str) -> None:
    for k in kinds:
        assert q.issue(kind={"w": "walk_in", "p": "priority"}[k]).ok


def _call_order(q, n: int) -> list[str]:
    return [q.next().called_label for _ in range(n)]


def test_priority_first_calls_every_priority_ticket_before_walk_ins(tmp_path):
    q, store, _ = _engine(tmp_path, policy="priority_first")
    _issue(q, "wwpwp")
    assert _call_order(q, 5) == ["U0003", "U0005", "0001", "0002", "0004"]
    called = [e for e in outbox_events(store) if e["type"] == "ticket.called"]
    assert [e["data"].get("kind", "walk_in") for e in called] == ["priority"] * 2 + ["walk_in"] * 3


def test_interleave_calls_one_priority_per_n_regular_and_survives_a_restart(tmp_path):
    q, store, clock = _engine(tmp_path, policy="interleave", priority_every=2)
    _issue(q, "wwwwwpp")
    assert _call_order(q, 3) == ["0001", "0002", "U0006"]
    assert _call_order(q, 1) == ["0003"]
    store.close()
    q2, _, _ = make_engine(tmp_path, clock=clock, cfg=make_config(calling={"policy": "interleave",
                                                                           "priority_every": 2}))
    assert _call_order(q2, 3) == ["0004", "U0007", "0005"]  # the count of regular calls was durable


def test_fifo_ignores_kinds_and_numbers_stay_one_series(tmp_path):
    q, _, _ = _engine(tmp_path, policy="fifo")
    _issue(q, "pwp")
    assert _call_order(q, 3) == ["U0001", "0002", "U0003"]


def test_wait_is_measured_per_ticket_whatever_its_kind(tmp_path):
    q, store, clock = _engine(tmp_path, policy="priority_first")
    _issue(q, "w")
    clock.advance(100)
    _issue(q, "p")
    clock.advance(20)
    q.next(), clock.advance(50), q.next()
    called = [e["data"] for e in outbox_events(store) if e["type"] == "ticket.called"]
    waits = {d["label"]: d["wait_s"] for d in called}
    assert waits == {"U0002": 20, "0001": 170}


def test_config_refuses_bad_calling_sections():
    with pytest.raises(ConfigError, match=r"\[calling\] policy"):
        make_config(calling={"policy": "random"})
    with pytest.raises(ConfigError, match=r"\[calling\] priority_every"):
        make_config(calling={"priority_every": 0})
    with pytest.raises(ConfigError, match=r"\[calling\] colour"):
        make_config(calling={"colour": "red"})
    with pytest.raises(ConfigError, match="prefix"):
        make_config(calling={"priority": {"label_prefix": "H"}})
    with pytest.raises(ConfigError, match="field code"):
        make_config(calling={"fields": {"Đất": "Đất đai"}})
    with pytest.raises(ConfigError, match=r"\[calling\] appointments.qr_camera"):
        make_config(calling={"appointments": {"qr_camera": "webcam"}})


def test_priority_button_on_a_mock_pin_issues_a_priority_ticket(tmp_path):
    """The whole kiosk wiring on gpiozero's MockFactory: the pin edge → debounce → pace → engine."""
    from device.app import Kiosk

    data = example_table()
    data["buttons"]["pins"]["priority"] = 12
    data["calling"] = {"policy": "priority_first"}
    kiosk = Kiosk(parse_config(data), tmp_path / "k", simulate=True)
    try:
        walk = kiosk.buttons.sim_press("ticket")
        kiosk.pacer.wait_quiet("priority")  # the priority button is at the door: same pace group
        prio = kiosk.buttons.sim_press("priority")
        assert walk.label == "0001" and prio.label == "U0002" and prio.ticket_kind == "priority"
        assert kiosk.status()["waiting_by_kind"] == {"walk_in": 1, "priority": 1}
        assert kiosk.engine.next().called_label == "U0002"
    finally:
        kiosk.shutdown()


def test_priority_pin_must_not_clash_with_another_button():
    data = example_table()
    data["buttons"]["pins"]["priority"] = data["buttons"]["pins"]["ticket"]
    with pytest.raises(ConfigError, match="already used"):
        parse_config(data)
