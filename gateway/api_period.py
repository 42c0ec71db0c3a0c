"""Period figures and exports, read from the rollups (docs/gateway.md#period-api).

Public: ``/api/v1/offices/{code}/period``, ``/api/v1/units/{code}/period`` (aggregates; ``officers``
filled only for a signed-in principal who reads the reports of every office asked for: an office head
their own offices, the province, operators and admins all; ``?officers=true`` demands them: 401
anonymous, 403 outside the scope), ``/api/v1/kpis.csv`` (streamed) and
``/api/v1/units/{code}/kpis``. Each is a handful of SQL aggregations over day rollups: a year costs
what a week does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from gateway import api_models as m
from gateway.api_common import optional_principal, parse_day
from gateway.period import By, PeriodService, figures
from gateway.period_models import Period
from gateway.store import schema as s
from gateway.store.kinds import add_sums, day_kinds, figures_of, stream_booked, stream_kind_sums
from gateway.store.periods import DAY_SUMS, SENTIMENT_SUMS, stream_sums

router = APIRouter()
MAX_DAYS = 366


def period_service(request: Request) -> PeriodService:
    st = request.app.state
    svc = getattr(st, "period", None)
    if svc is None:
        cfg = st.settings
        svc = st.period = PeriodService(st.store, cfg.kpi, cfg.staff_figures, st.store.integrity)
    return svc


def staff_figures(request: Request, offices: list[str], demanded: bool | None) -> bool:
    """Whether ``officers`` is filled: the principal reads the reports of every office in ``offices``
    (``Principal.reads_reports_of``: the same rule as /reports). ``demanded`` True turns a refusal into
    401 (anonymous) or 403; False never fills them; None fills them when allowed."""
    if demanded is False:
        return False
    principal = optional_principal(request)
    allowed = principal is not None and principal.reads_reports_of(offices)
    if demanded and not allowed:
        if principal is None:
            raise HTTPException(401, "sign in to read per-officer figures")
        raise HTTPException(403, f"{principal.name!r} does not read the per-officer figures of "
                                 f"{', '.join(offices) or 'these offices'}")
    return allowed


OfficersParam = Query(default=None, description="per-officer figures: true = required (401/403 when "
                      "not allowed), false = never, absent = when allowed")


def office_units(store: Any) -> dict[str, str]:
    """office code → unit code; an office code that is an old (merged) unit code → its new unit."""
    out = {o["code"]: o["unit_code"] for o in store.offices()}
    for mp in store.unit_mapping():
        if mp["old_code"] and mp["old_code"] not in out:
            out[mp["old_code"]] = mp["new_code"]
    return out


def _range(request: Request, start: str | None, end: str | None) -> tuple[date, date]:
    d_from, d_to = parse_day(start, request), parse_day(end or start, request)
    if d_to < d_from or (d_to - d_from).days > MAX_DAYS:
        raise HTTPException(422, f"need start <= end and at most {MAX_DAYS} days")
    return d_from, d_to


@router.get("/api/v1/offices/{code}/period", response_model=Period, tags=["public"])
def office_period(code: str, request: Request, start: str = Query(), end: str = Query(),
                  by: By = "month", officers: bool | None = OfficersParam) -> dict[str, Any]:
    """One office over [start, end] (local days, at most 366): totals, a series by day/week/month,
    per counter, and per officer (signed-in staff roles only)."""
    if request.app.state.store.office(code) is None:
        raise HTTPException(404, f"office {code!r} not found")
    d_from, d_to = _range(request, start, end)
    staff = staff_figures(request, [code], officers)
    return period_service(request).period("office", code, [code], d_from, d_to, by, staff)


@router.get("/api/v1/units/{code}/period", response_model=Period, tags=["public"])
def unit_period(code: str, request: Request, start: str = Query(), end: str = Query(),
                by: By = "month", officers: bool | None = OfficersParam) -> dict[str, Any]:
    """A commune-level unit over [start, end]: all its offices, with history recorded under the old
    codes merged into it."""
    st = request.app.state
    if code not in st.store.units():
        raise HTTPException(404, f"unit {code!r} not found")
    d_from, d_to = _range(request, start, end)
    offices = sorted(o for o, u in office_units(st.store).items() if u == code)
    current = [o["code"] for o in st.store.offices() if o["unit_code"] == code]  # as /reports checks
    staff = staff_figures(request, current, officers)
    return period_service(request).period("unit", code, offices, d_from, d_to, by, staff)


# ---------------------------------------------------------------------------- per-day KPI rows

CSV_KPI_COLS = ["visits", "served", "waiting_now", "no_shows", "avg_wait_s", "p90_wait_s",
                "over_target_share", "avg_service_s", "p90_service_s", "rated", "not_satisfied",
                "satisfaction_rate", "sentiment_score", "sentiment_visits"]
KINDS = ("walk_in", "priority", "appointment")
NO_TICKETS = figures_of({}, 1.0)  # a kind with no row: no tickets, no waits (the target plays no part)
# by ticket kind (all fields together; by field: /api/v1/kinds.csv), appointments' punctuality and
# no-show rate (bookings are per office: blank at counter level; the rate once the day is over)
CSV_KIND_COLS = [*(f"{k}_{c}" for k in KINDS for c in ("issued", "avg_wait_s", "p90_wait_s")),
                 "appointment_punctuality_min", "appointments_booked", "appointment_no_show_rate"]
LEVEL_KEYS = {"counter": ["service_day", "office_code", "counter"], "office": ["service_day", "office_code"],
              "unit": ["service_day", "office_code"]}


def kpi_row(d: dict[str, Any], sent: dict[str, Any], target_s: float) -> dict[str, Any]:
    """The KPI block of the per-day API and CSV from summed rollup columns."""
    f = figures(d, sent, {}, target_s, 0.95)
    return {"visits": f["visits"], "served": f["served"], "waiting_now": f["waiting"],
            "no_shows": f["no_show"], "avg_wait_s": f["wait_avg_s"], "p90_wait_s": f["wait_p90_s"],
            "over_target_share": f["over_target_share"],
            "avg_service_s": f["service_avg_s"], "p90_service_s": f["service_p90_s"], "rated": f["n_ratings"],
            "ratings": f["ratings"], "rating_scale": _scale(d, f["n_ratings"]),
            "not_satisfied": f["not_satisfied"], "satisfaction_rate": f["satisfaction"],
            "sentiment_score": f["sentiment_index"], "sentiment_visits": f["sentiment_visits"]}


def kind_columns(raw: dict[tuple[str, str], dict[str, Any]], booked: int | None, day_over: bool,
                 target_s: float) -> dict[str, Any]:
    """``by_kind`` and ``appointments`` of one row (gateway.store.kinds.day_kinds) and the flat CSV
    columns: each kind's fields summed, then the same figures."""
    figures = {key: figures_of(r, target_s) for key, r in raw.items()}  # each once: ~15 µs apiece
    out = day_kinds(raw, booked, day_over, figures)
    for kind in KINDS:
        keys = [key for key in raw if key[0] == kind]
        if not keys:
            f = NO_TICKETS
        elif len(keys) == 1:  # one field (the usual case): its figures are the kind's
            f = figures[keys[0]]
        else:
            sums: dict[str, Any] = {}
            for key in keys:
                add_sums(sums, raw[key])
            f = figures_of(sums, target_s)
        out |= {f"{kind}_issued": f["issued"], f"{kind}_avg_wait_s": f["mean_wait_s"],
                f"{kind}_p90_wait_s": f["p90_wait_s"]}
        if kind == "appointment":
            out["appointment_punctuality_min"] = f["mean_punctuality_min"]
    out["appointments_booked"] = out["appointments"]["booked"]
    out["appointment_no_show_rate"] = out["appointments"]["no_show_rate"]
    return out


def _scale(d: dict[str, Any], n: int) -> int | None:
    """The scale most counted ratings used (3 or 5 levels)."""
    return None if not n else (5 if 2 * (d.get("scale5") or 0) > n else 3)


Keyed = Iterator[tuple[tuple[Any, ...], dict[str, Any]]]


def _keyed(rows: Iterator[dict[str, Any]], keys: list[str]) -> Keyed:
    return ((tuple(r[k] for k in keys), r) for r in rows)


def _merge(streams: list[Keyed]) -> Iterator[tuple[tuple[Any, ...], list[list[dict[str, Any]]]]]:
    """An outer merge of streams sorted by key: per key, each stream's rows with that key."""
    heads = [next(st, None) for st in streams]
    while any(h is not None for h in heads):
        key = min(h[0] for h in heads if h is not None)
        got: list[list[dict[str, Any]]] = []
        for i, st in enumerate(streams):
            mine, head = [], heads[i]
            while head is not None and head[0] == key:
                mine.append(head[1])
                head = next(st, None)
            heads[i] = head
            got.append(mine)
        yield key, got


@dataclass
class _Row:
    """One key's sums: rollup_day, rollup_sentiment, rollup_kinds per (kind, field), bookings."""

    d: dict[str, Any] = field(default_factory=dict)
    w: dict[str, Any] = field(default_factory=dict)
    kinds: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    booked: int | None = None

    def add(self, d: list[dict[str, Any]], w: list[dict[str, Any]], kinds: list[dict[str, Any]],
            booked: list[dict[str, Any]] | None) -> _Row:
        for into, rows, cols in ((self.d, d, DAY_SUMS), (self.w, w, SENTIMENT_SUMS)):
            for row in rows:
                for c in cols:
                    into[c] = into.get(c, 0) + (row.get(c) or 0)
        for r in kinds:
            add_sums(self.kinds.setdefault((r["kind"], r["service_field"]), {}), r)
        if booked is not None:
            self.booked = (self.booked or 0) + sum(int(b["booked"]) for b in booked)
        return self


def _merged(request: Request, level: str, d_from: date, d_to: date,
            offices: list[str] | None) -> Iterator[tuple[tuple[Any, ...], _Row]]:
    """(key, sums) in key order: an outer merge of streamed, sorted queries."""
    engine, keys = request.app.state.store.engine, LEVEL_KEYS[level]
    f, t = d_from.isoformat(), d_to.isoformat()
    streams = [_keyed(stream_sums(engine, s.rollup_day, keys, offices, f, t), keys),
               _keyed(stream_sums(engine, s.rollup_sentiment, keys, offices, f, t), keys),
               _keyed(stream_kind_sums(engine, keys, offices, f, t), keys)]
    if level != "counter":  # bookings are per office and day (none of the days still to come)
        last = min(t, request.app.state.kpi.today().isoformat())
        streams.append(_keyed(stream_booked(engine, offices, f, last), keys))
    for key, (d, w, kinds, *booked) in _merge(streams):
        yield key, _Row().add(d, w, kinds, booked[0] if booked else None)


def _full_row(row: _Row, day: str, today: str, target: float) -> dict[str, Any]:
    return kpi_row(row.d, row.w, target) | kind_columns(row.kinds, row.booked, day < today, target)


def kpi_rows(request: Request, level: str, d_from: date, d_to: date,
             offices: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """KPI rows per day and counter/office/unit, in order (history under merged units adds up by unit:
    the offices of one day are summed per unit before the row is made), with the day's figures by
    ticket kind and field."""
    target = request.app.state.settings.kpi.wait_target_s
    today = request.app.state.kpi.today().isoformat()
    if level != "unit":
        names = ["day", *LEVEL_KEYS[level][1:]]
        for key, row in _merged(request, level, d_from, d_to, offices):
            yield {**dict(zip(names, key, strict=True)), **_full_row(row, key[0], today, target)}
        return
    units = office_units(request.app.state.store)
    day, acc = None, {}
    for (service_day, office), row in _merged(request, level, d_from, d_to, offices):
        if service_day != day:
            yield from _unit_rows(day, acc, today, target)
            day, acc = service_day, {}
        unit = acc.setdefault(units.get(office, office), _Row(booked=0))
        unit.add([row.d], [row.w], [{"kind": k, "service_field": f, **r} for (k, f), r in row.kinds.items()],
                 [{"booked": row.booked or 0}])
    yield from _unit_rows(day, acc, today, target)


def _unit_rows(day: str | None, acc: dict[str, _Row], today: str, target: float) -> Iterator[dict[str, Any]]:
    for unit in sorted(acc):
        yield {"day": day, "unit_code": unit, **_full_row(acc[unit], day or "", today, target)}


def _cell(v: Any) -> Any:
    return "" if v is None else (round(v, 4) if isinstance(v, float) else v)


@router.get("/api/v1/kpis.csv", tags=["public"], response_class=StreamingResponse)
def kpis_csv(request: Request, from_: str = Query(alias="from"), to: str = Query(),
             level: Literal["counter", "office", "unit"] = "office") -> StreamingResponse:
    """KPIs per day and counter/office/unit as CSV (public: aggregates only), streamed. Rating columns
    r1..r5 count each level; unit level adds up history recorded under merged (old) codes; p90 columns
    come from the wait histogram (within 30 s below an hour). Then per ticket kind (all its service
    fields: by field in /api/v1/kinds.csv) tickets, mean and p90 wait; appointments' punctuality
    (minutes from the slot's start), bookings and no-show rate (office and unit levels, days over)."""
    d_from, d_to = _range(request, from_, to)
    names = ["day", *LEVEL_KEYS[level][1:]] if level != "unit" else ["day", "unit_code"]

    def rows() -> Iterator[list[list[Any]]]:
        for r in kpi_rows(request, level, d_from, d_to):
            ratings = [r["ratings"].get(str(i), 0) for i in range(1, 6)]
            yield [[r[k] for k in names] + [_cell(r[c]) for c in CSV_KPI_COLS] + ratings
                   + [_cell(r[c]) for c in CSV_KIND_COLS]]

    header = names + CSV_KPI_COLS + [f"r{i}" for i in range(1, 6)] + CSV_KIND_COLS
    return _csv_response(header, rows(), f"motcua-kpis-{level}-{d_from}-{d_to}.csv")


def _csv_response(header: list[str], rows: Iterator[list[list[Any]]], fname: str) -> StreamingResponse:
    """A CSV streamed in chunks of 500 source rows (each gives one or more lines): a year of a
    province never sits in memory."""

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for n, group in enumerate(rows, 1):
            w.writerows(group)
            if n % 500 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{fname}"'})


KIND_CSV_COLS = ["kind", "service_field", "issued", "called", "served", "no_show", "wait_n", "mean_wait_s",
                 "p90_wait_s", "over_target_share", "mean_punctuality_min"]


@router.get("/api/v1/kinds.csv", tags=["public"], response_class=StreamingResponse)
def kinds_csv(request: Request, from_: str = Query(alias="from"), to: str = Query(),
              level: Literal["counter", "office", "unit"] = "office") -> StreamingResponse:
    """Figures by ticket kind and service field per day and counter/office/unit as CSV (public,
    streamed): the ``by_kind`` of the kpis.csv rows (the same rows, one line per kind and field)."""
    d_from, d_to = _range(request, from_, to)
    names = ["day", *LEVEL_KEYS[level][1:]] if level != "unit" else ["day", "unit_code"]

    def rows() -> Iterator[list[list[Any]]]:
        for r in kpi_rows(request, level, d_from, d_to):
            yield [[r[c] for c in names] + [_cell(k[c]) for c in KIND_CSV_COLS] for k in r["by_kind"]]

    return _csv_response(names + KIND_CSV_COLS, rows(), f"motcua-kinds-{level}-{d_from}-{d_to}.csv")


@router.get("/api/v1/units/{code}/kpis", response_model=list[m.UnitDay], tags=["public"])
def unit_kpis(code: str, request: Request, from_: str | None = Query(default=None, alias="from"),
              to: str | None = None) -> list[dict[str, Any]]:
    """A commune-level unit's KPIs per day (default: today), all its offices together, including
    history recorded under the old codes merged into it."""
    st = request.app.state
    if code not in st.store.units():
        raise HTTPException(404, f"unit {code!r} not found")
    d_from, d_to = _range(request, from_, to)
    offices = sorted(o for o, u in office_units(st.store).items() if u == code)
    rows = kpi_rows(request, "unit", d_from, d_to, offices)
    return [{"day": r["day"], "unit_code": r["unit_code"], "kpi": r, "by_kind": r["by_kind"],
             "appointments": r["appointments"]} for r in rows if r["unit_code"] == code]
