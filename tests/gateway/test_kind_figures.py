"""Ticket kinds and service fields over a period (gateway/store/kinds.py, sums of the kind rollup) against
values computed here in Python from the rows written, on SQLite and PostgreSQL, over a period and day by
day (the map's /api/v1/offices/{code}/kinds is a one-day period). The derived rows are written here and
the rollups recomputed by gateway.store.rollups.refresh; tests/gateway/test_rollups.py checks that the
writer's deltas equal that recomputation."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.booking.store import bookings
from gateway.store import Store, rollups
from gateway.store import schema as s
from gateway.store.kinds import appointment_figures, kind_figures
from gateway.ticket_kinds import visit_kinds

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TARGET = 1200.0
DAYS = [date(2026, 3, 2) + timedelta(days=i) for i in range(12)]
TODAY = DAYS[8]  # the last four days are not over: their bookings have no no-show rate yet


def _fill(store: Store, seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    rnd = random.Random(seed)
    visits, kinds, books = [], [], []
    for office in ("03390", "03405"):
        for day in DAYS:
            for no in range(1, rnd.randint(5, 25)):
                kind = rnd.choice(["walk_in", "walk_in", "priority", "appointment"])
                field = (
                    rnd.choice([None, "land", "civil"])
                    if kind != "appointment"
                    else rnd.choice(["land", "civil"])
                )
                slot = (
                    f"{rnd.randint(7, 16):02d}:{rnd.choice([0, 30]):02d}" if kind == "appointment" else None
                )
                start = datetime.fromisoformat(f"{day}T08:00").replace(tzinfo=TZ).timestamp()
                issued = start + rnd.uniform(0, 8 * 3600)
                if slot:
                    issued = datetime.fromisoformat(f"{day}T{slot}").replace(
                        tzinfo=TZ
                    ).timestamp() + rnd.uniform(-900, 900)
                fate = rnd.choice(["served", "served", "served", "no_show", "waiting", "discarded"])
                wait = round(rnd.uniform(10, 2500), 1) if fate in ("served", "no_show") else None
                visits.append(
                    {
                        "office_code": office,
                        "counter": 1,
                        "service_day": day.isoformat(),
                        "ticket_no": no,
                        "issued_at": issued,
                        "called_at": issued + wait if wait else None,
                        "completed_at": issued + wait + 300 if fate == "served" else None,
                        "no_show_at": issued + wait + 60 if fate == "no_show" else None,
                        "discarded_at": issued + 5 if fate == "discarded" else None,
                        "wait_s": wait,
                    }
                )
                if kind != "walk_in" or field is not None:
                    kinds.append(
                        {
                            "office_code": office,
                            "counter": 1,
                            "service_day": day.isoformat(),
                            "ticket_no": no,
                            "kind": kind,
                            "service_field": field,
                            "slot": slot,
                            "issued_synced": rnd.random() < 0.8,
                        }
                    )
            for i in range(rnd.randint(0, 6)):
                books.append(
                    {
                        "code": f"{office[-2:]}{day.day:02d}{i:02d}",
                        "office_code": office,
                        "service_field": rnd.choice(["land", "civil"]),
                        "day": day.isoformat(),
                        "slot": "09:00",
                        "created_at": 0.0,
                        "cancelled_at": 1.0 if rnd.random() < 0.2 else None,
                    }
                )
    with store.engine.begin() as conn:
        conn.execute(s.visits.insert(), visits)
        conn.execute(visit_kinds.insert(), kinds)
        conn.execute(bookings.insert(), books)
        rollups.refresh(conn, store.dialect, rollups.all_office_days(conn), 5, TZ)
    return visits, kinds, books


def _expected(visits: list[dict], kinds: list[dict], offices: set[str], days: set[str] | None = None) -> dict:
    by_key = {(k["office_code"], k["service_day"], k["ticket_no"]): k for k in kinds}
    groups: dict = {}
    for v in visits:
        if v["office_code"] not in offices or v["discarded_at"] is not None:
            continue
        if days is not None and v["service_day"] not in days:
            continue
        k = by_key.get((v["office_code"], v["service_day"], v["ticket_no"]), {})
        g = groups.setdefault(
            (k.get("kind", "walk_in"), k.get("service_field")),
            {"issued": 0, "called": 0, "served": 0, "no_show": 0, "waits": [], "late": []},
        )
        g["issued"] += 1
        g["called"] += v["called_at"] is not None
        g["served"] += v["completed_at"] is not None
        g["no_show"] += v["no_show_at"] is not None
        if v["wait_s"] is not None:
            g["waits"].append(v["wait_s"])
        if k.get("slot") and k["issued_synced"]:
            slot = datetime.fromisoformat(f"{v['service_day']}T{k['slot']}").replace(tzinfo=TZ).timestamp()
            g["late"].append((v["issued_at"] - slot) / 60)
    return groups


def _compare(got: list[dict], exp: dict) -> None:
    assert [(r["kind"], r["service_field"]) for r in got] == sorted(exp, key=lambda k: (k[0], k[1] or ""))
    for r in got:
        e = exp[(r["kind"], r["service_field"])]
        assert (r["issued"], r["called"], r["served"], r["no_show"]) == (
            e["issued"],
            e["called"],
            e["served"],
            e["no_show"],
        )
        w = sorted(e["waits"])
        assert r["wait_n"] == len(w)
        assert r["mean_wait_s"] == (pytest.approx(sum(w) / len(w)) if w else None)
        exact = w[-(-9 * len(w) // 10) - 1] if w else None  # nearest rank: the ceil(0.9 n)-th
        hist = [0] * s.HIST_BUCKETS
        for x in w:
            hist[rollups.bucket(x)] += 1
        assert r["p90_wait_s"] == rollups.hist_p90(hist)  # read from the histogram ...
        assert (exact is None) == (r["p90_wait_s"] is None)
        assert exact is None or abs(r["p90_wait_s"] - exact) <= 30.0  # ... within half a bucket
        assert r["over_target_share"] == (
            pytest.approx(sum(x > TARGET for x in w) / len(w)) if w else None
        )
        late = e["late"]
        assert r["mean_punctuality_min"] == (pytest.approx(sum(late) / len(late)) if late else None)


def _check(store: Store, seed: int) -> None:
    visits, kinds, books = _fill(store, seed)
    with store.engine.connect() as conn:
        got = kind_figures(conn, ["03390"], DAYS[0].isoformat(), DAYS[-1].isoformat(), TARGET)
        _compare(got, _expected(visits, kinds, {"03390"}))
        for day in DAYS[:3]:  # one day: what the map's office panel shows
            one = kind_figures(conn, ["03405"], day.isoformat(), day.isoformat(), TARGET)
            _compare(one, _expected(visits, kinds, {"03405"}, {day.isoformat()}))
        ap = appointment_figures(conn, ["03390", "03405"], DAYS[0].isoformat(), DAYS[-1].isoformat(), TODAY)
    active = [b for b in books if b["cancelled_at"] is None]
    closed = [b for b in active if b["day"] < TODAY.isoformat()]
    by_key = {(k["office_code"], k["service_day"], k["ticket_no"]): k for k in kinds}
    redeemed = [
        v
        for v in visits
        if v["discarded_at"] is None
        and v["service_day"] < TODAY.isoformat()
        and by_key.get((v["office_code"], v["service_day"], v["ticket_no"]), {}).get("kind") == "appointment"
    ]
    assert ap["booked"] == len(active) and ap["booked_closed_days"] == len(closed)
    assert ap["redeemed_closed_days"] == len(redeemed)
    rate = 1 - min(len(redeemed), len(closed)) / len(closed)
    assert ap["no_show_rate"] == pytest.approx(rate)
    for f in ap["by_field"]:
        b = [x for x in closed if x["service_field"] == f["service_field"]]
        red = [
            v
            for v in redeemed
            if by_key[(v["office_code"], v["service_day"], v["ticket_no"])]["service_field"]
            == f["service_field"]
        ]
        assert (f["booked_closed_days"], f["redeemed_closed_days"]) == (len(b), len(red))


@pytest.mark.parametrize("seed", [1, 2])
def test_kind_figures_sqlite(tmp_path, seed: int) -> None:
    store = Store(f"sqlite:///{tmp_path / 'k.sqlite3'}")
    store.migrate()
    _check(store, seed)
    store.close()


def test_kind_figures_postgres(postgres) -> None:
    store = Store(postgres.url)
    store.migrate()
    _check(store, 3)
    store.close()
