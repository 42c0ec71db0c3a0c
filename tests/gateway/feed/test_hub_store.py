"""The hub's revision rule and period sums on SQLite and PostgreSQL: a higher revision replaces, the
same one is a duplicate, a lower one is stale, whatever the arrival order."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract.feed import WAIT_BUCKETS_S, FeedRecord
from gateway.config import Settings
from gateway.feed.config import HubSettings
from gateway.feed.hub_store import accept, hub_period, kpi_block
from gateway.registry import load_registry
from gateway.store import Store

HOUR = 1_796_400_000 // 3600 * 3600


def _record(office: str, hour: int, revision: int, visits: int) -> FeedRecord:
    waits = [300.0 * (i % 5) for i in range(visits)]
    hist = [0] * 10
    for w in waits:
        hist[next(i for i, b in enumerate((*WAIT_BUCKETS_S, 1e9)) if w <= b)] += 1
    return FeedRecord(source="lc-a", office_code=office, hour_start=datetime.fromtimestamp(hour, UTC),
                      revision=revision, produced_at=datetime.fromtimestamp(hour + 4000, UTC),
                      wait_target_s=1200.0, visits=visits, served=visits, no_shows=0, wait_count=visits,
                      wait_sum_s=sum(waits), wait_over_target=sum(w > 1200 for w in waits),
                      wait_histogram=tuple(hist), service_count=visits, service_sum_s=60.0 * visits,
                      ratings_by_level=(1, 0, visits - 1, 0, 0), flagged_visits=0, flagged_ratings=0)


def _run(store: Store) -> None:
    store.migrate()
    store.load_registry(load_registry(Settings().registry_file))
    cfg = HubSettings(enabled=True)
    recs = [_record("03390", HOUR + 3600 * h, rev, 3 + h + rev) for h in range(4) for rev in (1, 2, 3)]
    rng = random.Random(5)
    rng.shuffle(recs)
    outcomes: dict[str, int] = {}
    for rec in recs + recs[:5]:  # shuffled, then some resent
        o = accept(store, rec.model_dump_json(), cfg, now=HOUR + 10 * 86400)
        outcomes[o] = outcomes.get(o, 0) + 1
    assert 4 <= outcomes["stored"] <= 12 and outcomes.get("duplicate", 0) + outcomes.get("stale", 0) >= 5
    assert sum(outcomes.values()) == len(recs) + 5
    sums = hub_period(store, HOUR, HOUR + 4 * 3600)["03390"]
    assert sums["hours"] == 4
    assert sums["visits"] == sum(3 + h + 3 for h in range(4))  # revision 3 of every hour
    block = kpi_block(sums, 1200.0)
    assert block["rated"] == sums["visits"] and block["not_satisfied"] == 4
    assert hub_period(store, HOUR, HOUR + 3600)["03390"]["visits"] == 6  # half-open period
    late = _record("03390", HOUR, 2, 1).model_dump_json()
    assert accept(store, late, cfg, now=HOUR + 10 * 86400) == "stale"


def test_hub_store_sqlite(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    try:
        _run(store)
    finally:
        store.close()


def test_hub_store_postgres(postgres: Any) -> None:
    store = Store(postgres.url)
    try:
        _run(store)
    finally:
        store.close()
