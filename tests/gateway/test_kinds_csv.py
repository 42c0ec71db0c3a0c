"""Ticket kinds in the period CSV (/api/v1/kpis.csv, /api/v1/kinds.csv) and the unit KPIs, against the
events written (through the real writer) and against the map's and the period API's figures: one
source (gateway/store/kinds.py over the kind rollup).

Two days of Bình Lư: an entrance kiosk's shared lines (field land/civil, three appointments each day,
called by counters 1-3) and priority tickets at counter 1; bookings yesterday (six) and today.
"""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from contract.codec import decode, encode
from contract.payloads import EventType
from contract.topics import events_topic
from gateway.booking.store import bookings
from gateway.store.writer import Incoming, apply_batch
from tests.gateway.test_integrity_order import TZ
from tests.gateway.test_rollups import _shared_line_events, registry

pytestmark = pytest.mark.slow  # a gateway


def _csv(gw, path: str, params: dict) -> list[dict[str, str]]:
    r = gw.public.get(path, params=params)
    assert r.status_code == 200, r.text
    return list(csv.DictReader(io.StringIO(r.text)))


def _expected(events: list) -> dict[str, dict[str, float]]:
    """Per kind, from the events: tickets issued and the waits stated (called or no-show)."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"issued": 0, "wait_n": 0, "wait_sum": 0.0})
    for e in events:
        kind = getattr(e.data, "kind", None)
        if kind is None:
            continue
        if e.type == EventType.TICKET_ISSUED:
            out[kind.value]["issued"] += 1
        elif e.type in (EventType.TICKET_CALLED, EventType.TICKET_NO_SHOW) and e.data.wait_s is not None:
            out[kind.value]["wait_n"] += 1
            out[kind.value]["wait_sum"] += e.data.wait_s
    return out


def test_kinds_in_the_period_csv_and_unit_kpis(mosquitto, gateway_factory) -> None:
    gw = gateway_factory(mosquitto.url)
    store = gw.app.state.store
    store.load_registry(registry())
    today = gw.app.state.kpi.today()
    yesterday = today - timedelta(days=1)
    by_day = {}
    for day in (yesterday, today):
        start = datetime.combine(day, datetime.min.time(), TZ).replace(hour=8).astimezone(UTC)
        if day == today:
            start = min(start, datetime.now(UTC) - timedelta(hours=3))
        events = _shared_line_events(day, start)
        by_day[day.isoformat()] = _expected(events)
        msgs = [Incoming(decode(events_topic(e.office_code, e.device_id), encode(e)), time.time())
                for e in events]
        apply_batch(store, msgs, {}, TZ, set())
    with store.engine.begin() as conn:
        conn.execute(bookings.insert(), [
            {"code": f"K{d.day:02d}{i}", "office_code": "03390", "service_field": "land",
             "day": d.isoformat(), "slot": "09:00", "created_at": 0.0,
             "cancelled_at": 5.0 if i == 6 else None}
            for d in (yesterday, today) for i in range(7)])

    params = {"from": yesterday.isoformat(), "to": today.isoformat()}
    rows = {r["day"]: r for r in _csv(gw, "/api/v1/kpis.csv", params) if r["office_code"] == "03390"}
    assert set(rows) == {yesterday.isoformat(), today.isoformat()}
    for day, row in rows.items():
        want = by_day[day]
        for kind in ("walk_in", "priority", "appointment"):
            assert int(row[f"{kind}_issued"]) == want[kind]["issued"], (day, kind)
            mean = want[kind]["wait_sum"] / want[kind]["wait_n"]
            assert float(row[f"{kind}_avg_wait_s"]) == pytest.approx(mean, abs=1e-4), (day, kind)
        assert row["appointments_booked"] == "6"
        kinds_api = gw.public.get("/api/v1/offices/03390/kinds", params={"day": day}).json()
        assert kinds_api["appointments"]["booked"] == 6 and kinds_api["appointments"]["redeemed"] == 3
        if day == yesterday.isoformat():  # over: 1 − 3 ÷ 6
            assert float(row["appointment_no_show_rate"]) == 0.5 == kinds_api["appointments"]["no_show_rate"]
        else:  # not over yet
            assert row["appointment_no_show_rate"] == "" and kinds_api["appointments"]["no_show_rate"] is None
        assert row["appointment_punctuality_min"] != ""

        # by field: kinds.csv's lines are the period API's by_kind of that day, and the map's
        one = {"from": day, "to": day}
        lines = [r for r in _csv(gw, "/api/v1/kinds.csv", one) if r["office_code"] == "03390"]
        period = gw.public.get("/api/v1/offices/03390/period", params={"start": day, "end": day}).json()
        assert len(lines) == len(period["by_kind"]) == len(kinds_api["by_kind"]) >= 4
        for line, k, m in zip(lines, period["by_kind"], kinds_api["by_kind"], strict=True):
            assert (line["kind"], line["service_field"] or None) == (k["kind"], k["service_field"])
            assert k == {**m}
            assert int(line["issued"]) == k["issued"] and int(line["wait_n"]) == k["wait_n"]
            assert float(line["mean_wait_s"]) == pytest.approx(k["mean_wait_s"], abs=1e-4)
            assert (line["p90_wait_s"] == "") == (k["p90_wait_s"] is None)

    counters = _csv(gw, "/api/v1/kpis.csv", {**params, "level": "counter"})
    mine = [r for r in counters if r["office_code"] == "03390" and r["day"] == yesterday.isoformat()]
    assert sum(int(r["appointment_issued"]) for r in mine) == 3
    assert {r["appointments_booked"] for r in mine} == {""}  # bookings are per office

    unit = gw.public.get("/api/v1/units/03390/kpis", params=params).json()
    assert [u["day"] for u in unit] == [yesterday.isoformat(), today.isoformat()]
    for u in unit:
        kinds_api = gw.public.get("/api/v1/offices/03390/kinds", params={"day": u["day"]}).json()
        assert u["by_kind"] == kinds_api["by_kind"]  # one office in the unit: the same figures
        assert {k: u["appointments"][k] for k in ("booked", "redeemed", "no_show_rate")} == {
            k: kinds_api["appointments"][k] for k in ("booked", "redeemed", "no_show_rate")}
    unit_rows = _csv(gw, "/api/v1/kpis.csv", {**params, "level": "unit"})
    assert [r["appointment_no_show_rate"] for r in unit_rows if r["unit_code"] == "03390"] == ["0.5", ""]
