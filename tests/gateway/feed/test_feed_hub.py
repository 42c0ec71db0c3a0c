"""Two commune gateways and a province hub, real Mosquitto brokers, one commune cut off and restored.

Commune A (office 03390) pushes its feed over MQTT to the upstream broker the hub subscribes to;
commune B (office 03405) pushes over HTTPS (plain HTTP on loopback) to the hub's endpoint. While
the upstream broker is stopped, A keeps producing (new hours, and late events that change closed
hours, i.e. new revisions) into its outbox, B keeps delivering; A's gateway is restarted too
(its outbox and mark are on disk). After the broker's restart the hub must hold
exactly the figures the test itself sent, per office and hour: nothing lost, nothing doubled,
nothing out of order (no stale revision ever reached the hub).
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.auth import sha256_hex
from gateway.feed import schema as fs
from tests.gateway.conftest import RunningGateway, gateway_settings, wait_for
from tests.gateway.feed.scenario import TZ, Office, expected, hub_figures, normalised, past_hours
from tests.gateway.kiosk_sim import EventFactory, Publisher
from tests.support.mosquitto import Mosquitto

HUB_TOKEN = "hub-ingest-token-0123456789abcdef0123"
FEED_TOKEN = "feed-reader-token-0123456789abcdef012"


@pytest.fixture
def brokers() -> Iterator[dict[str, Mosquitto]]:
    """Four brokers with the production persistence settings. Their folders are fresh /tmp ones, not
    pytest's tmp_path: started as root, Mosquitto runs as 'mosquitto', which cannot reach tmp_path,
    and would then lose its sessions at a restart without a word (PLATFORM-NOTES)."""
    started = {name: Mosquitto().start() for name in ("up", "a", "b", "h")}
    yield started
    for m in started.values():
        m.stop()
        shutil.rmtree(m.workdir, ignore_errors=True)


def _gateway(tmp: Path, broker: Mosquitto, **sections: dict[str, Any]) -> RunningGateway:
    return RunningGateway(gateway_settings(tmp, broker.url, **sections)).start()


def _feed(source: str, **extra: Any) -> dict[str, Any]:
    return {"enabled": True, "source_id": source, "interval_s": 0.3, "close_after_s": 0.0,
            "retry_min_s": 0.2, "retry_max_s": 2.0, "pull_tokens_sha256": [sha256_hex(FEED_TOKEN)], **extra}


def _hub_rows(hub: RunningGateway, office: str) -> list[dict[str, Any]]:
    h = fs.hub_records
    with hub.app.state.store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(h).where(h.c.office_code == office))]


def _matches(hub: RunningGateway, office: Office) -> bool:
    return hub_figures(_hub_rows(hub, office.code)) == normalised(expected(office))


def _send(port: int, events: list[Any]) -> None:
    pub = Publisher(port)
    try:
        for ev in events:
            pub.event(ev)
        pub.flush()
    finally:
        pub.close()


def test_two_communes_and_a_hub_survive_a_cut(tmp_path: Path, brokers: dict[str, Mosquitto]) -> None:
    rng = random.Random(11)
    up = brokers["up"]
    hub = _gateway(tmp_path / "hub", brokers["h"], hub={
        "enabled": True, "mqtt": {"url": up.url, "client_id": "hub-test"}, "sources": ["lc-a", "lc-b"],
        "ingest_tokens": [{"source": "lc-b", "token_sha256": sha256_hex(HUB_TOKEN)}]})
    a = _gateway(tmp_path / "a", brokers["a"], feed=_feed("lc-a", mqtt={"url": up.url, "client_id": "lc-a"}))
    b = _gateway(tmp_path / "b", brokers["b"], feed=_feed(
        "lc-b", https_url=f"{hub.base}/api/v1/hub/records", https_token=HUB_TOKEN))
    gateways = {"a": a, "b": b}
    try:
        wait_for(lambda: hub.app.state.feed.subscriber.connected.is_set(), what="hub subscribed upstream")
        hours = past_hours(6)  # H-6 .. H-1, all closed
        offices = {"a": Office("03390", [EventFactory(f"k03390-q{c}", "03390", c) for c in (1, 2)]),
                   "b": Office("03405", [EventFactory(f"k03405-q{c}", "03405", c) for c in (1, 2)])}
        pending: dict[str, list[Any]] = {}
        for name, office in offices.items():  # batch 1: three hours; some visits still waiting
            for h in hours[:3]:
                office.add_hour(h, rng)
            evs = [e for v in office.visits for e in v.issue()]
            waiting = office.visits[1::5]
            evs += [e for v in office.visits if v not in waiting for e in v.finish()]
            f = office.factories[0]
            evs.append(office.sentiment(f, hours[1] + timedelta(minutes=5), 6, 0.5))
            evs.append(office.sentiment(f, hours[1] + timedelta(minutes=40), 7, -0.25))
            pending[name] = waiting
            _send(brokers[name].port, evs)
        for office in offices.values():
            wait_for(lambda o=office: _matches(hub, o), timeout=120, what=f"hub has {office.code} batch 1")

        up.stop()  # commune A cut off from the province (B pushes over HTTPS to the hub: not cut)
        assert (up.workdir / "mosquitto.db").exists()  # sessions saved: the hub's subscription survives
        pusher = a.app.state.feed.pushers[0]
        wait_for(lambda: not pusher.connected.is_set(), what="A saw the upstream broker go")
        cut_id = _max_id(a)
        for name, office in offices.items():  # batch 2: late events for closed hours, a new hour
            evs = [e for v in pending[name] for e in v.finish()]
            before = len(office.visits)
            office.add_hour(hours[2], rng, per_counter=1)
            office.add_hour(hours[3], rng)
            evs += [e for v in office.visits[before:] for e in (*v.issue(), *v.finish())]
            _send(brokers[name].port, evs)
        wait_for(lambda: _matches(hub, offices["b"]), timeout=120, what="B (HTTPS) current during the cut")
        revised = wait_for(lambda: _max_revision(a) >= 2 and a.app.state.feed.pushers[0].backlog(),
                           timeout=120, what="A produced revisions into its outbox while cut off")
        assert revised
        assert _max_id(a) > cut_id and pusher.acked <= cut_id  # nothing produced since marked as sent
        assert not _matches(hub, offices["a"])

        a.stop()  # A is also restarted while cut off: its outbox and mark are on disk, not in paho
        up.start()  # restored
        a = RunningGateway(a.settings).start()
        gateways["a"] = a
        try:
            wait_for(lambda: _matches(hub, offices["a"]), timeout=180, what="hub caught up with A")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {_diagnosis(a, hub, offices['a'])}") from None
        wait_for(lambda: a.app.state.feed.pushers[0].backlog() == 0, what="A's outbox empty")
        assert a.app.state.feed.pushers[0].acked == _max_id(a)
        counters = hub.ops.get("/api/v1/feed/status").json()["hub_counters"]
        assert not [k for k in counters if k.startswith("hub:rejected")], counters
        assert counters.get("hub:stale", 0) == 0, counters  # in order: no older revision after a newer one
        for name, gw in gateways.items():
            wait_for(lambda g=gw, n=name: _latest_revisions_equal(g, hub, offices[n].code),
                     what=f"hub holds {name}'s latest revisions")
        today = {o["office_code"]: o for o in hub.public.get("/api/v1/hub/offices").json()}
        for office in offices.values():  # the province map shows the hub's figures for today
            local_today = datetime.now(TZ).date()
            want = sum(e["visits"] for h, e in expected(office).items()
                       if datetime.fromtimestamp(h, TZ).date() == local_today)
            assert hub.public.get(f"/api/v1/offices/{office.code}").json()["kpi_today"]["visits"] == want
            assert today[office.code]["today"]["visits"] == want
        assert set(today) == {"03390", "03405"}
        assert {f["id"] for f in hub.public.get("/api/v1/hub/map.geojson").json()["features"]} == set(today)
    finally:
        for gw in (a, b, hub):
            gw.stop()


def _diagnosis(a: RunningGateway, hub: RunningGateway, office: Office) -> str:
    pusher = a.app.state.feed.pushers[0]
    r = fs.feed_records
    with a.app.state.store.engine.connect() as conn:
        log = [(i, int(h), rev) for i, h, rev in conn.execute(select(r.c.id, r.c.hour_start, r.c.revision))]
    held = {int(x["hour_start"]): x["revision"] for x in _hub_rows(hub, office.code)}
    return (f"A: acked {pusher.acked} sent {pusher.sent} backlog {pusher.backlog()} connected "
            f"{pusher.connected.is_set()} log {log}; hub holds {held}, counters "
            f"{hub.ops.get('/api/v1/feed/status').json()}; hub figures "
            f"{hub_figures(_hub_rows(hub, office.code))} expected {normalised(expected(office))}")


def _max_revision(gw: RunningGateway) -> int:
    with gw.app.state.store.engine.connect() as conn:
        return int(conn.execute(select(func.max(fs.feed_records.c.revision))).scalar() or 0)


def _max_id(gw: RunningGateway) -> int:
    with gw.app.state.store.engine.connect() as conn:
        return int(conn.execute(select(func.max(fs.feed_records.c.id))).scalar() or 0)


def _latest_revisions_equal(commune: RunningGateway, hub: RunningGateway, office: str) -> bool:
    """The hub holds, per hour, the commune's latest revision, byte for byte."""
    r = fs.feed_records
    with commune.app.state.store.engine.connect() as conn:
        latest: dict[int, tuple[int, str]] = {}
        for h, rev, rec in conn.execute(select(r.c.hour_start, r.c.revision, r.c.record).order_by(r.c.id)):
            latest[int(h)] = (rev, rec)
    held = {int(x["hour_start"]): (x["revision"], x["record"]) for x in _hub_rows(hub, office)}
    return held == latest
