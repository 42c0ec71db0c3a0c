"""One message the store refuses never slows the rest: a refused batch is split in halves.

The poison is injected at the writer seam (``gateway.ingest.apply_batch``): a message that passes
the contract but that the store refuses (an overflow, a constraint, a bug on one payload). Whatever
the contract accepts in future, this path must hold. The rest of the batch runs on a real SQLite
store (and, end to end, through real Mosquitto).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import gateway.ingest
from contract.codec import decode, encode
from contract.payloads import Event
from contract.topics import events_topic
from gateway.ingest import Ingest, _Item
from gateway.live import LiveHub
from gateway.store import Store
from gateway.store.writer import Incoming
from tests.gateway.conftest import gateway_settings, wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher


def _poisoned_apply(poison: set[str], calls: list[int]) -> Any:
    real = gateway.ingest.apply_batch

    def apply(store: Any, items: list[Incoming], *a: Any, **kw: Any) -> Any:
        calls.append(len(items))
        if any(getattr(i.decoded.message, "event_id", None) in poison for i in items):
            raise OverflowError("simulated: a value the database cannot hold")
        return real(store, items, *a, **kw)

    return apply


def _items(n: int) -> list[_Item]:
    f = EventFactory("k03390-q1", "03390", 1)
    day = datetime.now(UTC).date()
    evs: list[Event] = []
    no = 0
    while len(evs) < n:
        no += 1
        evs.extend(f.visit(no, day, datetime.now(UTC), 60.0, 60.0))
    out = []
    for i, ev in enumerate(evs[:n]):
        d = decode(events_topic(ev.office_code, ev.device_id), encode(ev))
        out.append(_Item(Incoming(d, 0.0), i + 1, 1))
    return out


@pytest.mark.parametrize("poison_at", [(0,), (250,), (499,), (3, 77, 420)])
def test_refused_batch_is_bisected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, poison_at: tuple) -> None:
    settings = gateway_settings(tmp_path, "mqtt://127.0.0.1:1")
    store = Store(settings.database_url)
    store.migrate()
    ing = Ingest(settings, store, LiveHub())
    acked: list[int] = []

    class Acks:  # the MQTT side: records what is acknowledged
        def ack(self, mid: int, qos: int) -> None:
            acked.append(mid)

        def ack_many(self, mids: list[int]) -> None:
            acked.extend(mids)

    ing.mqtt = Acks()
    items = _items(500)
    poison = {items[i].incoming.decoded.message.event_id for i in poison_at}
    calls: list[int] = []
    monkeypatch.setattr(gateway.ingest, "apply_batch", _poisoned_apply(poison, calls))

    ing._store(items, {"rejected:bad_json": 2})

    k = len(poison_at)
    # every message acknowledged exactly once: stored or counted as rejected, none dropped
    assert sorted(acked) == list(range(1, 501))
    assert ing.stats["accepted"] == 500 - k
    assert ing.stats["rejected:handler_error"] == k
    assert ing._pending_rejections["rejected:handler_error"] == k  # written with the next batch
    # a poison costs O(log n) transactions, not n (retrying one by one made 501 attempts for one)
    assert len(calls) <= 1 + 2 * k * math.ceil(math.log2(500)), calls
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT count(*) FROM events").scalar()
        ids = {r[0] for r in conn.exec_driver_sql("SELECT event_id FROM events")}
    assert stored == 500 - k and not (ids & poison)
    counters = store.counters()
    assert counters.get("accepted") == 500 - k
    # the rejections that rode on the batch survive the split, counted once (committed or pending)
    assert counters.get("rejected:bad_json", 0) + ing._pending_rejections["rejected:bad_json"] == 2
    store.close()


def test_two_percent_poison_end_to_end(mosquitto, gateway_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """2 % poison through real Mosquitto: all good events stored once, each poison counted."""
    poison: set[str] = set()
    calls: list[int] = []
    monkeypatch.setattr(gateway.ingest, "apply_batch", _poisoned_apply(poison, calls))
    gw = gateway_factory(mosquitto.url)
    f = EventFactory("k03390-q2", "03390", 2)
    day = gw.app.state.kpi.today()
    pub = Publisher(mosquitto.port)
    sent = 0
    for no in range(1, 1001):
        for ev in f.visit(no, day, datetime.now(UTC), 60.0, 60.0):
            sent += 1
            if sent % 50 == 0:
                poison.add(ev.event_id)
            pub.event(ev)
    pub.flush()
    pub.close()
    s = wait_for(
        lambda: (x := gw.stats())["accepted"] + x["rejected"].get("handler_error", 0) >= sent and x,
        what="all events stored or rejected",
    )
    assert s["rejected"] == {"handler_error": len(poison)}
    assert s["accepted"] == sent - len(poison)
    assert s["stored_events"] == sent - len(poison)
