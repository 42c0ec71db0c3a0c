"""The period API and the rollup-backed CSV against a day worked out independently (scenario.py), and
the fair-figure arithmetic against published and hand-computed values.

Wilson intervals: Newcombe (1998), "Two-sided confidence intervals for the single proportion",
Statistics in Medicine 17:857-872, Table I, method 3 (score, no continuity correction), and an
inversion of the score test by bisection (another algorithm than the closed form). Beta-binomial
method of moments: worked by hand below with the equal-n textbook form Var(p̂) = μ(1−μ)(1+(n−1)ρ)/n.
"""

from __future__ import annotations

import math

import pytest

from gateway.fairness import Prior, beta_binomial_prior, rank, wilson
from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import Publisher
from tests.gateway.scenario import WHOLE_DAY_AHEAD, build_day, expected_kpis

NEWCOMBE_TABLE_I = [((81, 263), (0.2553, 0.3662)), ((15, 148), (0.0624, 0.1605)), ((0, 20), (0.0, 0.1611)),
                    ((1, 29), (0.0061, 0.1718))]


@pytest.mark.parametrize(("kn", "published"), NEWCOMBE_TABLE_I)
def test_wilson_matches_newcombe_table_i(kn: tuple[int, int], published: tuple[float, float]) -> None:
    low, high = wilson(*kn)
    assert abs(low - published[0]) < 5e-5 and abs(high - published[1]) < 5e-5


def _score_test_bounds(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The p where |p̂ − p| = z·sqrt(p(1−p)/n), found by bisection on each side of p̂."""
    ph = k / n

    def outside(p: float) -> bool:
        return abs(ph - p) > z * math.sqrt(p * (1 - p) / n)

    def solve(lo: float, hi: float, lo_outside: bool) -> float:
        for _ in range(200):
            mid = (lo + hi) / 2
            if outside(mid) == lo_outside:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    return (0.0 if k == 0 else solve(1e-15, ph, True)), (1.0 if k == n else solve(ph, 1 - 1e-15, False))


@pytest.mark.parametrize(("k", "n"), [(3, 3), (0, 1), (7, 9), (290, 300), (2, 40), (500, 1000)])
def test_wilson_inverts_the_score_test(k: int, n: int) -> None:
    got, want = wilson(k, n), _score_test_bounds(k, n)
    assert got is not None
    assert abs(got[0] - want[0]) < 1e-9 and abs(got[1] - want[1]) < 1e-9
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(4, 3)


def test_beta_binomial_moments_by_hand() -> None:
    """Officers 8/10, 2/10, 5/10. μ = 15/30 = 1/2. Sample variance of p̂ (divisor g−1 = 2):
    (0.3² + 0.3² + 0²)/2 = 0.09 = μ(1−μ)(1 + 9ρ)/10 = 0.025(1 + 9ρ) → ρ = 2.6/9 = 0.2888…, so
    α + β = 1/ρ − 1 = 9/2.6 − 1 = 32/13 and α = β = 16/13. Posterior means: (8 + 16/13)/(10 + 32/13)
    = 120/162 = 20/27, (2 + 16/13)/(162/13) = 42/162 = 7/27, and 81/162 = 1/2."""
    prior = beta_binomial_prior([(8, 10), (2, 10), (5, 10)])
    assert prior is not None
    assert prior.mean == pytest.approx(0.5) and prior.strength == pytest.approx(32 / 13)
    assert prior.shrink(8, 10) == pytest.approx(20 / 27)
    assert prior.shrink(2, 10) == pytest.approx(7 / 27)
    assert prior.shrink(5, 10) == pytest.approx(0.5)


def test_shrinkage_does_not_reward_small_samples() -> None:
    groups = {"few": (3, 3), "many": (290, 300), "mid": (80, 100), "low": (60, 100)}
    prior = beta_binomial_prior(list(groups.values()))
    assert prior is not None and 0 < prior.strength < math.inf
    scores = {o: prior.shrink(k, n) for o, (k, n) in groups.items()}
    assert scores["few"] < scores["many"]  # 3 of 3 no longer beats 290 of 300
    assert abs(scores["many"] - 290 / 300) < abs(scores["few"] - 1.0)  # pulled less
    assert rank(scores)["many"] == 1
    assert rank({"a": 0.9, "b": 0.9, "c": 0.5, "d": None}) == {"a": 1, "b": 1, "c": 3}
    # no spread beyond chance (identical shares): everyone scores the mean
    same = beta_binomial_prior([(45, 50), (90, 100), (9, 10)])
    assert same is not None and math.isinf(same.strength) and same.shrink(9, 10) == pytest.approx(0.9)
    assert beta_binomial_prior([(0, 0)]) is None
    assert Prior(0.7, 0.0).shrink(3, 4) == pytest.approx(0.75)


def test_period_api_matches_an_independent_day(mosquitto, gateway_factory) -> None:
    gw = gateway_factory(mosquitto.url, integrity=WHOLE_DAY_AHEAD)
    day = gw.app.state.kpi.today()
    events, exp = build_day(day)
    pub = Publisher(mosquitto.port)
    for ev in events:
        pub.event(ev)
    pub.flush()
    pub.close()
    wait_for(lambda: gw.stats()["accepted"] >= len(events), what="all events stored")
    params = {"start": day.isoformat(), "end": day.isoformat(), "by": "day"}
    public = gw.public.get("/api/v1/offices/03390/period", params=params).json()
    want = expected_kpis(exp, "03390")
    t = public["totals"]
    for mine, theirs in (("visits", "visits"), ("served", "served"), ("no_show", "no_shows"),
                         ("waiting", "waiting_now"), ("n_ratings", "rated"), ("ratings", "ratings")):
        assert t[mine] == want[theirs], mine
    assert t["wait_avg_s"] == pytest.approx(want["avg_wait_s"])
    assert t["satisfaction"] == pytest.approx(want["satisfaction_rate"])
    assert t["sentiment_index"] == pytest.approx(want["sentiment_score"])
    assert abs(t["wait_p90_s"] - want["p90_wait_s"]) <= public["method"]["p90_error_s"] == 30.0
    assert t["over_target_share"] == pytest.approx(want["over_target_share"])
    assert t["satisfaction_low"] < t["satisfaction"] < t["satisfaction_high"]
    assert len(public["series"]) == 1 and public["series"][0]["visits"] == t["visits"]
    assert {c["counter"] for c in public["counters"]} == {1, 2}
    assert sum(c["visits"] for c in public["counters"]) == t["visits"]
    assert public["officers"] == [] and public["method"]["staff_figures"] is False  # staff are people too

    ops = gw.ops.get("/api/v1/offices/03390/period", params={**params, "by": "month"}).json()
    officers = {o["officer_id"]: o for o in ops["officers"]}
    assert set(officers) == {"cb-01", "cb-02"} and ops["method"]["staff_figures"] is True
    assert sum(o["n"] for o in officers.values()) == want["rated"]
    for o in officers.values():
        assert o["enough_data"] == (o["n"] >= 30) and (o["rank"] is None) == (not o["enough_data"])
        assert o["satisfaction_low"] <= o["shrunk_score"] <= o["satisfaction_high"] or o["n"] < 5

    unit = gw.public.get("/api/v1/units/03390/period", params=params).json()
    assert unit["totals"]["visits"] == t["visits"] and unit["offices"] == ["03390"]
    one_day = {"from": day.isoformat(), "to": day.isoformat()}
    csv_lines = gw.public.get("/api/v1/kpis.csv", params=one_day).text
    rows = [line.split(",") for line in csv_lines.strip().splitlines()]
    row = dict(zip(rows[0], next(r for r in rows if r[1] == "03390"), strict=True))
    assert int(row["visits"]) == t["visits"] and float(row["p90_wait_s"]) == t["wait_p90_s"]

    bad = [({"start": "2026-02-30", "end": "2026-03-01"}, 422), ({"start": day.isoformat()}, 422),
           ({"start": day.isoformat(), "end": "2020-01-01"}, 422),
           ({**params, "by": "year"}, 422), ({"start": "1999-01-01", "end": "1999-01-02"}, 400)]
    for query, status in bad:
        assert gw.public.get("/api/v1/offices/03390/period", params=query).status_code == status, query
    assert gw.public.get("/api/v1/offices/nope/period", params=params).status_code == 404
    assert gw.public.get("/api/v1/units/99999/period", params=params).status_code == 404
