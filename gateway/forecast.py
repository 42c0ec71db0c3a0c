"""Demand forecast by weekday and hour, aware of Vietnamese public holidays and Tết, and the
staffing it implies for the wait target (Erlang C).

Method (explained on the /reports page):
* the expected arrivals on a day and hour = the mean of the same weekday and hour over the previous
  ``weeks`` *ordinary* weeks: history days that were public holidays or fell in the Tết period are
  skipped (and replaced by older weeks), so that one holiday does not pull a normal week down;
* a public holiday (the ``holidays`` package's Vietnam calendar, lunar dates included) is forecast
  as closed (0);
* a day in the Tết period (``TET_BEFORE_DAYS`` before to ``TET_AFTER_DAYS`` after the first day of
  the lunar year, holidays excepted) is the ordinary forecast times the Tết factor measured in the
  history (arrivals on past Tết-period days ÷ their ordinary forecast); with no Tết in the history
  the factor is 1 and ``tet_factor_measured`` says so;
* the error is measured on held-back weeks: each of the last ``backtest_weeks`` weeks is forecast
  from the history before it and compared with what came: MAE per office hour and MAPE of the daily
  totals (open days only: a day with no arrival has no percentage error);
* staffing: for each hour, the fewest counters ``c`` for which an M/M/c queue (Erlang C) with the
  forecast arrival rate and the measured mean service time keeps the mean wait within the target and
  at least ``service_level`` of visitors under it.

Arrivals come from a callable ``arrivals(first, last) -> {(iso_day, hour): count}`` so that this
module reads no table itself (the KPI service or the rollups supply it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import holidays

from gateway.period import figures
from gateway.store import Store
from gateway.store import schema as s
from gateway.store.periods import sums

if TYPE_CHECKING:
    from gateway.kpi import KpiService

OFFICE_HOURS = range(7, 18)  # forecast/error over 07:00–17:59 local
TET_BEFORE_DAYS = 7  # offices are quieter in the weeks around Tết (DOMAIN-NOTES)
TET_AFTER_DAYS = 10
LOOKBACK_WEEKS = 12  # how far back to look for `weeks` ordinary same weekdays
MAX_COUNTERS = 50
SERVICE_DAYS = 28  # the mean service time the staffing uses: the last four weeks

Arrivals = Callable[[date, date], dict[tuple[str, int], int]]


# ---------------------------------------------------------------------------- calendar


@lru_cache(maxsize=64)
def _vn_holidays(year: int) -> dict[date, str]:
    return dict(holidays.country_holidays("VN", years=year).items())


def holiday_name(day: date) -> str | None:
    """The public holiday's name (the package's English names), or None."""
    return _vn_holidays(day.year).get(day)


@lru_cache(maxsize=64)
def lunar_new_year(year: int) -> date:
    """First day of Tết in ``year``, from the holidays package's Vietnam calendar."""
    days = [d for d, name in _vn_holidays(year).items() if name == "Lunar New Year"]
    if not days:
        raise ValueError(f"no Lunar New Year in the holidays calendar for {year}")
    return min(days)


def in_tet_period(day: date) -> bool:
    for year in (day.year, day.year + 1):
        first = lunar_new_year(year)
        if first - timedelta(days=TET_BEFORE_DAYS) <= day <= first + timedelta(days=TET_AFTER_DAYS):
            return True
    return False


def ordinary(day: date) -> bool:
    """Neither a holiday nor in the Tết period: a day the weekly pattern describes."""
    return holiday_name(day) is None and not in_tet_period(day)


# ---------------------------------------------------------------------------- Erlang C


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c with ``servers`` and offered ``load`` (Erlangs).
    1.0 when the queue is unstable (load >= servers). Erlang B by its stable recursion, then C."""
    if load <= 0:
        return 0.0
    if load >= servers:
        return 1.0
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return servers * b / (servers - load * (1 - b))


def counters_needed(arrivals_per_h: float, service_s: float, target_s: float,
                    service_level: float = 0.8) -> int:
    """Fewest counters with mean wait <= target and P(wait <= target) >= service_level (0 if no one comes)."""
    if arrivals_per_h <= 0:
        return 0
    lam = arrivals_per_h / 3600.0
    mu = 1.0 / service_s
    load = lam / mu
    for c in range(max(1, math.floor(load)), MAX_COUNTERS + 1):
        if load >= c:
            continue
        pw = erlang_c(c, load)
        rate = c * mu - lam
        if pw / rate <= target_s and pw * math.exp(-rate * target_s) <= 1 - service_level:
            return c
    return MAX_COUNTERS


# ---------------------------------------------------------------------------- forecast


@dataclass(frozen=True)
class ForecastSettings:
    weeks: int = 4
    backtest_weeks: int = 8
    service_level: float = 0.8


class Forecaster:
    """Forecasts one office from its arrivals per (day, hour); reads each range of days once."""

    def __init__(self, arrivals: Arrivals, settings: ForecastSettings = ForecastSettings()) -> None:
        self._arrivals = arrivals
        self.cfg = settings
        self._counts: dict[tuple[str, int], int] = {}
        self._loaded: list[tuple[date, date]] = []
        self._tet: dict[date, tuple[float, bool]] = {}

    def _load(self, first: date, last: date) -> None:
        if any(a <= first and last <= b for a, b in self._loaded):
            return
        self._counts.update(self._arrivals(first, last))
        self._loaded.append((first, last))

    @property
    def _first(self) -> date | None:
        return min((a for a, _b in self._loaded), default=None)

    def _count(self, day: date, hour: int) -> int:
        return self._counts.get((day.isoformat(), hour), 0)

    def _same_weekdays(self, target: date, history_end: date) -> list[date]:
        """Up to ``weeks`` ordinary same weekdays before ``target`` and not after ``history_end``."""
        out = []
        for w in range(1, LOOKBACK_WEEKS + 1):
            src = target - timedelta(days=7 * w)
            if src <= history_end and ordinary(src):
                out.append(src)
                if len(out) == self.cfg.weeks:
                    break
        return out

    def _ordinary_forecast(self, target: date, history_end: date) -> dict[int, float]:
        days = self._same_weekdays(target, history_end)
        return {h: (sum(self._count(d, h) for d in days) / len(days) if days else 0.0) for h in OFFICE_HOURS}

    def tet_factor(self, history_end: date) -> tuple[float, bool]:
        """(arrivals on the last Tết period's working days before ``history_end`` ÷ their ordinary
        forecast, measured?). Reads that Tết's weeks when first asked."""
        year = history_end.year if lunar_new_year(history_end.year) <= history_end else history_end.year - 1
        first_day = lunar_new_year(year)
        start = first_day - timedelta(days=TET_BEFORE_DAYS)
        end = min(history_end, first_day + timedelta(days=TET_AFTER_DAYS))
        if end not in self._tet:
            self._load(start - timedelta(days=7 * LOOKBACK_WEEKS), end)
            actual = expected = 0.0
            d = start
            while d <= end:
                if holiday_name(d) is None:
                    actual += sum(self._count(d, h) for h in OFFICE_HOURS)
                    expected += sum(self._ordinary_forecast(d, d - timedelta(days=1)).values())
                d += timedelta(days=1)
            self._tet[end] = (actual / expected, True) if expected > 0 else (1.0, False)
        return self._tet[end]

    def predict(self, target: date, history_end: date) -> dict[int, float]:
        if holiday_name(target) is not None:
            return {h: 0.0 for h in OFFICE_HOURS}
        base = self._ordinary_forecast(target, history_end)
        if in_tet_period(target):
            factor, _ = self.tet_factor(history_end)
            return {h: v * factor for h, v in base.items()}
        return base

    def forecast(self, day: date, service_s: float | None, target_s: float) -> dict[str, Any]:
        """The next 7 days after ``day`` (with counters per hour), the error of the held-back weeks."""
        history_weeks = LOOKBACK_WEEKS + self.cfg.backtest_weeks + 1
        self._load(day - timedelta(days=7 * history_weeks), day)
        next_week = [self._day(day + timedelta(days=i), day, service_s, target_s) for i in range(1, 8)]
        factor, measured = self.tet_factor(day)
        return {
            "method": f"mean of the same weekday and hour over the previous {self.cfg.weeks} ordinary weeks "
                      "(holidays closed, Tết period scaled by its measured factor)",
            "weeks": self.cfg.weeks,
            "next_week": next_week,
            "error": self._last_week_error(day),
            "accuracy": self.backtest(day),
            "tet_factor": round(factor, 3),
            "tet_factor_measured": measured,
            "staffing": {"method": "Erlang C (M/M/c)", "service_s": service_s, "target_s": target_s,
                         "service_level": self.cfg.service_level},
        }

    def _day(self, target: date, history_end: date, service_s: float | None,
             target_s: float) -> dict[str, Any]:
        pred = self.predict(target, history_end)
        hours = []
        level = self.cfg.service_level
        for h in OFFICE_HOURS:
            counters = counters_needed(pred[h], service_s, target_s, level) if service_s else None
            hours.append({"hour": h, "arrivals": round(pred[h], 2), "counters": counters})
        return {"day": target.isoformat(), "weekday": target.isoweekday(), "holiday": holiday_name(target),
                "tet": in_tet_period(target), "total": round(sum(pred.values()), 2), "hours": hours}

    def _last_week_error(self, day: date) -> dict[str, Any]:
        """MAE per office hour of the week ending on ``day``, forecast from the days before it."""
        held_from = day - timedelta(days=6)
        errors = []
        for i in range(7):
            target = held_from + timedelta(days=i)
            pred = self.predict(target, held_from - timedelta(days=1))
            errors += [abs(pred[h] - self._count(target, h)) for h in OFFICE_HOURS]
        history_days = len({d for d, _h in self._counts if d < held_from.isoformat()
                            and d >= (held_from - timedelta(days=7 * LOOKBACK_WEEKS)).isoformat()})
        return {"metric": "MAE (arrivals per hour)", "value": round(sum(errors) / len(errors), 3),
                "held_out_from": held_from.isoformat(), "held_out_to": day.isoformat(),
                "points": len(errors), "history_days": history_days}

    def backtest(self, day: date) -> dict[str, Any]:
        """Each of the last ``backtest_weeks`` weeks forecast from the days before it."""
        days: list[dict[str, Any]] = []
        abs_err: list[float] = []
        for w in range(self.cfg.backtest_weeks, 0, -1):
            start = day - timedelta(days=7 * w - 1)
            first = self._first
            if first is None or start - timedelta(days=7 * self.cfg.weeks) < first:
                continue
            for i in range(7):
                target = start + timedelta(days=i)
                pred = self.predict(target, start - timedelta(days=1))
                actual = [self._count(target, h) for h in OFFICE_HOURS]
                abs_err += [abs(pred[h] - a) for h, a in zip(OFFICE_HOURS, actual, strict=True)]
                days.append({"day": target.isoformat(), "forecast": round(sum(pred.values()), 2),
                             "actual": sum(actual)})
        return {"weeks": len(days) // 7, "days": days,
                "mae_per_hour": round(sum(abs_err) / len(abs_err), 3) if abs_err else None,
                "mape_daily": mape((d["forecast"], d["actual"]) for d in days)}


def mape(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Mean absolute percentage error over pairs (forecast, actual) with actual > 0; None if none."""
    errs = [abs(f - a) / a for f, a in pairs if a > 0]
    return round(sum(errs) / len(errs), 4) if errs else None


def office_forecast(arrivals: Arrivals, day: date, service_s: float | None, target_s: float,
                    weeks: int = 4) -> dict[str, Any]:
    """The forecast of one office as the KPI API and the reports show it."""
    return Forecaster(arrivals, ForecastSettings(weeks=weeks)).forecast(day, service_s, target_s)


def rollup_arrivals(store: Store, code: str) -> Arrivals:
    """Arrivals per (day, hour) of one office from the hour rollups (all its counters)."""
    def arrivals(first: date, last: date) -> dict[tuple[str, int], int]:
        with store.engine.connect() as conn:
            rows = sums(conn, s.rollup_hours, ["service_day", "hour"], [code], first.isoformat(),
                        last.isoformat())
        return {(r["service_day"], r["hour"]): int(r["arrivals"] or 0) for r in rows}
    return arrivals


def measured_service_s(store: Store, code: str, day: date, target_s: float) -> float | None:
    """Mean service time of the last ``SERVICE_DAYS`` days up to ``day``, as the period API computes it."""
    first = (day - timedelta(days=SERVICE_DAYS - 1)).isoformat()
    with store.engine.connect() as conn:
        rows = sums(conn, s.rollup_day, [], [code], first, day.isoformat())
    return figures(rows[0] if rows else {}, {}, {}, target_s, 0.95)["service_avg_s"]


def forecast_for_office(kpi: KpiService, code: str, day: date, weeks: int = 4) -> dict[str, Any]:
    """``KpiService.forecast``: arrivals and service time from the rollups, the gateway's wait target."""
    target = kpi.cfg.wait_target_s
    return office_forecast(rollup_arrivals(kpi.store, code), day,
                           measured_service_s(kpi.store, code, day, target), target, weeks)
