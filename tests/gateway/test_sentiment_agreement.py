"""The anonymous expression index beside the button ratings: counter-days paired by one SQL query over
the rollups, and how well the two agree (Spearman and Pearson with Fisher-z intervals), checked
against a published example and against values computed here another way (ranks by counting, numpy).

Spearman's published example: Wikipedia, "Spearman's rank correlation coefficient", IQ against hours
of TV a week, ρ = −29/165 ≈ −0.1758 (no ties). Interval for ρ: Bonett & Wright (2000), Psychometrika
65:23-28, SE of atanh(ρ) = √((1 + ρ²/2)/(n − 3)).
"""

from __future__ import annotations

import math
import random
from datetime import date

import numpy as np
import pytest

from gateway.config import Settings
from gateway.fairness import agreement, average_ranks
from gateway.period import PeriodService
from gateway.store import Store
from gateway.store import schema as s

Z95 = 1.959963984540054
IQ = [106, 86, 100, 101, 99, 103, 97, 113, 112, 110]
TV = [7, 0, 27, 50, 28, 29, 20, 12, 6, 17]


def _ranks_by_counting(v: list[float]) -> list[float]:
    """Rank = (values below) + (values equal, itself included, + 1) / 2: the mid-rank of ties."""
    return [sum(x < a for x in v) + (sum(x == a for x in v) + 1) / 2 for a in v]


def _fisher(r: float, n: int, factor: float) -> tuple[float, float]:
    half = Z95 * math.sqrt(factor / (n - 3))
    return math.tanh(math.atanh(r) - half), math.tanh(math.atanh(r) + half)


def test_spearman_matches_the_published_example() -> None:
    a = agreement([float(x) for x in IQ], [float(x) for x in TV])
    assert a.pairs == 10 and a.spearman == pytest.approx(-29 / 165, abs=1e-12)
    assert (a.spearman_low, a.spearman_high) == pytest.approx(_fisher(-29 / 165, 10, 1 + (29 / 165) ** 2 / 2))
    assert a.pearson == pytest.approx(np.corrcoef(IQ, TV)[0, 1], abs=1e-12)
    assert (a.pearson_low, a.pearson_high) == pytest.approx(_fisher(a.pearson, 10, 1.0))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ties_and_random_values_against_numpy(seed: int) -> None:
    rnd = random.Random(seed)
    x = [rnd.choice([0.5, 0.75, 0.8, 1.0]) for _ in range(40)]  # shares of few ratings: many ties
    y = [round(rnd.uniform(-1, 1) + 0.8 * xi, 1) for xi in x]
    assert average_ranks(x) == _ranks_by_counting(x)
    rho = np.corrcoef(_ranks_by_counting(x), _ranks_by_counting(y))[0, 1]
    a = agreement(x, y, 0.9)
    assert a.spearman == pytest.approx(rho, abs=1e-12)
    half = 1.6448536269514722 * math.sqrt((1 + rho * rho / 2) / 37)
    assert a.spearman_low == pytest.approx(math.tanh(math.atanh(rho) - half), abs=1e-12)
    assert a.pearson == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)


def test_degenerate_inputs_give_no_coefficient() -> None:
    assert agreement([1.0, 1.0, 1.0, 1.0], [0.1, 0.2, 0.3, 0.4]).spearman is None  # constant
    three = agreement([0.1, 0.5, 0.9], [0.2, 0.1, 0.3])
    assert three.spearman is not None and three.spearman_low is None  # n − 3 = 0: no interval
    assert agreement([], []).pearson is None


def _day_row(day: str, office: str, counter: int, officer: str, levels: dict[int, int]) -> dict:
    row = {c.name: 0 for c in s.rollup_day.c if not c.primary_key}
    row.update(service_day=day, office_code=office, counter=counter, officer_id=officer, wait_sum=0.0,
               service_sum=0.0, staff_wait_sum=0.0, staff_service_sum=0.0, visits=sum(levels.values()))
    row.update({f"r{i}": n for i, n in levels.items()})
    return row


def _sent_row(day: str, office: str, counter: int, windows: int, visits: int, index: float) -> dict:
    row = {c.name: 0.0 for c in s.rollup_sentiment.c if not c.primary_key}
    row.update(service_day=day, office_code=office, counter=counter, windows=windows, visits=visits,
               score_sum=index * visits)
    return row


def test_period_pairs_counter_weeks_and_keeps_thin_sentiment_out(tmp_path) -> None:
    """Rollup rows written directly (the rollups themselves are tested in test_rollups.py): 2 offices ×
    2 counters × 70 days from a Monday, each counter-day split between two officers, with few windows
    and ratings a day so that some counter-weeks fall below k windows or the minimum ratings; one office
    is outside the scope. The expected counter-weeks and coefficients are worked out here."""
    store = Store(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    store.migrate()
    cfg = Settings()
    k, min_r = cfg.integrity.min_k, cfg.staff_figures.agreement_min_ratings
    rnd = random.Random(7)
    first = date(2026, 1, 5)  # a Monday
    days = [date.fromordinal(first.toordinal() + i) for i in range(70)]
    rows, sents, weeks = [], [], {}
    for office in ("03390", "03405"):
        for counter in (1, 2):
            busy = rnd.random() < 0.7  # a quiet counter has weeks below k windows
            for day in days:
                a = {1: rnd.randint(0, 1), 2: rnd.randint(0, 1), 3: rnd.randint(0, 2)}
                b = {1: rnd.randint(0, 1), 2: 0, 3: rnd.randint(0, 1)}
                windows = rnd.choice([0, 1, 2] if busy else [0, 0, 0, 1])
                visits = windows * k + rnd.randint(0, 3) * (windows > 0)
                index = round(rnd.uniform(-0.6, 0.9), 3)
                rows += [_day_row(day.isoformat(), office, counter, "cb-a", a),
                         _day_row(day.isoformat(), office, counter, "", b)]
                n = sum(a.values()) + sum(b.values())
                if windows:
                    sents.append(_sent_row(day.isoformat(), office, counter, windows, visits, index))
                if office == "03390" and n and windows:  # counter-days with both: summed by week
                    w = weeks.setdefault((counter, day.toordinal() - day.weekday()), [0, 0, 0, 0, 0.0])
                    for i, v in enumerate((n, a[1] + b[1], windows, visits, index * visits)):
                        w[i] += v
    with store.engine.begin() as conn:
        conn.execute(s.rollup_day.insert(), rows)
        conn.execute(s.rollup_sentiment.insert(), sents)
    expected = [(c, date.fromordinal(m).isoformat(), (n - low) / n, ssum / vis, win)
                for (c, m), (n, low, win, vis, ssum) in sorted(weeks.items()) if win >= k and n >= min_r]
    assert 0 < len(expected) < len(weeks), "some counter-weeks must fall below the minimums"
    svc = PeriodService(store, cfg.kpi, cfg.staff_figures, cfg.integrity)
    out = svc.period("office", "03390", ["03390"], days[0], days[-1], "month", False)
    ag = out["agreement"]
    got = [(p["counter"], p["week_start"].isoformat(), p["satisfaction"], p["sentiment_index"], p["windows"])
           for p in ag["counter_weeks"]]
    assert [g[:2] + g[4:] for g in got] == [e[:2] + e[4:] for e in expected]
    assert [v for g in got for v in g[2:4]] == pytest.approx([v for e in expected for v in e[2:4]], abs=1e-9)
    assert ag["pairs"] == len(expected) >= cfg.staff_figures.agreement_min_pairs and ag["enough_data"]
    x, y = [e[2] for e in expected], [e[3] for e in expected]
    assert ag["spearman"] == pytest.approx(np.corrcoef(_ranks_by_counting(x), _ranks_by_counting(y))[0, 1])
    assert ag["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert (ag["spearman_low"], ag["spearman_high"]) == pytest.approx(
        _fisher(ag["spearman"], len(expected), 1 + ag["spearman"] ** 2 / 2))
    assert ag["min_windows"] == k and ag["confidence"] == cfg.staff_figures.confidence
    # a counter's index over a period with fewer than k windows is not shown
    for day in days[:10]:
        one = svc.period("office", "03390", [ "03390"], day, day, "day", False)
        for c in one["counters"]:
            w = [r for r in sents if (r["office_code"], r["counter"], r["service_day"]) ==
                 ("03390", c["counter"], day.isoformat())]
            thin = not w or w[0]["windows"] < k
            assert c["sentiment_index"] is None if thin else c["sentiment_index"] == pytest.approx(
                w[0]["score_sum"] / w[0]["visits"])
    # too few counter-weeks: the pairs are counted, no coefficient
    short = svc.period("office", "03390", ["03390"], days[0], days[13], "day", False)
    assert not short["agreement"]["enough_data"] and short["agreement"]["spearman"] is None
    assert short["agreement"]["pairs"] == sum(1 for e in expected if e[1] <= days[13].isoformat())
    store.close()
