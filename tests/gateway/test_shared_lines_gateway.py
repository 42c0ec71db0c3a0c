"""Shared lines at the gateway, through the real writer (SQLite and PostgreSQL): a ticket of an entrance
kiosk's line (``counter`` = the line's number, 6) called, served and rated by counter 5
(``serving_counter`` = 5) counts for counter 5 in every per-counter figure (rollups, period API, the
day's KPIs, kinds), the office's totals are those of its visits, a serving counter outside the office
is refused and counted; and figures by kind outlive the visits that retention purges.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from contract.codec import decode, encode
from contract.topics import events_topic
from gateway.config import IntegritySettings, KpiSettings, RetentionSettings, Settings, StaffFiguresSettings
from gateway.kpi import KpiService
from gateway.period import PeriodService
from gateway.registry import load_registry
from gateway.retention import Retention
from gateway.store import Store
from gateway.store import schema as s
from gateway.store.kinds import kind_figures
from gateway.store.writer import Incoming, apply_batch
from gateway.ticket_kinds import visit_kinds
from tests.gateway.kiosk_sim import EventFactory
from tests.gateway.test_integrity_order import TZ
from tests.gateway.test_rollups import ticket_events

LINE = 6  # the entrance kiosk's line number at the gateway (the office has counters 1-6)


def _store(url: str) -> Store:
    store = Store(url)
    store.migrate()
    reg = load_registry(Settings().registry_file)
    for office in reg["offices"]:
        if office["code"] == "03390":
            office["counters"] = LINE
    reg["devices"].append({"device_id": "k03390-cua", "office_code": "03390", "counter": LINE})
    store.load_registry(reg)
    return store


def _url(backend: str, tmp_path, request) -> str:
    """A fresh SQLite file, or the session's PostgreSQL (started only for the postgres cases)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'g.sqlite3'}"
    return request.getfixturevalue("postgres").url


def _ingest(store: Store, events: list) -> None:
    msgs = [Incoming(decode(events_topic(e.office_code, e.device_id), encode(e)), time.time())
            for e in events]
    apply_batch(store, msgs, {}, TZ, set())


def _events(day, start: datetime) -> list:
    line, q1 = EventFactory("k03390-cua", "03390", LINE), EventFactory("k03390-q1", "03390", 1)
    events = ticket_events(line, 1, day, start, 400.0, {"service_field": "land"}, 5, officer="cb-05")
    rating = line.rating(1, day, 1, start + timedelta(minutes=20), officer="claimed")
    events.append(rating.model_copy(update={"data": rating.data.model_copy(update={"serving_counter": 5})}))
    events += ticket_events(line, 2, day, start + timedelta(minutes=2), 0.0, {"service_field": "land"}, None,
                            "waiting")
    events += ticket_events(q1, 1, day, start, 100.0, {"kind": "priority"}, None, officer="cb-01")
    return events


def _rows(store: Store, table) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).where(table.c.office_code == "03390"))]


def _check_serving_counter(url: str) -> None:
    store = _store(url)
    day = datetime.now(TZ).date()
    start = datetime.now(UTC) - timedelta(hours=2)
    try:
        _ingest(store, _events(day, start))
        day_rows = {(r["counter"], r["officer_id"]): r for r in _rows(store, s.rollup_day)}
        assert set(day_rows) == {(1, "cb-01"), (5, "cb-05"), (LINE, "")}
        five = day_rows[(5, "cb-05")]
        assert (five["visits"], five["served"], five["wait_n"], five["r1"]) == (1, 1, 1, 1)
        assert five["wait_sum"] == 400.0
        line = day_rows[(LINE, "")]  # the line keeps only its ticket nobody called yet
        assert (line["visits"], line["waiting"], line["served"], line["r1"]) == (1, 1, 0, 0)
        assert [(r["counter"], r["n"]) for r in _rows(store, s.rollup_reasons)] == [(5, 1)]
        assert {r["counter"] for r in _rows(store, s.rollup_hours)} == {1, 5, LINE}
        kinds = {(r["counter"], r["kind"], r["service_field"]): r["visits"]
                 for r in _rows(store, s.rollup_kinds)}
        assert kinds == {(1, "priority", ""): 1, (5, "walk_in", "land"): 1, (LINE, "walk_in", "land"): 1}

        period = PeriodService(store, KpiSettings(), StaffFiguresSettings(), IntegritySettings()).period(
            "office", "03390", ["03390"], day, day, "day", True)
        by_counter = {c["counter"]: c for c in period["counters"]}
        five = by_counter[5]
        assert (five["served"], five["n_ratings"], five["wait_avg_s"]) == (1, 1, 400.0)
        assert by_counter[LINE]["served"] == 0 and by_counter[LINE]["n_ratings"] == 0
        totals = period["totals"]  # the office's totals: its three visits, wherever they count
        assert (totals["visits"], totals["served"], totals["waiting"], totals["n_ratings"]) == (3, 2, 1, 1)
        assert {o["officer_id"]: o["n"] for o in period["officers"]} == {"cb-01": 0, "cb-05": 1}

        detail = KpiService(store, KpiSettings()).office_detail("03390", day)  # the day's raw-row KPIs
        live = {c["counter"]: c["kpi"] for c in detail["counters"]}
        assert (live[5]["served"], live[5]["rated"], live[5]["avg_wait_s"]) == (1, 1, 400.0)
        assert (live[LINE]["served"], live[LINE]["waiting_now"], live[LINE]["rated"]) == (0, 1, 0)
        assert (detail["kpi"]["visits"], detail["kpi"]["served"]) == (3, 2)

        with store.engine.connect() as conn:
            v = s.visits
            stored = conn.execute(select(v.c.counter, v.c.ticket_no, v.c.serving_counter).where(
                v.c.office_code == "03390").order_by(v.c.counter, v.c.ticket_no)).all()
        assert [tuple(r) for r in stored] == [(1, 1, None), (LINE, 1, 5), (LINE, 2, None)]

        # a serving counter the office does not have: refused and counted, nothing moves
        before = _rows(store, s.rollup_day)
        bad = EventFactory("k03390-cua", "03390", LINE)
        bad.seq = 100
        _ingest(store, ticket_events(bad, 3, day, start, 10.0, {"service_field": "land"}, 7)[1:])
        assert store.counters().get("rejected:unknown_counter") == 2
        assert _rows(store, s.rollup_day) == before
    finally:
        store.close()


def test_shared_line_visit_counts_for_its_serving_counter_sqlite(tmp_path) -> None:
    _check_serving_counter(f"sqlite:///{tmp_path / 'g.sqlite3'}")


def test_shared_line_visit_counts_for_its_serving_counter_postgres(postgres) -> None:
    _check_serving_counter(postgres.url)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def test_kind_figures_outlive_retention(backend, tmp_path, request) -> None:
    """Retention purges the visits and their kinds; the figures by kind, read from the rollups, stay."""
    url = _url(backend, tmp_path, request)
    store = _store(url)
    day = datetime.now(TZ).date()
    try:
        _ingest(store, _events(day, datetime.now(UTC) - timedelta(hours=2)))
        with store.engine.connect() as conn:
            before = kind_figures(conn, ["03390"], day.isoformat(), day.isoformat(), 1200.0)
        assert {(r["kind"], r["service_field"]) for r in before} == {("priority", None), ("walk_in", "land")}
        later = time.time() + 10 * 86400  # ten days on, derived rows kept for one day only
        out = Retention(store, RetentionSettings(raw_days=1, aggregate_days=1)).run(later)
        assert out["visits"] == 3 and out["visit_kinds"] == 3
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(visit_kinds)).scalar_one() == 0
            assert kind_figures(conn, ["03390"], day.isoformat(), day.isoformat(), 1200.0) == before
    finally:
        store.close()



def _served_by(event, counter: int):
    return event.model_copy(update={"data": event.data.model_copy(update={"serving_counter": counter})})


def _top_ratings(servers: list[int], shared: bool, day, start: datetime) -> list:
    """Visits served by ``servers`` in turn (five minutes each), top-rated about 20 s apart: on one
    shared line (entrance k03390-cua) or on the counters' own lines."""
    line = EventFactory("k03390-cua", "03390", LINE)
    own = {c: EventFactory(f"k03390-q{c}", "03390", c) for c in set(servers)}
    events = []
    for i, c in enumerate(servers, start=1):
        kiosk = line if shared else own[c]
        issued = start + timedelta(seconds=20 * i)
        visit = [*kiosk.visit(i, day, issued, 30.0, 300.0, officer=f"cb-0{c}"),
                 kiosk.rating(i, day, 3, issued + timedelta(seconds=340))]
        events += [_served_by(e, c) for e in visit] if shared else visit
    return events


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def test_top_ratings_of_a_shared_line_are_judged_per_serving_counter(backend, tmp_path, request) -> None:
    """The burst rule (by default 5 top ratings of one counter within 120 s) judges a shared line's
    ratings by the counter that served each visit: five genuine top ratings spread over counters 1-3
    within 80 s are no burst, on a shared line as on own lines, in either arrival order (ratings
    first: held as pending, then decided); five served at one counter of the line still are.
    One day per case, so the cases never meet in one counter-day."""
    url = _url(backend, tmp_path, request)
    store = _store(url)
    today, now = datetime.now(TZ).date(), datetime.now(UTC) - timedelta(hours=1)
    cases = [([1, 2, 3, 1, 2], False, False, None), ([1, 2, 3, 1, 2], True, False, None),
             ([1, 2, 3, 1, 2], True, True, None), ([1, 1, 1, 1, 1], True, False, "top_rating_burst")]
    try:
        for back, (servers, shared, reverse, flag) in enumerate(cases, start=1):
            day, start = today - timedelta(days=back), now - timedelta(days=back)
            events = _top_ratings(servers, shared, day, start)
            _ingest(store, events[::-1] if reverse else events)
            got = [(r["status"], r["flag"]) for r in _rows(store, s.ratings)
                   if r["service_day"] == day.isoformat()]
            assert got == [("counted", flag)] * 5, (servers, shared, reverse, got)
    finally:
        store.close()
