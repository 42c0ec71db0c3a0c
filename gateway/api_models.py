"""Response and request models of the JSON API (they make /docs and /openapi.json precise)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from contract.payloads import MAX_COUNTER, MAX_TICKET_NO, CommandName
from gateway.period_models import KindFigures


class KpiToday(BaseModel):
    visits: int = Field(description="Tickets of the day, not discarded by a queue reset.")
    served: int
    waiting_now: int = Field(description="Issued, not yet called, no-show or served.")
    no_shows: int
    avg_wait_s: float | None
    p90_wait_s: float | None = Field(description="Nearest-rank 90th percentile of issued→called.")
    over_target_share: float | None = Field(description="Share of waits over the target (20 min).")
    avg_service_s: float | None
    p90_service_s: float | None
    rated: int
    ratings: dict[str, int] = Field(description="Rating level (1 = Không hài lòng) → count.")
    rating_scale: int | None
    not_satisfied: int
    satisfaction_rate: float | None = Field(description="(rated − rated lowest level) ÷ rated.")
    sentiment_score: float | None = Field(description="Visit-weighted mean of k-anonymous windows, −1..1.")
    sentiment_visits: int


class Office(BaseModel):
    code: str
    name: str
    unit_code: str
    unit_name: str
    province_code: str
    lat: float
    lon: float
    counters: int
    kpi_today: KpiToday
    wait_class: Literal["ok", "warn", "bad", "none"]
    satisfaction_class: Literal["ok", "warn", "bad", "none"]
    devices_online: int
    devices_total: int


class HourFigures(BaseModel):
    hour: int = Field(description="Local hour of issue (Asia/Ho_Chi_Minh), 0–23.")
    arrivals: int
    avg_wait_s: float | None


class CounterFigures(BaseModel):
    counter: int
    kpi: KpiToday
    hours: list[HourFigures]


class OfficerFigures(BaseModel):
    officer_id: str
    served: int
    avg_wait_s: float | None
    avg_service_s: float | None
    p90_service_s: float | None
    rated: int
    ratings: dict[str, int]
    satisfaction_rate: float | None


class SentimentWindowOut(BaseModel):
    counter: int
    window_start: str
    window_end: str
    visits: int = Field(description="Visits aggregated (>= k, k-anonymous).")
    score: float
    class_shares: dict[str, float]


class ForecastHour(BaseModel):
    hour: int
    arrivals: float


class ForecastDay(BaseModel):
    day: str
    weekday: int = Field(description="ISO weekday, 1 = Monday.")
    hours: list[ForecastHour]


class ForecastError(BaseModel):
    metric: str
    value: float
    held_out_from: str
    held_out_to: str
    points: int
    history_days: int = Field(
        description="Days with arrivals before the held-out week (0: nothing measured)."
    )


class Forecast(BaseModel):
    method: str
    weeks: int
    next_week: list[ForecastDay]
    error: ForecastError


class OfficeKpis(BaseModel):
    office_code: str
    day: str
    wait_target_s: float
    kpi: KpiToday
    hours: list[HourFigures]
    counters: list[CounterFigures]
    officers: list[OfficerFigures] = Field(description="Aggregates per officer id; no citizen data.")
    sentiment_windows: list[SentimentWindowOut]
    forecast: Forecast


class DayAppointments(BaseModel):
    booked: int | None = Field(description="bookings of the day, not cancelled")
    redeemed: int = Field(description="appointment tickets issued that day")
    no_show_rate: float | None = Field(description="1 − min(redeemed, booked) ÷ booked, once the day is over")


class UnitDay(BaseModel):
    day: str
    unit_code: str
    kpi: KpiToday
    by_kind: list[KindFigures] = Field(description="by ticket kind and service field "
                                       "(docs/gateway.md#ticket-kinds)")
    appointments: DayAppointments


class OfficeIn(BaseModel):
    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
    name: str = Field(min_length=1, max_length=200)
    unit_code: str = Field(min_length=1, max_length=16)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    counters: int = Field(ge=1, le=50)


class OfficeUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    unit_code: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    counters: int | None = Field(default=None, ge=1, le=50)


class DeviceIn(BaseModel):
    device_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,47}$")
    office_code: str = Field(max_length=32)
    counter: int = Field(ge=1, le=MAX_COUNTER)
    release_held: bool = Field(
        default=False,
        description="Also count the events held while the device was unregistered (same rules as live).",
    )


class Device(BaseModel):
    device_id: str
    office_code: str
    counter: int | None
    registered: bool
    bound_by: str | None = None
    released: dict[str, int] = Field(default_factory=dict, description="Held events released, by outcome.")


class QuarantinedDevice(BaseModel):
    device_id: str
    office_codes: list[str] = Field(description="Offices its topics claimed.")
    held_events: int
    by_type: dict[str, int]
    first_received: str | None
    last_received: str | None


class FlagClear(BaseModel):
    kind: Literal["visit", "rating"]
    # bounded as on the wire: a number beyond a database integer is a 422, not a driver error
    event_id: str | None = Field(default=None, max_length=36, description="For a rating.")
    counter: int | None = Field(default=None, ge=1, le=MAX_COUNTER,
                                description="For a visit (with service_day, ticket_no).")
    service_day: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    ticket_no: int | None = Field(default=None, ge=1, le=MAX_TICKET_NO)


class OfficeFlags(BaseModel):
    office_code: str
    day_from: str
    day_to: str
    counts: dict[str, int] = Field(description="Flag → rows ('<flag>:cleared' once cleared).")
    ratings_by_status: dict[str, int] = Field(description="counted, duplicate, pending, ...")
    duplicate_ratings_by_device: dict[str, int]
    visits: list[dict[str, Any]]
    ratings: list[dict[str, Any]]


class Selftest(BaseModel):
    passed: bool
    at: str
    components: list[dict[str, Any]]


class FleetDevice(BaseModel):
    device_id: str
    office_code: str
    counter: int | None
    registered: bool = Field(description="False: seen on the wire but not bound in the registry.")
    state: Literal["online", "offline", "unknown"]
    since: str | None = Field(description="When the current state began (ISO 8601, gateway clock).")
    last_seen: str | None
    offline_reason: Literal["connection_lost", "shutdown", "no_health"] | None
    offline_detail: str | None = Field(description="Human text, e.g. 'no health for 95 s'.")
    sw_version: str | None
    model_versions: dict[str, str]
    cpu_temp_c: float | None
    outbox_depth: int | None
    queue_waiting: int | None
    camera: str | None
    clock_synced: bool | None
    last_error: str | None
    last_selftest: Selftest | None
    open_alerts: list[str]
    quarantined: bool = Field(default=False, description="Not registered: its figure events are held.")
    held_events: int = Field(default=0, description="Events held (stored, not counted) until it is bound.")


class CommandIn(BaseModel):
    name: CommandName
    args: dict[str, Any] = Field(default_factory=dict)


class Command(BaseModel):
    cmd_id: str
    device_id: str
    office_code: str
    name: str
    args: dict[str, Any]
    issued_at: str
    issued_by: str
    status: Literal["sent", "ok", "failed", "publish_failed"]
    result: dict[str, Any] | None
    result_at: str | None


class IngestStats(BaseModel):
    accepted: int = Field(description="Events stored (all gateway processes).")
    duplicates: int = Field(description="Events received again (replays), stored once.")
    status: int
    health: int
    rejected: dict[str, int] = Field(description="Rejections by reason.")
    quarantined: int = Field(default=0, description="Events held from devices not in the registry.")
    duplicate_rating: int = Field(default=0, description="Later ratings of a rated visit (kept).")
    stored_events: int
    process: dict[str, Any] = Field(description="This process's counters, queue depth, MQTT state.")


class Alert(BaseModel):
    id: int
    device_id: str
    office_code: str
    kind: str
    opened_at: str
    closed_at: str | None
    message: str
    delivered: bool
