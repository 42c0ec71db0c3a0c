"""Versioned payload schemas (pydantic v2). ``v`` is the schema version; this module is v1.

Every model forbids unknown fields: a payload that carries anything not in the contract is
rejected, which also keeps anything but the documented anonymous figures off the wire.

The contract refuses what cannot be true: every number is finite (no NaN or Infinity) and bounded
(a ``seq`` of 2**70 or a window of 10**15 visits is invalid, not a figure), and numbers and flags
are strict (``"5"``, ``true`` or ``5.0`` are not an integer; ``1`` is not a boolean). Dates and
times stay ISO 8601 strings on the wire. Checks that need the receiver's state (its clock, the
office's registered counters, the gateway's own minimum ``k``) are the gateway's (docs/gateway.md).

``Event`` is a discriminated union on ``type``: each event type is its own model
(``TicketIssuedEvent`` ...) whose ``data`` is typed, so ``event.data.ticket_no`` is an ``int`` end
to end. ``Event(type=..., data={...})`` builds the model of that type; decode with
:data:`EventAdapter`.

This module is longer than our 400-line guide on purpose: it is the whole v1 wire contract, read
(and reviewed) as one document.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 16 * 1024

EXPRESSION_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Bounds: generous for any real kiosk, far below what breaks a database column or a sum.
MAX_SEQ = 2**63 - 1  # BIGINT; a kiosk adds one per event
MAX_MONO_MS = 100 * 365 * 86400 * 1000  # a monotonic clock 100 years after boot
MAX_TICKET_NO = 100_000  # tickets of one counter in one day
MAX_COUNTER = 999
MAX_COUNT = 1_000_000  # people waiting, outbox depth, restarts, frames per window ...
MAX_VISITS_PER_WINDOW = 100_000  # the gateway bounds it tighter by the window's duration
MAX_WINDOW_S = 86_400
MAX_LEVEL = 5

DeviceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,47}$")]
OfficeCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
Uuid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
ShortText = Annotated[str, Field(max_length=200)]
Seconds = Annotated[float, Field(strict=True, ge=0, le=7 * 86400)]
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]
Counter = Annotated[int, Field(strict=True, ge=1, le=MAX_COUNTER)]
Flag = Annotated[bool, Field(strict=True)]
Scalar = Annotated[str, Field(max_length=1000)] | Annotated[int, Field(strict=True)] | float | Flag | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _integer_version(v: Any) -> Any:
    """A ``Literal`` of integers (``v``, ``scale``) takes only a JSON integer: true or 1.0 are not 1."""
    if type(v) is not int:
        raise ValueError(f"must be an integer, got {type(v).__name__}")
    return v


class _Envelope(_Strict):
    v: Literal[1] = 1
    _v_int = field_validator("v", mode="before")(_integer_version)
    device_id: DeviceId
    office_code: OfficeCode
    ts: AwareDatetime = Field(description="Wall-clock time on the device when this was produced.")
    clock_synced: Flag = Field(description="Whether the device's wall clock was NTP-synchronised at ts.")


# --------------------------------------------------------------------------- status (retained)


class Status(_Envelope):
    """Retained on ``.../status``. The ``offline`` form is also the MQTT Last Will."""

    state: Literal["online", "offline"]
    reason: Literal["connected", "shutdown", "connection_lost"] = "connected"
    sw_version: ShortText


# --------------------------------------------------------------------------- health (periodic)


class Health(_Envelope):
    """Published on ``.../health`` every ``health_interval_s`` seconds (QoS 0)."""

    boot_id: ShortText
    uptime_s: float = Field(ge=0, le=100 * 365 * 86400)
    cpu_temp_c: float | None = Field(default=None, ge=-60, le=200)
    load_1m: float | None = Field(default=None, ge=0, le=10_000)
    mem_used_pct: float | None = Field(default=None, ge=0, le=100)
    disk_free_mb: float | None = Field(default=None, ge=0, le=1e9)
    outbox_depth: Count
    outbox_rejected: Count = Field(default=0, description="Events refused by the disk-quota policy.")
    outbox_evicted: Count = Field(default=0, description="Low-priority events evicted by the quota.")
    queue_waiting: Count = 0
    sw_version: ShortText
    model_versions: dict[ShortText, ShortText] = Field(default_factory=dict, max_length=32)
    camera: Literal["on", "off", "disabled", "error", "absent"] = "absent"
    vision_restarts: Count = 0
    last_error: ShortText | None = None
    refused: dict[ShortText, Count] = Field(
        default_factory=dict,
        max_length=32,
        description="Kiosk-side refusals since install, by kind (too_fast, rating_no_prompt, "
        "rating_duplicate, command_unsigned, command_forged, command_stale, command_replayed), and "
        "broker_publish: event publishes the broker refused (PUBACK reason >= 0x80, e.g. Not authorized; "
        "the events stay in the outbox and are resent).",
    )
    interval_s: float = Field(default=60, gt=0, le=86_400)


# --------------------------------------------------------------------------- events (durable, QoS 1)


class EventType(StrEnum):
    DEVICE_STARTED = "device.started"
    TICKET_ISSUED = "ticket.issued"
    TICKET_CALLED = "ticket.called"
    TICKET_RECALLED = "ticket.recalled"
    TICKET_NO_SHOW = "ticket.no_show"
    SERVICE_COMPLETED = "service.completed"
    RATING_SUBMITTED = "rating.submitted"
    SENTIMENT_WINDOW = "sentiment.window"
    QUEUE_RESET = "queue.reset"
    CMD_RESULT = "cmd.result"
    SELFTEST_REPORT = "selftest.report"
    UPDATE_RESULT = "update.result"


class TicketKind(StrEnum):
    """How the citizen got the ticket (docs/kiosk.md#ticket-kinds). Events from before kinds existed
    carry no ``kind`` and decode as ``walk_in``."""

    WALK_IN = "walk_in"
    PRIORITY = "priority"
    APPOINTMENT = "appointment"


ServiceField = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
SlotTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class _Ticket(_Strict):
    ticket_no: int = Field(
        strict=True, ge=1, le=MAX_TICKET_NO, description="The day's number at this counter."
    )
    label: Annotated[str, Field(min_length=1, max_length=16)] = Field(
        description="Printed label, e.g. '0123'."
    )
    counter: Counter
    service_day: date = Field(description="Local (Asia/Ho_Chi_Minh) day the ticket belongs to.")
    # Left out of the JSON when at their defaults, so a walk-in ticket's event is byte-identical to
    # one from before kinds existed and a gateway that predates them still accepts it.
    kind: TicketKind = Field(
        default=TicketKind.WALK_IN, exclude_if=lambda v: v == TicketKind.WALK_IN,
        description="walk_in, priority or appointment; absent = walk_in.",
    )
    service_field: ServiceField | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="Service field code from the office's config (e.g. 'land'); absent = any.",
    )
    slot: SlotTime | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="Appointment tickets only: the booked slot's local start time (HH:MM).",
    )
    serving_counter: Counter | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="Shared lines only: the counter that called or served the ticket; ``counter`` is then "
        "the entrance kiosk's line number, the same in every event of the visit (docs/kiosk.md).",
    )

    @model_validator(mode="after")
    def _slot_for_appointments(self) -> _Ticket:
        if (self.slot is not None) != (self.kind == TicketKind.APPOINTMENT):
            raise ValueError("slot is given for appointment tickets and only for them")
        return self


class DeviceStarted(_Strict):
    sw_version: ShortText
    boot_id: ShortText
    restart: Literal["boot", "process"] = Field(
        description="'boot': first start since the device booted; 'process': the kiosk restarted."
    )
    config_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    model_versions: dict[ShortText, ShortText] = Field(default_factory=dict, max_length=32)
    store_recovery: ShortText | None = Field(
        default=None,
        description="Set when the kiosk found its database corrupt, empty or missing at start: what it "
        "did and how many unsent events were lost (numbers and seq continue, never reused).",
    )


class TicketIssued(_Ticket):
    waiting_ahead: Count = Field(description="People waiting before this ticket when it was issued.")


class TicketCalled(_Ticket):
    wait_s: Seconds | None = Field(description="issued→called on the monotonic clock; null across a reboot.")
    waiting_after: Count
    officer_id: ShortText | None = None


class TicketRecalled(_Ticket):
    recall_count: int = Field(strict=True, ge=1, le=1000)


class TicketNoShow(_Ticket):
    wait_s: Seconds | None


class ServiceCompleted(_Ticket):
    wait_s: Seconds | None
    service_s: Seconds | None = Field(description="called→completed on the monotonic clock.")
    officer_id: ShortText | None = None


class RatingSubmitted(_Strict):
    ticket_no: int | None = Field(
        default=None, strict=True, ge=1, le=MAX_TICKET_NO, description="The visit rated, if known."
    )
    service_day: date
    counter: Counter
    level: int = Field(strict=True, ge=1, le=MAX_LEVEL, description="1 = least satisfied.")
    scale: Literal[3, 5]
    _scale_int = field_validator("scale", mode="before")(_integer_version)
    level_label: ShortText = Field(description="e.g. 'Rất hài lòng'.")
    reason: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")] | None = Field(
        default=None, description="Reason code offered after the lowest level, e.g. 'waited_too_long'."
    )
    officer_id: ShortText | None = None
    serving_counter: Counter | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="Shared lines only: the counter whose visit is rated (its rating buttons).",
    )

    @model_validator(mode="after")
    def _level_in_scale(self) -> RatingSubmitted:
        if self.level > self.scale:
            raise ValueError(f"level {self.level} outside a {self.scale}-level scale")
        if self.reason is not None and self.level != 1:  # the reason prompt follows the lowest level only
            raise ValueError(f"a reason is given after the lowest level only, not level {self.level}")
        return self


class SentimentWindow(_Strict):
    counter: Counter
    window_start: AwareDatetime
    window_end: AwareDatetime
    visits: int = Field(strict=True, ge=1, le=MAX_VISITS_PER_WINDOW)
    k: int = Field(strict=True, ge=1, le=MAX_VISITS_PER_WINDOW, description="Minimum visits per aggregate.")
    frames: int = Field(strict=True, ge=0, le=10**9)
    class_shares: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(max_length=len(EXPRESSION_CLASSES))
    score: float = Field(ge=-1, le=1, description="See docs/models.md#sentiment-score.")

    @field_validator("class_shares")
    @classmethod
    def _known_classes(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - set(EXPRESSION_CLASSES)
        if unknown:
            raise ValueError(f"unknown expression classes {sorted(unknown)}")
        return v

    @model_validator(mode="after")
    def _k_anonymous(self) -> SentimentWindow:
        if self.visits < self.k:
            raise ValueError(f"aggregate over {self.visits} visits is below k={self.k}")
        span = (self.window_end - self.window_start).total_seconds()
        if not 0 < span <= MAX_WINDOW_S:
            raise ValueError(f"window of {span:.0f} s: must end after it starts, within {MAX_WINDOW_S} s")
        return self


class QueueReset(_Strict):
    service_day: date
    discarded_waiting: Count
    reason: ShortText


class CommandResult(_Strict):
    cmd_id: Uuid
    name: ShortText
    ok: Flag
    message: Annotated[str, Field(max_length=1000)]
    details: dict[ShortText, Scalar] = Field(default_factory=dict, max_length=64)


class SelftestComponent(_Strict):
    name: ShortText
    ok: Flag
    detail: ShortText = ""


class SelftestReport(_Strict):
    passed: Flag
    components: list[SelftestComponent] = Field(max_length=64)
    cmd_id: Uuid | None = None


class UpdateResult(_Strict):
    bundle_id: ShortText
    version: ShortText
    outcome: Literal["applied", "refused", "rolled_back"]
    message: Annotated[str, Field(max_length=1000)]
    cmd_id: Uuid | None = None


EVENT_DATA_MODELS: dict[EventType, type[_Strict]] = {
    EventType.DEVICE_STARTED: DeviceStarted,
    EventType.TICKET_ISSUED: TicketIssued,
    EventType.TICKET_CALLED: TicketCalled,
    EventType.TICKET_RECALLED: TicketRecalled,
    EventType.TICKET_NO_SHOW: TicketNoShow,
    EventType.SERVICE_COMPLETED: ServiceCompleted,
    EventType.RATING_SUBMITTED: RatingSubmitted,
    EventType.SENTIMENT_WINDOW: SentimentWindow,
    EventType.QUEUE_RESET: QueueReset,
    EventType.CMD_RESULT: CommandResult,
    EventType.SELFTEST_REPORT: SelftestReport,
    EventType.UPDATE_RESULT: UpdateResult,
}
TICKET_EVENT_TYPES = frozenset(
    {
        EventType.TICKET_ISSUED,
        EventType.TICKET_CALLED,
        EventType.TICKET_RECALLED,
        EventType.TICKET_NO_SHOW,
        EventType.SERVICE_COMPLETED,
    }
)


class Event(_Envelope):
    """Published on ``.../events`` with QoS 1 from the kiosk's durable outbox.

    ``event_id`` is globally unique and stable across resends (the gateway stores by it, so a
    replay is counted once); ``seq`` increases by one per device and never repeats.

    This is the common base of the per-type models below. ``Event(type=T, data=...)`` builds the
    model for ``T`` (so ``data`` is validated as ``EVENT_DATA_MODELS[T]``), and
    ``Event.model_validate``/``model_validate_json`` decode through the discriminated union.
    """

    event_id: Uuid
    seq: int = Field(strict=True, ge=1, le=MAX_SEQ)
    type: EventType
    boot_id: ShortText = Field(description="Identifies the monotonic clock's epoch (changes at reboot).")
    mono_ms: int = Field(strict=True, ge=0, le=MAX_MONO_MS, description="Device monotonic clock in ms.")
    data: _Strict

    def __new__(cls, *args: Any, **kwargs: Any) -> Event:
        if cls is Event and kwargs.get("type") in EVENT_MODELS:  # else the base refuses ``type``
            cls = EVENT_MODELS[EventType(kwargs["type"])]
        return super().__new__(cls)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Event:  # type: ignore[override]
        if cls is Event:
            return EventAdapter.validate_python(obj, **kwargs)
        return super().model_validate(obj, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: Any, **kwargs: Any) -> Event:  # type: ignore[override]
        if cls is Event:
            return EventAdapter.validate_json(json_data, **kwargs)
        return super().model_validate_json(json_data, **kwargs)


class DeviceStartedEvent(Event):
    type: Literal[EventType.DEVICE_STARTED]
    data: DeviceStarted


class TicketIssuedEvent(Event):
    type: Literal[EventType.TICKET_ISSUED]
    data: TicketIssued


class TicketCalledEvent(Event):
    type: Literal[EventType.TICKET_CALLED]
    data: TicketCalled


class TicketRecalledEvent(Event):
    type: Literal[EventType.TICKET_RECALLED]
    data: TicketRecalled


class TicketNoShowEvent(Event):
    type: Literal[EventType.TICKET_NO_SHOW]
    data: TicketNoShow


class ServiceCompletedEvent(Event):
    type: Literal[EventType.SERVICE_COMPLETED]
    data: ServiceCompleted


class RatingSubmittedEvent(Event):
    type: Literal[EventType.RATING_SUBMITTED]
    data: RatingSubmitted


class SentimentWindowEvent(Event):
    type: Literal[EventType.SENTIMENT_WINDOW]
    data: SentimentWindow


class QueueResetEvent(Event):
    type: Literal[EventType.QUEUE_RESET]
    data: QueueReset


class CommandResultEvent(Event):
    type: Literal[EventType.CMD_RESULT]
    data: CommandResult


class SelftestReportEvent(Event):
    type: Literal[EventType.SELFTEST_REPORT]
    data: SelftestReport


class UpdateResultEvent(Event):
    type: Literal[EventType.UPDATE_RESULT]
    data: UpdateResult


EVENT_MODELS: dict[EventType, type[Event]] = {
    EventType.DEVICE_STARTED: DeviceStartedEvent,
    EventType.TICKET_ISSUED: TicketIssuedEvent,
    EventType.TICKET_CALLED: TicketCalledEvent,
    EventType.TICKET_RECALLED: TicketRecalledEvent,
    EventType.TICKET_NO_SHOW: TicketNoShowEvent,
    EventType.SERVICE_COMPLETED: ServiceCompletedEvent,
    EventType.RATING_SUBMITTED: RatingSubmittedEvent,
    EventType.SENTIMENT_WINDOW: SentimentWindowEvent,
    EventType.QUEUE_RESET: QueueResetEvent,
    EventType.CMD_RESULT: CommandResultEvent,
    EventType.SELFTEST_REPORT: SelftestReportEvent,
    EventType.UPDATE_RESULT: UpdateResultEvent,
}
if not set(EVENT_MODELS) == set(EventType) == set(EVENT_DATA_MODELS):  # pragma: no cover - invariant
    raise RuntimeError("every event type needs a data model and an event model")

AnyEvent = Annotated[
    DeviceStartedEvent
    | TicketIssuedEvent
    | TicketCalledEvent
    | TicketRecalledEvent
    | TicketNoShowEvent
    | ServiceCompletedEvent
    | RatingSubmittedEvent
    | SentimentWindowEvent
    | QueueResetEvent
    | CommandResultEvent
    | SelftestReportEvent
    | UpdateResultEvent,
    Field(discriminator="type"),
]
EventAdapter: TypeAdapter[Event] = TypeAdapter(AnyEvent)


# --------------------------------------------------------------------------- commands (gateway → kiosk)


AppointmentCode = Annotated[str, Field(pattern=r"^[A-HJ-NP-Z2-9]{6}$")]
MAX_APPOINTMENTS_PER_DAY = 250  # one office-day; at ~55 bytes each the command fits the 16 KiB limit


class DayAppointment(_Strict):
    """One booking as the kiosk needs it: no name, no phone, only what redeems and orders it."""

    code: AppointmentCode = Field(description="Short code shown to the citizen (no 0/O/1/I).")
    service_field: ServiceField
    slot: SlotTime


class AppointmentDay(_Strict):
    """``args`` of the signed ``load_appointments`` command: the office's whole list for one day,
    replacing any earlier list of that day on the kiosk (docs/kiosk.md#appointments)."""

    service_day: date
    appointments: list[DayAppointment] = Field(max_length=MAX_APPOINTMENTS_PER_DAY)



class CommandName(StrEnum):
    RELOAD_CONFIG = "reload_config"
    RESET_DAY = "reset_day"
    SELFTEST = "selftest"
    CAMERA = "camera"
    APPLY_UPDATE = "apply_update"
    LOAD_APPOINTMENTS = "load_appointments"


class CommandRequest(_Strict):
    """Published by the gateway on ``.../cmd/<name>``; answered by a ``cmd.result`` event."""

    v: Literal[1] = 1
    _v_int = field_validator("v", mode="before")(_integer_version)
    cmd_id: Uuid
    name: CommandName
    args: dict[ShortText, Any] = Field(default_factory=dict, max_length=64)
    issued_at: AwareDatetime
    issued_by: ShortText = "gateway"
    sig: Annotated[str, Field(pattern=r"^[0-9a-f]{128}$")] | None = Field(
        default=None,
        description="Ed25519 signature by the gateway's command key over contract.command_auth."
        "signing_bytes (hex). Kiosks with [commands] trusted_keys refuse commands without a valid one.",
    )
