"""gateway.forecast against values computed here independently: Erlang C by its closed form, the
Tết and holiday calendar by known dates, the held-back error by hand."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from gateway.forecast import (
    OFFICE_HOURS,
    Forecaster,
    ForecastSettings,
    counters_needed,
    erlang_c,
    holiday_name,
    in_tet_period,
    lunar_new_year,
    mape,
)


def erlang_c_closed_form(c: int, a: float) -> float:
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(("c", "a"), [(1, 0.5), (2, 1.0), (3, 2.5), (5, 3.3), (10, 8.7), (20, 15.0)])
def test_erlang_c_matches_the_closed_form(c: int, a: float) -> None:
    assert erlang_c(c, a) == pytest.approx(erlang_c_closed_form(c, a), rel=1e-12)


def test_erlang_c_edges() -> None:
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # textbook: two servers, one Erlang
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(3, 3.0) == 1.0 and erlang_c(3, 7.0) == 1.0  # unstable: everyone waits
    assert erlang_c(3, 0.0) == 0.0


def test_counters_needed_by_hand() -> None:
    # 2 arrivals an hour, 20-minute service (3 an hour per counter), 20-minute target.
    # One counter: M/M/1 mean wait = rho/(mu-lambda) = (2/3)/(1/h) = 40 min > 20: not enough.
    # Two: a = 2/3, C = 1/6, mean wait = C/(2mu-lambda) = (1/6)/(4/h) = 2.5 min,
    # P(wait > 20 min) = C e^{-(4/h)(1/3 h)} = 0.044 <= 0.2: enough.
    assert counters_needed(2, 1200, 1200) == 2
    assert counters_needed(0, 600, 1200) == 0
    # 30 an hour, 10 minutes each: load 5 Erlangs, so at least 6; check the answer is the least that passes
    c = counters_needed(30, 600, 1200, 0.8)
    lam, mu = 30 / 3600, 1 / 600

    def ok(n: int) -> bool:
        if n <= 5:
            return False
        pw = erlang_c_closed_form(n, 5.0)
        return pw / (n * mu - lam) <= 1200 and pw * math.exp(-(n * mu - lam) * 1200) <= 0.2

    assert ok(c) and not ok(c - 1)


def test_calendar_knows_tet_and_holidays() -> None:
    assert lunar_new_year(2026) == date(2026, 2, 17)  # DOMAIN-NOTES
    assert lunar_new_year(2027) == date(2027, 2, 6)
    assert holiday_name(date(2026, 9, 2)) is not None and holiday_name(date(2026, 4, 30)) is not None
    assert holiday_name(date(2026, 3, 10)) is None
    assert in_tet_period(date(2026, 2, 12)) and in_tet_period(date(2026, 2, 25))
    assert not in_tet_period(date(2026, 3, 20)) and not in_tet_period(date(2026, 1, 5))


def ordinary_pattern(extra: dict[date, int] | None = None, tet_share: float = 1.0):
    """10 arrivals at 09:00 every weekday that is not a holiday; ``tet_share`` of that in the Tết
    period; ``extra`` adds arrivals on given days."""
    extra = extra or {}

    def arrivals(first: date, last: date) -> dict[tuple[str, int], int]:
        out = {}
        d = first
        while d <= last:
            if d.weekday() < 5 and holiday_name(d) is None:
                n = 10 * (tet_share if in_tet_period(d) else 1.0) + extra.get(d, 0)
                out[(d.isoformat(), 9)] = round(n)
            d += timedelta(days=1)
        return out

    return arrivals


def test_held_back_weeks_error_by_hand() -> None:
    day = date(2026, 7, 26)  # a Sunday; no holiday from 4 May to 26 July 2026
    monday = day - timedelta(days=6)
    fc = Forecaster(ordinary_pattern({monday: 10}), ForecastSettings(weeks=4, backtest_weeks=8))
    out = fc.forecast(day, service_s=600, target_s=1200)
    acc = out["accuracy"]
    assert acc["weeks"] == 8 and len(acc["days"]) == 56
    # only the last Monday is off: forecast 10, actual 20 -> APE 0.5, over 40 open days
    assert acc["mape_daily"] == pytest.approx(0.5 / 40, abs=1e-4)
    assert acc["mae_per_hour"] == pytest.approx(10 / (56 * len(OFFICE_HOURS)), abs=1e-3)
    assert out["error"]["value"] == pytest.approx(10 / (7 * len(OFFICE_HOURS)), abs=1e-3)
    # next Monday: mean of the last 4 Mondays = (20 + 10 + 10 + 10) / 4
    nxt = {d["day"]: d for d in out["next_week"]}
    mon = nxt[(day + timedelta(days=1)).isoformat()]
    assert {h["hour"]: h["arrivals"] for h in mon["hours"]}[9] == pytest.approx(12.5)
    assert nxt[(day + timedelta(days=6)).isoformat()]["total"] == 0  # Saturday
    # 12.5 an hour for 10 minutes each: load 2.08 Erlangs -> 3 counters by Erlang C; 0 where no one comes
    counters = {h["hour"]: h["counters"] for h in mon["hours"]}
    assert counters[9] == counters_needed(12.5, 600, 1200) and counters[9] >= 3 and counters[8] == 0


def test_holiday_closed_and_tet_scaled_by_its_measured_factor() -> None:
    day = date(2027, 1, 31)  # a Sunday; Tết 2027 begins 6 Feb, its period from 30 Jan
    fc = Forecaster(ordinary_pattern(tet_share=0.5))
    out = fc.forecast(day, service_s=None, target_s=1200)
    assert out["tet_factor_measured"] is True and out["tet_factor"] == pytest.approx(0.5, abs=0.01)
    nxt = {d["day"]: d for d in out["next_week"]}
    feb1 = nxt["2027-02-01"]  # Monday, in the Tết period, not a holiday
    assert feb1["tet"] and feb1["holiday"] is None
    assert feb1["total"] == pytest.approx(5.0, abs=0.1)
    assert all(h["counters"] is None for h in feb1["hours"])  # no measured service time: no staffing
    eve = nxt["2027-02-05"]  # Lunar New Year's Eve: closed
    assert eve["holiday"] is not None and eve["total"] == 0


def test_without_tet_in_history_the_factor_is_not_invented() -> None:
    fc = Forecaster(lambda a, b: {})
    out = fc.forecast(date(2027, 1, 31), service_s=600, target_s=1200)
    assert out["tet_factor_measured"] is False and out["tet_factor"] == 1.0
    assert out["accuracy"]["mape_daily"] is None and all(d["total"] == 0 for d in out["next_week"])


def test_mape_skips_days_without_arrivals() -> None:
    assert mape([(5, 10), (10, 0), (30, 20)]) == pytest.approx((0.5 + 0.5) / 2)
    assert mape([(1, 0)]) is None
