"""Shared lines in one process: the [line] config's refusals, numbers per field and day (unique across
a lost database, restarting each day), a field's series used up (real SQLite, fake clock)."""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from contract.config_errors import ConfigError
from device.clock import FakeClock
from device.line_tokens import counter_of, counter_token, main
from device.queue import LINE_FULL
from tests.device.helpers import VN, make_config, make_engine, outbox_events

TOKEN = "0123456789abcdef"
ENTRANCE = {"role": "entrance", "token": TOKEN}
URL = "http://10.0.0.5:8110"


@pytest.mark.parametrize(("line", "calling", "pins", "key"), [
    ({"role": "counter", "token": TOKEN, "fields": ["land"]}, None, None, "line"),
    ({"role": "counter", "token": TOKEN, "entrance_url": "http://10.0.0.5:8110"}, None, None, "line"),
    ({"role": "entrance", "token": "short"}, None, None, "line"),
    # a counter holds its own token, never the office's secret, nor another counter's token
    ({"role": "counter", "token": TOKEN, "entrance_url": URL, "fields": ["land"]}, None, None, "line"),
    ({"role": "counter", "token": counter_token(TOKEN, 5), "entrance_url": URL, "fields": ["land"]},
     None, None, "line"),
    ({"role": "entrance", "token": TOKEN, "entrance_url": "ftp://x"}, None, None, "line"),
    (ENTRANCE, {"fields": {}}, None, "line"),
    (ENTRANCE | {"block": 10000}, {"fields": {f"f{i}": "x" for i in range(10)}}, None, "line"),
    ({}, None, {"field_land": 20}, "buttons.pins"),  # a field button on a counter's own line
    (ENTRANCE, None, {"field_tax": 20}, "buttons.pins"),  # not a field of [calling.fields]
])
def test_line_config_refused_naming_the_key(line, calling, pins, key):
    over = {"line": line}
    if calling is not None:
        over["calling"] = calling
    if pins is not None:
        over["buttons"] = {"pins": make_config().buttons.pins | pins}
    with pytest.raises(ConfigError) as err:
        make_config(**over)
    assert str(err.value).startswith(f"config error: [{key}]")


def test_numbers_per_field_and_day_survive_a_lost_database(tmp_path):
    cfg = make_config(line=ENTRANCE)  # the example's fields: land, civil, insurance
    q, store, clock = make_engine(tmp_path, cfg=cfg)
    assert [q.issue(service_field="land").label for _ in range(2)] == ["1001", "1002"]
    assert q.issue(service_field="civil").label == "2001"
    assert q.issue(kind="priority", service_field="insurance").label == "U3001"
    assert q.issue(service_field="land").waiting_ahead == 2  # ahead in its own line only
    store.close()
    (tmp_path / "kiosk.db").unlink()  # lost: the high-water file says where each field was
    for extra in ("-wal", "-shm"):
        (tmp_path / f"kiosk.db{extra}").unlink(missing_ok=True)
    q, store, _ = make_engine(tmp_path, clock=clock, cfg=cfg)
    assert q.issue(service_field="land").label == "1004"
    assert q.issue(service_field="civil").label == "2002"
    clock.advance(86400)  # the next service day starts each field's series again
    assert q.issue(service_field="land").label == "1001"
    issued = [e["data"] for e in outbox_events(store) if e["type"] == "ticket.issued"]
    assert {d["service_field"] for d in issued} == {"land", "civil"}


def test_a_fields_series_used_up_is_refused_without_issuing(tmp_path):
    cfg = make_config(line=ENTRANCE | {"block": 100})
    clock = FakeClock(datetime(2026, 12, 5, 8, 0, tzinfo=VN))
    q, store, _ = make_engine(tmp_path, clock=clock, cfg=cfg)
    labels = [q.issue(service_field="land").label for _ in range(99)]
    assert labels[0] == "0101" and labels[-1] == "0199"
    out = q.issue(service_field="land")
    assert not out.ok and out.kind == LINE_FULL and "Đã hết số" in out.message
    assert q.issue(service_field="civil").label == "0201"  # other fields go on
    assert len([e for e in outbox_events(store) if e["type"] == "ticket.issued"]) == 100


def test_fields_reordered_during_the_day_never_reuse_a_number(tmp_path):
    fields = {"land": "Đất đai", "civil": "Hộ tịch"}
    q, store, clock = make_engine(tmp_path, cfg=make_config(line=ENTRANCE, calling={"fields": fields}))
    assert [q.issue(service_field="land").label for _ in range(2)] == ["1001", "1002"]
    q.cfg = make_config(line=ENTRANCE, calling={"fields": {"tax": "Thuế"} | fields})  # tax takes 1001…
    assert q.issue(service_field="tax").label == "1003"  # skips land's numbers of the day
    assert q.issue(service_field="land").label == "2001"
    numbers = [e["data"]["ticket_no"] for e in outbox_events(store) if e["type"] == "ticket.issued"]
    assert len(numbers) == len(set(numbers)) == 4


def test_counter_tokens_speak_for_one_counter_of_one_office(capsys, monkeypatch):
    t3 = counter_token(TOKEN, 3)
    assert counter_of(TOKEN, t3) == 3
    assert counter_of("another-office-secret", t3) is None
    forged = t3.replace("c3.", "c5.")  # the counter number is bound by the HMAC
    assert counter_of(TOKEN, forged) is None
    assert counter_of(TOKEN, TOKEN) is None and counter_of(TOKEN, "") is None
    assert counter_of(TOKEN, f"c1000.{t3[3:]}") is None
    own = make_config(device={"counter": 3}, line={"role": "counter", "token": t3, "entrance_url": URL,
                                                   "fields": ["land"]})
    assert own.extra["line"].token == t3

    monkeypatch.setattr("sys.stdin", io.StringIO(TOKEN + "\n"))
    assert main(["3", "5"]) == 0
    assert capsys.readouterr().out.split() == ["3", t3, "5", counter_token(TOKEN, 5)]
    assert main(["x"]) == 2
