"""The kiosk config's sections as pydantic models: frozen, unknown keys refused, values bounded to
what the wire contract can carry (strings no longer than its ShortText, finite numbers, no booleans as
integers).

Only the models live here; reading the TOML file, the checks that span keys or sections, release
overlays and command-line overrides are in device/config.py, which also re-exports these names.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.mqtt_url import KIOSK_SCHEMES, parse_broker_url
from contract.topics import DEVICE_ID_RE, OFFICE_CODE_RE
from device.vision.config import VisionConfig

DEFAULT_LABELS = {
    3: ["Không hài lòng", "Hài lòng", "Rất hài lòng"],
    5: ["Rất không hài lòng", "Không hài lòng", "Bình thường", "Hài lòng", "Rất hài lòng"],
}
DEFAULT_REASONS = {
    "waited_too_long": "Chờ quá lâu",
    "staff_attitude": "Thái độ cán bộ",
    "unclear_guidance": "Hướng dẫn không rõ",
    "too_many_documents": "Yêu cầu nhiều giấy tờ",
    "other": "Lý do khác",
}
OFFICER_BUTTONS = ("ticket", "next", "recall", "no_show")
REASON_CODE_RE = re.compile(r"^[a-z_]{1,32}$")
SHORT_TEXT = 200  # the wire contract's ShortText (contract/payloads.py): officer_id, labels, reasons


# --------------------------------------------------------------------------- models
# Each section is a frozen pydantic model that refuses unknown keys and values the wire contract
# cannot carry (strings longer than its ShortText, non-finite numbers, booleans as integers).
# Validation errors become ConfigError naming the key (device/config.py ``validate_section``); checks
# that span several keys or sections are in ``parse_config`` there.

ShortText = Annotated[str, Field(max_length=SHORT_TEXT)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Pin = Annotated[int, Field(ge=0, le=53, description="BCM GPIO number")]


class Section(BaseModel):
    """Base of every section (also of sections defined in other modules, see ``EXTRA_SECTIONS`` in
    device/config.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DeviceConfig(Section):
    id: str = Field(description="MQTT identity: lower-case letters, digits, '-', '_' (2-48)")
    office_code: str = Field(description="office code used in topics")
    counter: int = Field(ge=1, le=999, description="counter number (quầy số)")
    officer_id: ShortText | None = Field(default=None, description="who staffs this counter")
    office_name: ShortText | None = Field(default=None, description="on tickets and the counter display "
                                          "instead of the bare code")
    timezone: str = Field(default="Asia/Ho_Chi_Minh", description="ticket numbers reset at local midnight")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not DEVICE_ID_RE.match(v):
            raise ValueError(f"must be lower-case letters, digits, '-', '_' (2-48), got {v!r}")
        return v

    @field_validator("office_code")
    @classmethod
    def _office(cls, v: str) -> str:
        if not OFFICE_CODE_RE.match(v):
            raise ValueError(f"must be letters, digits, '-', '_' (1-32), got {v!r}")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class BrokerConfig(Section):
    url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://host:port")
    username: ShortText | None = None
    password: str | None = Field(default=None, max_length=1024)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive: int = Field(default=30, ge=5, le=3600, description="seconds")
    protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description='MQTT version. "5": a publish the broker refuses (PUBACK reason code, e.g. Not '
        'authorized) stays in the outbox and is retried. "3.1.1" cannot see that refusal (Mosquitto '
        "acknowledges a publish its ACL denies, and the kiosk deletes the event): only for the embedded "
        "demo broker, which refuses MQTT 5; production must use 5.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_broker_url(v)

    @property
    def host(self) -> str:
        return parse_broker_url(self.url, KIOSK_SCHEMES).host

    @property
    def port(self) -> int:
        return parse_broker_url(self.url, KIOSK_SCHEMES).port

    @property
    def tls(self) -> bool:
        return parse_broker_url(self.url, KIOSK_SCHEMES).tls


class QueueConfig(Section):
    label_digits: int = Field(default=4, ge=1, le=8, description="printed/spoken digits")
    label_prefix: str = Field(default="", description="printed, not spoken (prefix + digits <= 16)")

    def label(self, ticket_no: int) -> str:
        return f"{self.label_prefix}{ticket_no:0{self.label_digits}d}"


class RatingConfig(Section):
    scale: Literal[3, 5] = Field(default=3, description="3 or 5 levels; level 1 = least satisfied")
    labels: list[Annotated[str, Field(min_length=1, max_length=SHORT_TEXT)]] | None = None
    reasons: dict[str, Annotated[str, Field(min_length=1, max_length=SHORT_TEXT)]] = Field(
        default_factory=lambda: dict(DEFAULT_REASONS)
    )
    reason_timeout_s: FiniteFloat = Field(default=20.0, ge=1, le=600)
    prompt_timeout_s: FiniteFloat = Field(default=60.0, ge=1, le=3600)

    def label(self, level: int) -> str:
        labels = self.labels or DEFAULT_LABELS[self.scale]
        return labels[level - 1]


class ButtonsConfig(Section):
    pins: dict[str, Pin]
    debounce_ms: int = Field(default=50, ge=0, le=1000, description="contact-bounce window per button")
    min_gap_ms: int = Field(default=300, ge=0, le=5000, description="human pace (device/dispatch.py)")


class OutputPins(Section):
    pins: dict[str, Pin] = Field(default_factory=dict)
    pwm: bool = False


class PrinterConfig(Section):
    kind: Literal["file", "usb", "serial", "none"] = "file"
    params: dict[str, Any] = Field(default_factory=dict)
    profile: ShortText | None = None
    qr_url: str = Field(default="", max_length=500)


class AudioConfig(Section):
    mode: Literal["voice", "chime", "off"] = "voice"
    volume: FiniteFloat = Field(default=0.8, ge=0, le=1)
    voice: ShortText = "vi"
    device: ShortText | None = None


class DisplayConfig(Section):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8101, ge=1, le=65535)


class HealthConfig(Section):
    interval_s: FiniteFloat = Field(default=60.0, ge=0.2, le=86400)


class OutboxConfig(Section):
    quota_mb: FiniteFloat = Field(default=64.0, ge=0.001, le=100_000)

    @property
    def quota_bytes(self) -> int:
        return int(self.quota_mb * 1024 * 1024)


class ClockConfig(Section):
    synced_override: bool | None = None


HexPublicKey = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]  # a raw Ed25519 key in hex


class CommandsConfig(Section):
    trusted_keys: list[HexPublicKey] = Field(
        default_factory=list, description="hex Ed25519 public keys of the gateway's command key"
    )
    max_age_s: FiniteFloat = Field(default=300.0, ge=10, le=86400, description="older commands are stale")


class UpdatesConfig(Section):
    """Who may sign code and model updates for this kiosk (device/updates/)."""

    trusted_keys: list[HexPublicKey] = Field(
        default_factory=list, description="hex Ed25519 public keys of the operator's offline update key(s), "
        "printed by `motcua-provision update keygen`; empty = every update is refused"
    )

    def raw_keys(self) -> list[bytes]:
        return [bytes.fromhex(k) for k in self.trusted_keys]


class KioskConfig(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    device: DeviceConfig
    broker: BrokerConfig
    queue: QueueConfig
    rating: RatingConfig
    buttons: ButtonsConfig
    leds: OutputPins
    buzzer: OutputPins
    printer: PrinterConfig
    audio: AudioConfig
    display: DisplayConfig
    health: HealthConfig
    outbox: OutboxConfig
    clock: ClockConfig
    commands: CommandsConfig
    camera: dict[str, Any]
    updates: UpdatesConfig
    vision: VisionConfig | None = None  # the [camera] table validated, when [camera] enabled = true
    source_sha256: str = "0" * 64
    path: str | None = None
    release: str | None = None  # the update release (data_dir/releases/<slot>) whose overlay is in effect
    extra: dict[str, Any] = Field(default_factory=dict)  # [name] -> Section of device/config.EXTRA_SECTIONS

    @property
    def camera_enabled(self) -> bool:
        return bool(self.camera.get("enabled", False))


def check_broker_url(url: str) -> str:
    """``url`` when it is a kiosk broker URL (contract/mqtt_url.py), else ValueError saying why."""
    parse_broker_url(url, KIOSK_SCHEMES)
    return url
