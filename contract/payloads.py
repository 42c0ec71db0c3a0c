"""Versioned payload schemas (pydantic v2). ``v`` is the schema version; this module is v1.

Every model forbids unknown fields: a payload that carries anything not in the contract is
rejected, which also keeps anything but the documented anonymous figures off the wire.
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

DeviceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,47}$")]
OfficeCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
Uuid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
ShortText = Annotated[str, Field(max_length=200)]
Seconds = Annotated[float, Field(ge=0, le=7 * 86400)]
Scalar = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _integer_version(v: Any) -> Any:
    """``v`` must be the JSON integer 1, as in the exported schema: true or 1.0 are not versions."""
    if type(v) is not int:
        raise ValueError(f"schema version must be an integer, got {type(v).__name__}")
    return v


class _Envelope(_Strict):
    v: Literal[1] = 1
    _v_int = field_validator("v", mode="before")(_integer_version)
    device_id: DeviceId
    office_code: OfficeCode
    ts: AwareDatetime = Field(description="Wall-clock time on the device when this was produced.")
    clock_synced: bool = Field(description="Whether the device's wall clock was NTP-synchronised at ts.")


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
    uptime_s: float = Field(ge=0)
    cpu_temp_c: float | None = None
    load_1m: float | None = Field(default=None, ge=0)
    mem_used_pct: float | None = Field(default=None, ge=0, le=100)
    disk_free_mb: float | None = Field(default=None, ge=0)
    outbox_depth: int = Field(ge=0)
    outbox_rejected: int = Field(default=0, ge=0, description="Events refused by the disk-quota policy.")
    outbox_evicted: int = Field(default=0, ge=0, description="Low-priority events evicted by the quota.")
    queue_waiting: int = Field(default=0, ge=0)
    sw_version: ShortText
    model_versions: dict[ShortText, ShortText] = Field(default_factory=dict)
    camera: Literal["on", "off", "disabled", "error", "absent"] = "absent"
    vision_restarts: int = Field(default=0, ge=0)
    last_error: ShortText | None = None
    refused: dict[ShortText, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Kiosk-side refusals since install, by kind (too_fast, rating_no_prompt, "
        "rating_duplicate, command_unsigned, command_forged, command_stale, command_replayed).",
    )
    interval_s: float = Field(default=60, gt=0)


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


class _Ticket(_Strict):
    ticket_no: int = Field(ge=1, description="The day's number at this counter (resets at local midnight).")
    label: Annotated[str, Field(min_length=1, max_length=16)] = Field(
        description="Printed label, e.g. '0123'."
    )
    counter: int = Field(ge=1)
    service_day: date = Field(description="Local (Asia/Ho_Chi_Minh) day the ticket belongs to.")


class DeviceStarted(_Strict):
    sw_version: ShortText
    boot_id: ShortText
    restart: Literal["boot", "process"] = Field(
        description="'boot': first start since the device booted; 'process': the kiosk restarted."
    )
    config_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    model_versions: dict[ShortText, ShortText] = Field(default_factory=dict)
    store_recovery: ShortText | None = Field(
        default=None,
        description="Set when the kiosk found its database corrupt, empty or missing at start: what it "
        "did and how many unsent events were lost (numbers and seq continue, never reused).",
    )


class TicketIssued(_Ticket):
    waiting_ahead: int = Field(ge=0, description="People waiting before this ticket when it was issued.")


class TicketCalled(_Ticket):
    wait_s: Seconds | None = Field(description="issued→called on the monotonic clock; null across a reboot.")
    waiting_after: int = Field(ge=0)
    officer_id: ShortText | None = None


class TicketRecalled(_Ticket):
    recall_count: int = Field(ge=1)


class TicketNoShow(_Ticket):
    wait_s: Seconds | None


class ServiceCompleted(_Ticket):
    wait_s: Seconds | None
    service_s: Seconds | None = Field(description="called→completed on the monotonic clock.")
    officer_id: ShortText | None = None


class RatingSubmitted(_Strict):
    ticket_no: int | None = Field(default=None, ge=1, description="The visit rated, if known.")
    service_day: date
    counter: int = Field(ge=1)
    level: int = Field(ge=1, description="1 = least satisfied.")
    scale: Literal[3, 5]
    level_label: ShortText = Field(description="e.g. 'Rất hài lòng'.")
    reason: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")] | None = Field(
        default=None, description="Reason code offered after the lowest level, e.g. 'waited_too_long'."
    )
    officer_id: ShortText | None = None

    @model_validator(mode="after")
    def _level_in_scale(self) -> RatingSubmitted:
        if self.level > self.scale:
            raise ValueError(f"level {self.level} outside a {self.scale}-level scale")
        return self


class SentimentWindow(_Strict):
    counter: int = Field(ge=1)
    window_start: AwareDatetime
    window_end: AwareDatetime
    visits: int = Field(ge=1)
    k: int = Field(ge=1, description="Minimum number of visits per published aggregate.")
    frames: int = Field(ge=0)
    class_shares: dict[str, Annotated[float, Field(ge=0, le=1)]]
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
        return self


class QueueReset(_Strict):
    service_day: date
    discarded_waiting: int = Field(ge=0)
    reason: ShortText


class CommandResult(_Strict):
    cmd_id: Uuid
    name: ShortText
    ok: bool
    message: Annotated[str, Field(max_length=1000)]
    details: dict[ShortText, Scalar] = Field(default_factory=dict)


class SelftestComponent(_Strict):
    name: ShortText
    ok: bool
    detail: ShortText = ""


class SelftestReport(_Strict):
    passed: bool
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


class Event(_Envelope):
    """Published on ``.../events`` with QoS 1 from the kiosk's durable outbox.

    ``event_id`` is globally unique and stable across resends (the gateway stores by it, so a
    replay is counted once); ``seq`` increases by one per device and never repeats.
    """

    event_id: Uuid
    seq: int = Field(ge=1)
    type: EventType
    boot_id: ShortText = Field(description="Identifies the monotonic clock's epoch (changes at reboot).")
    mono_ms: int = Field(ge=0, description="Device monotonic clock at the event, milliseconds.")
    data: dict[str, Any]

    @model_validator(mode="after")
    def _typed_data(self) -> Event:
        model = EVENT_DATA_MODELS[self.type]
        typed = model.model_validate(self.data)
        object.__setattr__(self, "data", typed.model_dump(mode="json"))
        return self

    def typed_data(self) -> Any:
        """The ``data`` member as its typed model (TicketIssued, RatingSubmitted, ...)."""
        return EVENT_DATA_MODELS[self.type].model_validate(self.data)


# --------------------------------------------------------------------------- commands (gateway → kiosk)


class CommandName(StrEnum):
    RELOAD_CONFIG = "reload_config"
    RESET_DAY = "reset_day"
    SELFTEST = "selftest"
    CAMERA = "camera"
    APPLY_UPDATE = "apply_update"


class CommandRequest(_Strict):
    """Published by the gateway on ``.../cmd/<name>``; answered by a ``cmd.result`` event."""

    v: Literal[1] = 1
    _v_int = field_validator("v", mode="before")(_integer_version)
    cmd_id: Uuid
    name: CommandName
    args: dict[ShortText, Any] = Field(default_factory=dict)
    issued_at: AwareDatetime
    issued_by: ShortText = "gateway"
    sig: Annotated[str, Field(pattern=r"^[0-9a-f]{128}$")] | None = Field(
        default=None,
        description="Ed25519 signature by the gateway's command key over contract.command_auth."
        "signing_bytes (hex). Kiosks with [commands] trusted_keys refuse commands without a valid one.",
    )


EventAdapter: TypeAdapter[Event] = TypeAdapter(Event)
