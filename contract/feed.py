"""The upward feed record (v1): one office's anonymous figures for one closed hour.

Exchanged between gateways (a commune gateway → a province hub or national centre, by HTTP pull,
MQTT push or HTTPS push), so it lives in the contract, exported as ``feed-record.v1.json``.

Invariants:
* **Anonymous by construction**: counts and sums only; no ticket, officer, device or citizen field
  exists, and ``extra="forbid"`` refuses any. Sentiment appears only as a :class:`SentimentAggregate`
  over at least ``k`` visits (the sender's ``k``; the receiver also checks its own minimum).
* **Additive**: every figure is a count or a sum (waits as sum, count and a fixed histogram), so a
  receiver adds hours into days, quarters or years exactly; means, shares and a histogram p90 are
  derived by the reader.
* **Versioned per hour**: ``(source, office_code, hour_start, revision)`` identifies a record; a late
  event that changes a closed hour makes the sender issue the hour again with ``revision + 1``.
  A receiver keeps the highest revision per (office, hour); resending a record changes nothing.
* **Consistent**: the validators refuse a record whose parts contradict each other (more served than
  visits, a histogram that does not sum to the wait count, a sentiment block below k ...), so a
  forged or corrupt record is a counted rejection at the receiver, never a moved figure.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.payloads import EXPRESSION_CLASSES, OfficeCode

FEED_VERSION = 1
# Upper bounds (seconds) of the wait histogram's buckets; one more bucket holds longer waits.
WAIT_BUCKETS_S = (300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200)
MAX_HOUR_COUNT = 100_000  # visits of one office in one hour: far above any one-stop office
MAX_WAIT_S = 7 * 86400
SourceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{1,63}$")]
HourCount = Annotated[int, Field(strict=True, ge=0, le=MAX_HOUR_COUNT)]
Seconds = Annotated[float, Field(strict=True, ge=0, le=MAX_HOUR_COUNT * MAX_WAIT_S)]
FEED_TOPIC_PREFIX = "motcua-feed/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SentimentAggregate(_Strict):
    """The k-anonymous sentiment windows that ended in the hour, summed (visit-weighted)."""

    k: int = Field(ge=2, le=1000, strict=True, description="the sender's minimum visits per window")
    windows: int = Field(ge=1, le=MAX_HOUR_COUNT, strict=True)
    visits: HourCount = Field(description="visits covered by the windows (>= k)")
    score_sum: float = Field(ge=-MAX_HOUR_COUNT, le=MAX_HOUR_COUNT,
                             description="sum of window score x window visits; mean = score_sum / visits")
    class_share_sums: dict[Literal[EXPRESSION_CLASSES], float] = Field(  # type: ignore[valid-type]
        description="per expression class: sum of share x window visits")

    @model_validator(mode="after")
    def _k_anonymous(self) -> SentimentAggregate:
        if self.visits < self.k or self.visits < self.windows * self.k:
            raise ValueError(f"sentiment over {self.visits} visits in {self.windows} windows is below "
                             f"k={self.k}")
        if abs(self.score_sum) > self.visits:
            raise ValueError("score_sum beyond +-visits (scores are in [-1, 1])")
        for name, v in self.class_share_sums.items():
            if not 0 <= v <= self.visits * (1 + 1e-9):
                raise ValueError(f"class_share_sums[{name}] outside [0, visits]")
        return self


class FeedRecord(_Strict):
    """One office, one hour ``[hour_start, hour_start + 1 h)`` of arrival, one revision."""

    v: Literal[1] = 1
    source: SourceId = Field(description="the sending gateway's id ([feed] source_id)")
    office_code: OfficeCode
    hour_start: AwareDatetime = Field(description="UTC, on the hour; visits by arrival (ticket issued)")
    revision: int = Field(ge=1, le=1_000_000, strict=True, description="higher replaces lower")
    produced_at: AwareDatetime
    wait_target_s: float = Field(gt=0, le=86_400, description="the sender's wait target (20 min)")
    visits: HourCount = Field(description="tickets issued in the hour, not discarded by a queue reset")
    served: HourCount
    no_shows: HourCount
    wait_count: HourCount = Field(description="visits with a known wait (no-shows excluded)")
    wait_sum_s: Seconds
    wait_over_target: HourCount = Field(description="of wait_count, waits above wait_target_s")
    wait_histogram: tuple[HourCount, ...] = Field(
        min_length=len(WAIT_BUCKETS_S) + 1, max_length=len(WAIT_BUCKETS_S) + 1,
        description=f"counts of waits <= {list(WAIT_BUCKETS_S)} s, then above the last bound")
    service_count: HourCount
    service_sum_s: Seconds
    ratings_by_level: tuple[HourCount, ...] = Field(
        min_length=5, max_length=5, description="counted ratings per level 1..5 (1 = Không hài lòng)")
    flagged_visits: HourCount = Field(description="visits flagged implausible (not cleared)")
    flagged_ratings: HourCount
    sentiment: SentimentAggregate | None = Field(None, description="absent when no k-anonymous window ended")

    @field_validator("hour_start")
    @classmethod
    def _on_the_hour(cls, v: AwareDatetime) -> AwareDatetime:
        if v.utcoffset() != UTC.utcoffset(None) or (v.minute, v.second, v.microsecond) != (0, 0, 0):
            raise ValueError("hour_start must be UTC and on the hour")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> FeedRecord:
        problems = []
        if self.served + self.no_shows > self.visits:
            problems.append("served + no_shows > visits")
        if self.wait_count > self.visits or self.wait_over_target > self.wait_count:
            problems.append("wait_count/wait_over_target out of range")
        if sum(self.wait_histogram) != self.wait_count:
            problems.append("wait_histogram does not sum to wait_count")
        if (self.wait_sum_s > self.wait_count * MAX_WAIT_S
                or self.service_sum_s > self.service_count * MAX_WAIT_S):
            problems.append("a duration sum beyond its count x 7 days")
        if self.service_count > self.served or self.flagged_visits > self.visits:
            problems.append("service_count/flagged_visits out of range")
        if self.flagged_ratings > sum(self.ratings_by_level):
            problems.append("flagged_ratings > ratings")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def key(self) -> str:
        """The idempotency key: resending the same record under it changes nothing upstream."""
        return f"{self.source}/{self.office_code}/{int(self.hour_start.timestamp())}/{self.revision}"


def feed_topic(source: str, office_code: str) -> str:
    """MQTT topic of a pushed record: ``motcua-feed/v1/<source>/<office>``."""
    return f"{FEED_TOPIC_PREFIX}/{source}/{office_code}"


class FeedPage(_Strict):
    """A page of the pull feed (``GET /api/v1/feed``): records after ``cursor`` in production order."""

    records: tuple[FeedRecord, ...]
    next_cursor: str = Field(description="opaque; pass it back to get the records after this page")
    more: bool = Field(description="true if more records were already available")
