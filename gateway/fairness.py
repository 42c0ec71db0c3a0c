"""Fair staff and office figures: intervals, shrinkage, a minimum sample, a ranking.

Satisfaction follows Decision 766/QĐ-TTg: (rated − rated "Không hài lòng") ÷ rated, so each figure
is a binomial share k of n. Three rules keep a figure from rewarding a small sample:

* the Wilson score interval (Wilson 1927; Newcombe 1998, method 3) gives its 95 % uncertainty; it
  stays inside [0, 1] and is honest at n = 3, where the plain ± interval is not;
* below a minimum number of ratings (``[staff_figures] min_ratings``) a figure is shown as "not
  enough data" and takes no rank;
* the rank uses an empirical-Bayes score: a beta prior fitted to all officers of the office or unit
  by the method of moments for the beta-binomial (Kleinman 1973), and each officer's posterior mean
  (k + α) ÷ (n + α + β). An officer with 3 of 3 satisfied is pulled toward the office's mean far
  more than one with 300 of 300; with many ratings the score is the officer's own share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


def z_for(confidence: float) -> float:
    """Two-sided normal quantile: 1.95996… for 0.95."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for k successes in n trials; None when n = 0."""
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    z = z_for(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Prior:
    """Beta(α, β) as mean μ = α/(α+β) and strength M = α+β (math.inf: everyone is the mean)."""

    mean: float
    strength: float

    def shrink(self, k: int, n: int) -> float | None:
        if math.isinf(self.strength):
            return self.mean
        if n + self.strength == 0:
            return None
        return (k + self.mean * self.strength) / (n + self.strength)


def beta_binomial_prior(groups: list[tuple[int, int]]) -> Prior | None:
    """Method-of-moments fit of a beta prior to ``(k, n)`` groups (Kleinman 1973, weights n_i).

    With μ = Σk/Σn and S = Σ n_i (k_i/n_i − μ)², E[S] = μ(1−μ)[(g−1) + ρ(N − Σn_i²/N − (g−1))] where ρ
    = 1/(α+β+1) is the intra-officer correlation; solving for ρ gives M = 1/ρ − 1. ρ ≤ 0 (no more
    spread than chance) gives M = ∞; a single group, or μ at 0 or 1, carries no spread: M = 0 with
    one group (own share), ∞ otherwise. None when there is no rating at all."""
    groups = [(k, n) for k, n in groups if n > 0]
    total_n = sum(n for _k, n in groups)
    if total_n == 0:
        return None
    mu = sum(k for k, _n in groups) / total_n
    g = len(groups)
    if g == 1:
        return Prior(mu, 0.0)
    if mu in (0.0, 1.0):
        return Prior(mu, math.inf)
    spread = sum(n * (k / n - mu) ** 2 for k, n in groups)
    denom = total_n - sum(n * n for _k, n in groups) / total_n - (g - 1)
    if denom <= 0:
        return Prior(mu, math.inf)
    rho = (spread / (mu * (1 - mu)) - (g - 1)) / denom
    if rho <= 0:
        return Prior(mu, math.inf)
    rho = min(rho, 1.0)
    return Prior(mu, 1 / rho - 1)


def rank(scores: dict[str, float | None]) -> dict[str, int]:
    """Competition ranking (1, 2, 2, 4) of the ids with a score, highest first; ties share a rank."""
    ordered = sorted(((v, k) for k, v in scores.items() if v is not None), key=lambda t: (-t[0], t[1]))
    out: dict[str, int] = {}
    for i, (v, k) in enumerate(ordered):
        out[k] = out[ordered[i - 1][1]] if i and math.isclose(v, ordered[i - 1][0]) else i + 1
    return out


# ----------------------------------------------------------- agreement of two indicators (sentiment)

@dataclass(frozen=True)
class Agreement:
    """Spearman's rank correlation of paired values with a Fisher-z interval (Bonett & Wright 2000:
    SE = √((1 + ρ²/2) ÷ (n − 3))), and Pearson's r with the classic Fisher-z interval (SE = 1 ÷ √(n − 3))."""

    pairs: int
    spearman: float | None
    spearman_low: float | None
    spearman_high: float | None
    pearson: float | None
    pearson_low: float | None
    pearson_high: float | None


def average_ranks(values: list[float]) -> list[float]:
    """Ranks 1..n, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for t in range(i, j + 1):
            out[order[t]] = (i + j) / 2 + 1
        i = j + 1
    return out


def pearson(x: list[float], y: list[float]) -> float | None:
    """Pearson's r; None with fewer than 2 pairs or a constant series."""
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def _fisher(r: float | None, n: int, se_factor: float,
            confidence: float) -> tuple[float | None, float | None]:
    if r is None or n < 4:
        return None, None
    if abs(r) >= 1:
        return r, r
    half = z_for(confidence) * math.sqrt(se_factor / (n - 3))
    z = math.atanh(r)
    return math.tanh(z - half), math.tanh(z + half)


def agreement(x: list[float], y: list[float], confidence: float = 0.95) -> Agreement:
    """How well two indicators measured on the same units (counter-weeks) agree."""
    n = len(x)
    rho = pearson(average_ranks(x), average_ranks(y))
    r = pearson(x, y)
    s_lo, s_hi = _fisher(rho, n, 1 + (rho or 0) ** 2 / 2, confidence)
    p_lo, p_hi = _fisher(r, n, 1.0, confidence)
    return Agreement(n, rho, s_lo, s_hi, r, p_lo, p_hi)
