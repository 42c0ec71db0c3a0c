"""Kiosk configuration: a TOML file parsed into typed, validated pydantic models (frozen, unknown keys
refused, values bounded to what the wire contract can carry).

Every problem is reported as ``ConfigError`` naming the key, e.g.
``config error: [rating] scale: must be 3 or 5, got 4``.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contract.topics import DEVICE_ID_RE, OFFICE_CODE_RE
from device.config_queue import CallingConfig

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
OPTIONAL_BUTTONS = ("priority",)  # the priority-ticket button at the door (device/config_queue.py)
REASON_CODE_RE = re.compile(r"^[a-z_]{1,32}$")
SHORT_TEXT = 200  # the wire contract's ShortText (contract/payloads.py): officer_id, labels, reasons


class ConfigError(ValueError):
    """A configuration problem; ``str()`` is the message to print."""

    def __init__(self, section: str, key: str, problem: str) -> None:
        where = f"[{section}] {key}" if key else f"[{section}]"
        super().__init__(f"config error: {where}: {problem}")
        self.section, self.key, self.problem = section, key, problem


# --------------------------------------------------------------------------- models
# Each section is a frozen pydantic model that refuses unknown keys and values the wire contract
# cannot carry (strings longer than its ShortText, non-finite numbers, booleans as integers).
# Validation errors become ConfigError naming the key (see _config_error); checks that span several
# keys or sections are in parse_config.

ShortText = Annotated[str, Field(max_length=SHORT_TEXT)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Pin = Annotated[int, Field(ge=0, le=53, description="BCM GPIO number")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DeviceConfig(_Section):
    id: str = Field(description="MQTT identity: lower-case letters, digits, '-', '_' (2-48)")
    office_code: str = Field(description="office code used in topics")
    counter: int = Field(ge=1, le=999, description="counter number (quầy số)")
    officer_id: ShortText | None = Field(default=None, description="who staffs this counter")
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


class BrokerConfig(_Section):
    url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://host:port")
    username: ShortText | None = None
    password: str | None = Field(default=None, max_length=1024)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive: int = Field(default=30, ge=5, le=3600, description="seconds")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_broker_url(v)

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        u = urlparse(self.url)
        return u.port or (8883 if u.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlparse(self.url).scheme == "mqtts"


class QueueConfig(_Section):
    label_digits: int = Field(default=4, ge=1, le=8, description="printed/spoken digits")
    label_prefix: str = Field(default="", description="printed, not spoken (prefix + digits <= 16)")

    def label(self, ticket_no: int) -> str:
        return f"{self.label_prefix}{ticket_no:0{self.label_digits}d}"


class RatingConfig(_Section):
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


class ButtonsConfig(_Section):
    pins: dict[str, Pin]
    debounce_ms: int = Field(default=50, ge=0, le=1000, description="contact-bounce window per button")
    min_gap_ms: int = Field(default=300, ge=0, le=5000, description="human pace (device/dispatch.py)")


class OutputPins(_Section):
    pins: dict[str, Pin] = Field(default_factory=dict)
    pwm: bool = False


class PrinterConfig(_Section):
    kind: Literal["file", "usb", "serial", "none"] = "file"
    params: dict[str, Any] = Field(default_factory=dict)
    profile: ShortText | None = None
    qr_url: str = Field(default="", max_length=500)


class AudioConfig(_Section):
    mode: Literal["voice", "chime", "off"] = "voice"
    volume: FiniteFloat = Field(default=0.8, ge=0, le=1)
    voice: ShortText = "vi"
    device: ShortText | None = None


class DisplayConfig(_Section):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8101, ge=1, le=65535)


class HealthConfig(_Section):
    interval_s: FiniteFloat = Field(default=60.0, ge=0.2, le=86400)


class OutboxConfig(_Section):
    quota_mb: FiniteFloat = Field(default=64.0, ge=0.001, le=100_000)

    @property
    def quota_bytes(self) -> int:
        return int(self.quota_mb * 1024 * 1024)


class ClockConfig(_Section):
    synced_override: bool | None = None


class CommandsConfig(_Section):
    trusted_keys: list[Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]] = Field(
        default_factory=list, description="hex Ed25519 public keys of the gateway's command key"
    )
    max_age_s: FiniteFloat = Field(default=300.0, ge=10, le=86400, description="older commands are stale")


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
    updates: dict[str, Any]
    calling: CallingConfig = CallingConfig()  # ticket kinds and calling policy (device/config_queue.py)
    vision: Any = None  # device.vision.config.VisionConfig when [camera] enabled = true
    source_sha256: str = "0" * 64
    path: str | None = None
    release: str | None = None  # the update release (data_dir/releases/<slot>) whose overlay is in effect

    @property
    def camera_enabled(self) -> bool:
        return bool(self.camera.get("enabled", False))


# --------------------------------------------------------------------------- errors and checks


def check_broker_url(url: str) -> str:
    u = urlparse(url)
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise ValueError(f"must look like mqtt://host:port or mqtts://host:port, got {url!r}")
    try:
        _ = u.port
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    return url


def _bounds(model: type[BaseModel], key: str) -> tuple[Any, Any]:
    info = model.model_fields.get(key)
    lo = hi = None
    for m in info.metadata if info else ():
        lo = getattr(m, "ge", lo)
        hi = getattr(m, "le", hi)
    return lo, hi


def _problem(err: dict[str, Any], model: type[BaseModel], key: str) -> str:
    """One pydantic error as today's wording ("must be an integer, got '30'")."""
    kind, got, ctx = err["type"], err.get("input"), err.get("ctx", {})
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key (misspelt?)"
    if kind in ("greater_than_equal", "less_than_equal"):
        lo, hi = _bounds(model, key)
        return f"must be between {lo} and {hi}, got {got}"
    if kind == "finite_number":
        return f"must be a finite number, got {got}"
    if kind in ("string_too_long", "too_long"):
        return f"at most {ctx.get('max_length')} characters (what the wire contract carries), got {len(got)}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', '').replace(chr(39), '')}, got {got!r}"
    names = {"int_type": "an integer", "float_type": "a number", "string_type": "a string",
             "bool_type": "true or false", "dict_type": "a table", "list_type": "a list"}
    if kind in names:
        return f"must be {names[kind]}, got {got!r}"
    return str(err["msg"]).removeprefix("Value error, ")


def _section(name: str, model: type[_Section], table: Any, **extra: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(name, "", f"must be a table, got {type(table).__name__}")
    try:
        return model.model_validate({**table, **extra})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        if len(loc) >= 2 and loc[0] == "pins":  # a nested pin table: [buttons.pins] next, [leds] ticket
            problem = _problem(err, model, "pins")
            if err["type"] in ("greater_than_equal", "less_than_equal"):
                problem = f"must be between 0 and 53, got {err.get('input')}"
            raise ConfigError(f"{name}.pins" if name == "buttons" else name, loc[1], problem) from None
        key = ".".join(loc)
        raise ConfigError(name, key, _problem(err, model, loc[0] if loc else "")) from None


def _check_file(section: str, key: str, value: str | None, base: Path | None) -> str | None:
    if value is None:
        return None
    p = Path(value)
    if not p.is_absolute() and base is not None:
        p = base / p
    if not p.is_file():
        raise ConfigError(section, key, f"file not found: {p}")
    return str(p)


# --------------------------------------------------------------------------- parsing

KNOWN_SECTIONS = frozenset(
    {"device", "broker", "queue", "rating", "buttons", "leds", "buzzer", "printer", "audio", "display",
     "health", "outbox", "clock", "commands", "camera", "updates", "calling"}
)


def parse_config(data: dict[str, Any], base_dir: Path | None = None, source: bytes = b"") -> KioskConfig:
    """Validate a parsed TOML document into a :class:`KioskConfig`."""
    for top in data:
        if top not in KNOWN_SECTIONS:
            raise ConfigError(top, "", f"unknown section; known: {', '.join(sorted(KNOWN_SECTIONS))}")
    device = _section("device", DeviceConfig, data.get("device", {}))
    broker = _broker(data.get("broker", {}), base_dir)
    queue = _section("queue", QueueConfig, data.get("queue", {}))
    if len(queue.label_prefix) + queue.label_digits > 16:
        raise ConfigError("queue", "label_prefix", "label (prefix + digits) must fit in 16 characters")
    calling = _section("calling", CallingConfig, data.get("calling", {}))
    if max(len(calling.prefix(k)) for k in ("priority", "appointment")) + len(queue.label(1)) > 16:
        raise ConfigError("calling", "label_prefix", "label (kind prefix + [queue] label) must fit in 16")
    rating = _rating(data.get("rating", {}))
    buttons = _section("buttons", ButtonsConfig, data.get("buttons", {}))
    _check_buttons(buttons.pins, rating.scale)
    leds_table = data.get("leds", {})
    if not isinstance(leds_table, dict):
        raise ConfigError("leds", "", "must be a table")
    pwm = leds_table.get("pwm", False)
    if not isinstance(pwm, bool):
        raise ConfigError("leds", "pwm", f"must be true or false, got {pwm!r}")
    leds = _pins("leds", {k: v for k, v in leds_table.items() if k != "pwm"}, pwm)
    buzzer = _pins("buzzer", data.get("buzzer", {}), False)
    _check_shared_pins(buttons.pins, leds.pins, buzzer.pins)
    printer = _printer(data.get("printer", {}))
    camera, updates = data.get("camera", {}), data.get("updates", {})
    for name, table in (("camera", camera), ("updates", updates)):
        if not isinstance(table, dict):
            raise ConfigError(name, "", "must be a table")
    if "enabled" in camera and not isinstance(camera["enabled"], bool):
        raise ConfigError("camera", "enabled", f"must be true or false, got {camera['enabled']!r}")
    cfg = KioskConfig(
        device=device,
        broker=broker,
        queue=queue,
        rating=rating,
        buttons=buttons,
        leds=leds,
        buzzer=buzzer,
        printer=printer,
        audio=_section("audio", AudioConfig, data.get("audio", {})),
        display=_section("display", DisplayConfig, data.get("display", {})),
        health=_section("health", HealthConfig, data.get("health", {})),
        outbox=_section("outbox", OutboxConfig, data.get("outbox", {})),
        clock=_section("clock", ClockConfig, data.get("clock", {})),
        commands=_section("commands", CommandsConfig, data.get("commands", {})),
        camera=dict(camera),
        updates=dict(updates),
        calling=calling,
        source_sha256=hashlib.sha256(source).hexdigest(),
    )
    if cfg.camera_enabled:
        cfg = cfg.model_copy(update={"vision": _vision_config(camera)})
    if updates:
        _check_updates(updates)
    return cfg


def _broker(table: Any, base_dir: Path | None) -> BrokerConfig:
    b = _section("broker", BrokerConfig, table)
    files = {k: _check_file("broker", k, getattr(b, k), base_dir) for k in ("ca_file", "cert_file",
                                                                              "key_file")}
    if (files["cert_file"] is None) != (files["key_file"] is None):
        raise ConfigError("broker", "cert_file", "cert_file and key_file must be given together")
    return b.model_copy(update=files)


def _rating(table: Any) -> RatingConfig:
    r = _section("rating", RatingConfig, table)
    labels = r.labels if r.labels is not None else list(DEFAULT_LABELS[r.scale])
    if len(labels) != r.scale:
        raise ConfigError(
            "rating", "labels", f"must have {r.scale} entries for scale {r.scale}, got {len(labels)}"
        )
    for code in r.reasons:
        if not REASON_CODE_RE.match(code):
            raise ConfigError("rating", f"reasons.{code}", "code must be lower-case letters and '_' (1-32)")
    return r.model_copy(update={"labels": labels})


def _check_buttons(pins: dict[str, int], scale: int) -> None:
    for need in OFFICER_BUTTONS + tuple(f"rate_{i}" for i in range(1, scale + 1)):
        if need not in pins:
            raise ConfigError("buttons.pins", need, "required button pin is missing")
    for name in pins:
        if name not in OFFICER_BUTTONS + OPTIONAL_BUTTONS and not re.fullmatch(r"rate_\d+", name):
            raise ConfigError(
                "buttons.pins", name, "unknown button name (ticket, priority, next, recall, no_show, rate_N)"
            )
        if name.startswith("rate_") and not 1 <= int(name[5:]) <= scale:
            raise ConfigError("buttons.pins", name, f"outside the {scale}-level rating scale")


def _pins(name: str, table: Any, pwm: bool) -> OutputPins:
    if not isinstance(table, dict):
        raise ConfigError(name, "", "must be a table")
    return _section(name, OutputPins, {"pins": table, "pwm": pwm})


def _check_shared_pins(*groups: dict[str, int]) -> None:
    used: dict[int, str] = {}
    for group, mapping in zip(("buttons.pins", "leds", "buzzer"), groups, strict=True):
        for name, pin in mapping.items():
            if pin in used:
                raise ConfigError(group, name, f"GPIO {pin} already used by {used[pin]}")
            used[pin] = f"[{group}] {name}"


def _printer(table: Any) -> PrinterConfig:
    if not isinstance(table, dict):
        raise ConfigError("printer", "", "must be a table")
    named = {k: v for k, v in table.items() if k in ("kind", "profile", "qr_url")}
    params = {k: v for k, v in table.items() if k not in named}
    p = _section("printer", PrinterConfig, named, params=params)
    if p.kind == "usb":
        for k in ("vendor_id", "product_id"):
            if not isinstance(params.get(k), int):
                raise ConfigError("printer", k, 'required integer for kind = "usb" (e.g. 0x0416)')
    if p.kind == "serial" and not isinstance(params.get("devfile"), str):
        raise ConfigError("printer", "devfile", 'required string for kind = "serial" (e.g. /dev/ttyUSB0)')
    return p


def _vision_config(table: dict[str, Any]) -> Any:
    try:
        mod = importlib.import_module("device.vision.config")
    except ImportError as exc:
        raise ConfigError(
            "camera", "enabled", f"camera enabled but the vision module is missing ({exc})"
        ) from None
    try:
        return mod.VisionConfig.from_table(table)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        msg = str(exc).removeprefix("config error:").strip()
        err = ConfigError("camera", "", msg)
        if msg.startswith("[camera]"):
            err.args = (f"config error: {msg}",)
        raise err from None


def _check_updates(table: dict[str, Any]) -> None:
    try:
        mod = importlib.import_module("device.updates")
    except ImportError:
        return  # updates not installed: apply_update commands answer "not supported"
    check = getattr(mod, "check_config", None)
    if check is None:
        return
    try:
        check(table)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError("updates", "", str(exc)) from None


# Sections an update bundle may not set: identity, broker credentials, local display, update and
# command trust.
LOCAL_ONLY_SECTIONS = ("device", "broker", "display", "updates", "commands")
RELEASE_CONFIG = "config/kiosk.toml"  # the overlay file inside an update release
RELEASE_MODELS = "models"  # model folder inside an update release (with its manifest.json)


def _read_toml(p: Path) -> tuple[dict[str, Any], bytes]:
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError("file", str(p), f"cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8")), raw
    except UnicodeDecodeError:
        raise ConfigError("file", str(p), "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("file", str(p), f"TOML syntax: {exc}") from None


def merge_overlay(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """The kiosk's own TOML data with a release overlay on top: per section, each key of the overlay
    replaces the local key (a nested table such as ``[buttons.pins]`` is replaced whole)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, table in overlay.items():
        if section in LOCAL_ONLY_SECTIONS:
            raise ConfigError(section, "", "may be set only in the kiosk's own config, not by an update")
        if not isinstance(table, dict):
            raise ConfigError(section, "", "must be a table")
        local = out.get(section)
        out[section] = {**local, **table} if isinstance(local, dict) else dict(table)
    return out


def load_config(path: str | Path, release: str | Path | None = None) -> KioskConfig:
    """Read and validate a TOML config file; raises :class:`ConfigError`.

    With ``release`` (an applied update's folder): its ``config/kiosk.toml`` is overlaid on the file
    (see :func:`merge_overlay`) and, when it holds ``models/manifest.json``, ``[camera] models_dir``
    points there unless the overlay sets models_dir itself. The result is validated as a whole."""
    p = Path(path)
    data, raw = _read_toml(p)
    if release is not None:
        rel = Path(release)
        overlay: dict[str, Any] = {}
        if (rel / RELEASE_CONFIG).is_file():
            overlay, oraw = _read_toml(rel / RELEASE_CONFIG)
            data = merge_overlay(data, overlay)
            raw = raw + b"\0" + oraw
        camera_overlay = overlay.get("camera", {})
        if (rel / RELEASE_MODELS / "manifest.json").is_file() and "models_dir" not in camera_overlay:
            camera = data.get("camera", {})
            if isinstance(camera, dict):
                data["camera"] = {**camera, "models_dir": str(rel / RELEASE_MODELS)}
    cfg = parse_config(data, p.parent, raw)
    return cfg.model_copy(update={"path": str(p), "release": None if release is None else str(release)})


def with_overrides(
    cfg: KioskConfig,
    broker_url: str | None = None,
    http_port: int | None = None,
    http_host: str | None = None,
) -> KioskConfig:
    """Apply command-line overrides (validated the same way as the file)."""
    if broker_url:
        try:
            check_broker_url(broker_url)
        except ValueError:
            raise ConfigError(
                "broker", "url", f"--broker must look like mqtt://host:port, got {broker_url!r}"
            ) from None
        cfg = cfg.model_copy(update={"broker": cfg.broker.model_copy(update={"url": broker_url})})
    if http_port is not None or http_host is not None:
        display = cfg.display.model_copy(
            update={
                "http_port": http_port or cfg.display.http_port,
                "http_host": http_host or cfg.display.http_host,
            }
        )
        cfg = cfg.model_copy(update={"display": display})
    return cfg
