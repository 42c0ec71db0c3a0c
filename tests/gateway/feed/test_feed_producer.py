"""The producer's hour query against an independent recomputation (gateway.kpi's Python over the same
rows), on SQLite and PostgreSQL alike; revisions when a closed hour changes, nothing when it does not;
k enforced on sentiment."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from contract.feed import WAIT_BUCKETS_S, FeedRecord
from gateway.feed.config import FeedSettings
from gateway.feed.producer import FeedProducer, records_after
from gateway.kpi import visit_summary
from gateway.store import Store
from gateway.store import schema as s

NOW = 1_796_450_000.0  # 2026-12-05 ~03:33 UTC; every row below is hours older
HOUR0 = int(NOW) // 3600 * 3600 - 6 * 3600
DAY = "2026-12-05"  # local day (UTC+7) of every hour used


def _rows(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    visits, ratings, windows = [], [], []
    for office in ("03390", "03405"):
        for n in range(60):
            issued = HOUR0 + rng.randint(0, 4 * 3600 - 1)
            kind = rng.choice(["served", "served", "served", "no_show", "waiting", "discarded", "flagged"])
            wait = float(rng.choice([0, 299.5, 300, 301, 1200, 1200.5, rng.uniform(0, 9000)]))
            served = kind in ("served", "flagged")
            visits.append({
                "office_code": office, "counter": 1 + n % 2, "service_day": DAY, "ticket_no": n + 1,
                "issued_at": issued if n % 9 else None, "called_at": issued + wait if served else None,
                "completed_at": issued + wait + 100 if served else None,
                "no_show_at": issued + wait if kind == "no_show" else None,
                "discarded_at": issued + 5 if kind == "discarded" else None,
                "wait_s": wait if kind in ("served", "flagged", "no_show") else None,
                "service_s": 100.0 if served else None,
                "flag": "short_service" if kind == "flagged" else None})
            if served:
                ratings.append({"event_id": f"{office}-{n}", "office_code": office, "counter": 1,
                                "device_id": "d", "service_day": DAY, "ticket_no": n + 1,
                                "ts": issued + wait + 150,
                                "level": rng.randint(1, 3), "scale": 3,
                                "status": rng.choice(["counted", "counted", "duplicate", "pending"]),
                                "flag": "top_rating_burst" if n % 7 == 0 else None})
        for i, (visits_n, k) in enumerate([(6, 5), (9, 5), (3, 3), (12, 5)]):  # (3, 3): below the gateway's k
            end = HOUR0 + 3600 + i * 1800 + 600
            windows.append({"event_id": f"w-{office}-{i}", "office_code": office, "counter": 1,
                            "device_id": "d", "service_day": DAY, "window_start": end - 900,
                            "window_end": end, "visits": visits_n, "k": k, "frames": 100,
                            "score": 0.5 - i * 0.3,
                            "class_shares": {"happy": 0.25, "neutral": 0.75}})
    return {"visits": visits, "ratings": ratings, "windows": windows}


def _fill(store: Store, rows: dict[str, list[dict[str, Any]]]) -> None:
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(s.visits.insert(), [{"device_id": "d", **r} for r in rows["visits"]])
        conn.execute(s.ratings.insert(), rows["ratings"])
        conn.execute(s.sentiment_windows.insert(), rows["windows"])


def _oracle(rows: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (office, hour): gateway.kpi.visit_summary plus counts done here, never the feed's SQL."""
    by: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for v in rows["visits"]:
        stamps = [x for x in (v["issued_at"], v["called_at"], v["no_show_at"], v["completed_at"]) if x]
        if not stamps:
            continue  # no step with a time yet: in no hour (counted once its first step arrives)
        t = stamps[0]
        by[(v["office_code"], int(t) // 3600 * 3600)].append(v)
    out: dict[tuple[str, int], dict[str, Any]] = defaultdict(lambda: {
        "visits": 0, "served": 0, "no_shows": 0, "wait_count": 0, "wait_sum_s": 0.0, "mean": None,
        "over_target": None, "hist": [0] * (len(WAIT_BUCKETS_S) + 1), "flagged": 0, "ratings": [0] * 5,
        "sent": 0})
    for key, vs in by.items():
        live = [v for v in vs if v["discarded_at"] is None]
        summ = visit_summary(vs, 1200.0)
        waits = [v["wait_s"] for v in live if v["wait_s"] is not None and v["completed_at"] is not None]
        out[key] = {"visits": summ["visits"], "served": summ["served"], "no_shows": summ["no_shows"],
                    "wait_count": len(waits), "wait_sum_s": round(sum(waits), 3),
                    "mean": summ["avg_wait_s"], "over_target": summ["over_target_share"],
                    "hist": [sum(1 for w in waits if lo < w <= hi)
                             for lo, hi in zip((-1, *WAIT_BUCKETS_S), (*WAIT_BUCKETS_S, 1e18), strict=True)],
                    "flagged": sum(1 for v in live if v["flag"]), "ratings": [0] * 5, "sent": 0}
    for r in rows["ratings"]:
        if r["status"] == "counted":
            out[(r["office_code"], int(r["ts"]) // 3600 * 3600)]["ratings"][r["level"] - 1] += 1
    for w in rows["windows"]:
        if w["k"] >= 5 and w["visits"] >= 5:
            out[(w["office_code"], int(w["window_end"]) // 3600 * 3600)]["sent"] += w["visits"]
    return {k: e for k, e in out.items() if e["visits"] or any(e["ratings"]) or e["sent"]}


def _produced(store: Store) -> dict[tuple[str, int], FeedRecord]:
    recs = [FeedRecord.model_validate_json(r[3]) for r in records_after(store, 0, 10_000)]
    return {(r.office_code, int(r.hour_start.timestamp())): r for r in recs}


def _check(store: Store, rows: dict[str, list[dict[str, Any]]]) -> FeedProducer:
    _fill(store, rows)
    p = FeedProducer(store, FeedSettings(enabled=True, source_id="lc-t", close_after_s=0, recheck_days=2),
                     wait_target_s=1200.0, timezone="Asia/Ho_Chi_Minh", min_k=5)
    assert p.run_once(NOW) > 0
    assert p.run_once(NOW) == 0  # unchanged hours: nothing new
    got, want = _produced(store), _oracle(rows)
    assert set(got) == set(want)
    for key, e in want.items():
        r = got[key]
        assert (r.visits, r.served, r.no_shows, r.wait_count) == (e["visits"], e["served"], e["no_shows"],
                                                                   e["wait_count"]), key
        assert r.wait_sum_s == pytest.approx(e["wait_sum_s"], abs=1e-3)
        if e["mean"] is not None:
            assert r.wait_sum_s / r.wait_count == pytest.approx(e["mean"], abs=1e-3)
            assert r.wait_over_target / r.wait_count == pytest.approx(e["over_target"])
        assert list(r.wait_histogram) == e["hist"], key
        assert list(r.ratings_by_level) == e["ratings"], key
        assert r.flagged_visits == e["flagged"]
        assert (r.sentiment.visits if r.sentiment else 0) == e["sent"], key
        assert r.sentiment is None or r.sentiment.visits >= 5
    assert p.invalid == 0
    return p


def _revise(store: Store, p: FeedProducer) -> None:
    """A late completion changes one closed hour: one new revision, for that hour only."""
    before = _produced(store)
    v = s.visits
    with store.engine.begin() as conn:
        row = conn.execute(v.select().where(v.c.called_at.is_(None), v.c.no_show_at.is_(None),
                                            v.c.discarded_at.is_(None), v.c.issued_at.is_not(None))).first()
        conn.execute(v.update().where(v.c.office_code == row.office_code, v.c.ticket_no == row.ticket_no)
                     .values(called_at=row.issued_at + 50, completed_at=row.issued_at + 90, wait_s=50.0,
                             service_s=40.0))
    assert p.run_once(NOW) == 1
    after = _produced(store)
    key = (row.office_code, int(row.issued_at) // 3600 * 3600)
    assert after[key].revision == before[key].revision + 1
    assert after[key].served == before[key].served + 1
    assert {k: r.revision for k, r in after.items() if k != key} == \
        {k: r.revision for k, r in before.items() if k != key}
    with store.engine.begin() as conn:  # the hour emptied (queue reset): a zero revision, not silence
        conn.execute(v.update().where(v.c.office_code == row.office_code).values(discarded_at=NOW - 10))
        conn.execute(s.ratings.delete().where(s.ratings.c.office_code == row.office_code))
        conn.execute(s.sentiment_windows.delete().where(s.sentiment_windows.c.office_code == row.office_code))
    assert p.run_once(NOW) > 0
    emptied = [r for k, r in _produced(store).items() if k[0] == row.office_code]
    assert emptied and all(r.visits == 0 and sum(r.ratings_by_level) == 0 for r in emptied)


def test_hour_query_sqlite(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    try:
        _revise(store, _check(store, _rows(random.Random(3))))
    finally:
        store.close()


def test_hour_query_postgres_same_as_sqlite(tmp_path: Path, postgres: Any) -> None:
    rows = _rows(random.Random(3))
    pg, lite = Store(postgres.url), Store(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    try:
        _check(pg, rows)
        _check(lite, rows)
        strip = {"produced_at"}
        a = {k: json.loads(r.model_dump_json(exclude=strip)) for k, r in _produced(pg).items()}
        b = {k: json.loads(r.model_dump_json(exclude=strip)) for k, r in _produced(lite).items()}
        assert a == b
    finally:
        pg.close()
        lite.close()


def test_a_visit_stamped_before_the_window_is_left_out(tmp_path: Path) -> None:
    """A kiosk clock days off: its visit's hour lies before the recomputed days; publishing it would
    give that old hour a partial figure, so it is left out (and nothing fails)."""
    store = Store(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    try:
        p = _check(store, _rows(random.Random(4)))
        with store.engine.begin() as conn:
            conn.execute(s.visits.insert().values(office_code="03390", counter=2, service_day=DAY,
                                                  ticket_no=999, device_id="d", issued_at=HOUR0 - 5 * 86400))
        assert p.run_once(NOW) == 0
    finally:
        store.close()
