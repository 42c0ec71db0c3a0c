"""Response models of the period API (docs/gateway.md#period-api)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Flagged(_Out):
    visits: int = Field(description="visits flagged as implausible (not cleared): out of staff figures")
    ratings: int = Field(description="counted ratings flagged (not cleared): out of staff figures")


class Figures(_Out):
    visits: int
    served: int
    no_show: int
    waiting: int = Field(description="issued, never called, no-show or completed (not discarded)")
    wait_avg_s: float | None
    wait_p90_s: float | None = Field(description="from the wait histogram: within method.p90_error_s")
    over_target_share: float | None = Field(description="share of waits above the wait target")
    service_avg_s: float | None
    service_p90_s: float | None
    n_ratings: int = Field(description="counted ratings (one per visit, first press)")
    ratings: dict[str, int] = Field(description="counted ratings by level ('1' = Không hài lòng)")
    not_satisfied: int
    satisfaction: float | None = Field(description="Decision 766: (n_ratings − not_satisfied) ÷ n_ratings")
    satisfaction_low: float | None = Field(description="Wilson interval at method.confidence")
    satisfaction_high: float | None
    reasons: dict[str, int] = Field(description="reasons given with 'Không hài lòng'")
    sentiment_index: float | None = Field(description="visit-weighted mean score (−1..1) of k-anonymous "
                                          "windows: an anonymous indicator, never per officer")
    sentiment_windows: int
    sentiment_visits: int
    class_shares: dict[str, float]
    flagged_excluded: Flagged


class SeriesEntry(Figures):
    start: date
    end: date


class CounterFigures(Figures):
    """A counter's figures; its sentiment is null (and class_shares empty) below [integrity] min_k windows."""

    office_code: str
    counter: int


class OfficerFigures(_Out):
    officer_id: str
    n: int = Field(description="counted ratings of the officer's visits, flagged ones left out")
    satisfied: int
    satisfaction: float | None
    satisfaction_low: float | None
    satisfaction_high: float | None
    shrunk_score: float | None = Field(description="empirical-Bayes posterior mean (gateway.fairness)")
    rank: int | None = Field(description="by shrunk_score among officers with enough data; else null")
    enough_data: bool = Field(description="n >= method.min_ratings")
    served: int
    wait_avg_s: float | None
    service_avg_s: float | None
    flagged_excluded: Flagged


class CounterWeek(_Out):
    office_code: str
    counter: int
    week_start: date = Field(description="Monday of the ISO week (days outside the period not counted)")
    n: int = Field(description="counted ratings of the counter-week")
    satisfaction: float
    sentiment_index: float
    windows: int = Field(description="k-anonymous sentiment windows of the counter-week (>= min_windows)")


class Agreement(_Out):
    """How well the anonymous expression index and the button ratings agree, over counter-weeks."""

    pairs: int = Field(description="counter-weeks with >= min_windows windows and >= min_ratings ratings")
    enough_data: bool = Field(description="pairs >= min_pairs; otherwise no coefficient is given")
    spearman: float | None = Field(description="rank correlation of satisfaction and sentiment index")
    spearman_low: float | None = Field(description="Fisher-z interval (Bonett-Wright) at confidence")
    spearman_high: float | None
    pearson: float | None
    pearson_low: float | None
    pearson_high: float | None
    confidence: float
    min_windows: int
    min_ratings: int
    min_pairs: int
    counter_weeks: list[CounterWeek]


class KindFigures(_Out):
    """One ticket kind and service field over the period (gateway/store/kinds.py)."""

    kind: Literal["walk_in", "priority", "appointment"]
    service_field: str | None = Field(description="null: a ticket naming no service field")
    issued: int
    called: int
    served: int
    no_show: int
    wait_n: int = Field(description="waits measured (issued → called, the kiosk's monotonic clock)")
    mean_wait_s: float | None
    p90_wait_s: float | None = Field(description="from the wait histogram: within p90_error_s below an hour")
    over_target_share: float | None
    mean_punctuality_min: float | None = Field(description="appointments: redeem time − slot start, minutes "
                                               "(negative = early), clock-synchronised tickets only")


class FieldAppointments(_Out):
    service_field: str
    booked: int
    booked_closed_days: int
    redeemed_closed_days: int
    no_show_rate: float | None


class Appointments(_Out):
    booked: int = Field(description="bookings of the period, not cancelled")
    booked_closed_days: int = Field(description="of which on days already over")
    redeemed_closed_days: int = Field(description="appointment tickets issued on those days")
    no_show_rate: float | None = Field(description="1 − min(redeemed, booked) ÷ booked, days over only")
    by_field: list[FieldAppointments]


class Method(_Out):
    wait_target_s: float
    p90_error_s: float = Field(description="a p90 read from the histogram is within this of the exact one")
    confidence: float
    min_ratings: int
    prior_mean: float | None = Field(description="beta prior of the officers' satisfaction "
                                       "(method of moments)")
    prior_strength: float | None = Field(description="α+β of that prior; null = infinite (no spread "
                                         "beyond chance: every officer scores the mean)")
    staff_figures: bool = Field(description="officers filled (signed-in roles allowed to see staff figures)")


class Period(_Out):
    scope: Literal["office", "unit"]
    code: str
    start: date
    end: date
    by: Literal["day", "week", "month"]
    offices: list[str]
    totals: Figures
    series: list[SeriesEntry]
    counters: list[CounterFigures]
    officers: list[OfficerFigures]
    agreement: Agreement
    by_kind: list[KindFigures]
    appointments: Appointments
    method: Method
