"""Kiosk configuration: a TOML file parsed into typed, validated dataclasses.

Every problem is reported as ``ConfigError`` naming the key, e.g.
``config error: [rating] scale: must be 3 or 5, got 4``.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contract.topics import DEVICE_ID_RE, OFFICE_CODE_RE

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


class ConfigError(ValueError):
    """A configuration problem; ``str()`` is the message to print."""

    def __init__(self, section: str, key: str, problem: str) -> None:
        where = f"[{section}] {key}" if key else f"[{section}]"
        super().__init__(f"config error: {where}: {problem}")
        self.section, self.key, self.problem = section, key, problem


@dataclass(frozen=True)
class DeviceConfig:
    id: str
    office_code: str
    counter: int
    officer_id: str | None = None
    timezone: str = "Asia/Ho_Chi_Minh"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class BrokerConfig:
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive: int = 30

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


@dataclass(frozen=True)
class QueueConfig:
    label_digits: int = 4
    label_prefix: str = ""

    def label(self, ticket_no: int) -> str:
        return f"{self.label_prefix}{ticket_no:0{self.label_digits}d}"


@dataclass(frozen=True)
class RatingConfig:
    scale: int = 3
    labels: list[str] = field(default_factory=lambda: list(DEFAULT_LABELS[3]))
    reasons: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REASONS))
    reason_timeout_s: float = 20.0
    prompt_timeout_s: float = 60.0

    def label(self, level: int) -> str:
        return self.labels[level - 1]


@dataclass(frozen=True)
class ButtonsConfig:
    pins: dict[str, int]
    debounce_ms: int = 50


@dataclass(frozen=True)
class OutputPins:
    pins: dict[str, int] = field(default_factory=dict)
    pwm: bool = False


@dataclass(frozen=True)
class PrinterConfig:
    kind: str = "file"
    params: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    qr_url: str = ""


@dataclass(frozen=True)
class AudioConfig:
    mode: str = "voice"
    volume: float = 0.8
    voice: str = "vi"
    device: str | None = None


@dataclass(frozen=True)
class DisplayConfig:
    http_host: str = "127.0.0.1"
    http_port: int = 8101


@dataclass(frozen=True)
class HealthConfig:
    interval_s: float = 60.0


@dataclass(frozen=True)
class OutboxConfig:
    quota_mb: float = 64.0

    @property
    def quota_bytes(self) -> int:
        return int(self.quota_mb * 1024 * 1024)


@dataclass(frozen=True)
class ClockConfig:
    synced_override: bool | None = None


@dataclass(frozen=True)
class KioskConfig:
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
    camera: dict[str, Any]
    updates: dict[str, Any]
    vision: Any = None  # device.vision.config.VisionConfig when [camera] enabled = true
    source_sha256: str = "0" * 64
    path: str | None = None
    release: str | None = None  # the update release (data_dir/releases/<slot>) whose overlay is in effect

    @property
    def camera_enabled(self) -> bool:
        return bool(self.camera.get("enabled", False))


# --------------------------------------------------------------------------- helpers


class _Section:
    """Typed accessors over one TOML table, tracking unknown keys."""

    def __init__(self, name: str, table: Any) -> None:
        if not isinstance(table, dict):
            raise ConfigError(name, "", f"must be a table, got {type(table).__name__}")
        self.name, self.t, self.used = name, table, set()

    def _get(self, key: str, default: Any, required: bool) -> Any:
        self.used.add(key)
        if key not in self.t:
            if required:
                raise ConfigError(self.name, key, "required key is missing")
            return default
        return self.t[key]

    def str(self, key: str, default: str | None = None, required: bool = False) -> Any:
        v = self._get(key, default, required)
        if v is not None and not isinstance(v, str):
            raise ConfigError(self.name, key, f"must be a string, got {v!r}")
        return v

    def int(
        self,
        key: str,
        default: int | None = None,
        required: bool = False,
        lo: int | None = None,
        hi: int | None = None,
    ) -> Any:
        v = self._get(key, default, required)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(self.name, key, f"must be an integer, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(self.name, key, f"must be between {lo} and {hi}, got {v}")
        return v

    def num(self, key: str, default: float, lo: float | None = None, hi: float | None = None) -> float:
        v = self._get(key, default, False)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ConfigError(self.name, key, f"must be a number, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(self.name, key, f"must be between {lo} and {hi}, got {v}")
        return float(v)

    def done(self) -> None:
        unknown = sorted(set(self.t) - self.used)
        if unknown:
            raise ConfigError(self.name, unknown[0], "unknown key (misspelt?)")


def _pins(name: str, table: Any) -> dict[str, int]:
    s = _Section(name, table)
    pins: dict[str, int] = {}
    for key in list(s.t):
        pins[key] = s.int(key, required=True, lo=0, hi=53)
    return pins


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


def parse_config(data: dict[str, Any], base_dir: Path | None = None, source: bytes = b"") -> KioskConfig:
    """Validate a parsed TOML document into a :class:`KioskConfig`."""
    known = {
        "device",
        "broker",
        "queue",
        "rating",
        "buttons",
        "leds",
        "buzzer",
        "printer",
        "audio",
        "display",
        "health",
        "outbox",
        "clock",
        "camera",
        "updates",
    }
    for top in data:
        if top not in known:
            raise ConfigError(top, "", f"unknown section; known: {', '.join(sorted(known))}")

    s = _Section("device", data.get("device", {}))
    dev_id = s.str("id", required=True)
    if not DEVICE_ID_RE.match(dev_id):
        raise ConfigError(
            "device", "id", f"must be lower-case letters, digits, '-', '_' (2-48), got {dev_id!r}"
        )
    office = s.str("office_code", required=True)
    if not OFFICE_CODE_RE.match(office):
        raise ConfigError(
            "device", "office_code", f"must be letters, digits, '-', '_' (1-32), got {office!r}"
        )
    tzname = s.str("timezone", "Asia/Ho_Chi_Minh")
    try:
        ZoneInfo(tzname)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("device", "timezone", f"unknown time zone {tzname!r}") from None
    device = DeviceConfig(
        dev_id, office, s.int("counter", required=True, lo=1, hi=999), s.str("officer_id"), tzname
    )
    s.done()

    s = _Section("broker", data.get("broker", {}))
    url = s.str("url", "mqtt://127.0.0.1:1883")
    u = urlparse(url)
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise ConfigError(
            "broker", "url", f"must look like mqtt://host:port or mqtts://host:port, got {url!r}"
        )
    try:
        _ = u.port
    except ValueError:
        raise ConfigError("broker", "url", f"bad port in {url!r}") from None
    broker = BrokerConfig(
        url,
        s.str("username"),
        s.str("password"),
        _check_file("broker", "ca_file", s.str("ca_file"), base_dir),
        _check_file("broker", "cert_file", s.str("cert_file"), base_dir),
        _check_file("broker", "key_file", s.str("key_file"), base_dir),
        s.int("keepalive", 30, lo=5, hi=3600),
    )
    if (broker.cert_file is None) != (broker.key_file is None):
        raise ConfigError("broker", "cert_file", "cert_file and key_file must be given together")
    s.done()

    s = _Section("queue", data.get("queue", {}))
    queue = QueueConfig(s.int("label_digits", 4, lo=1, hi=8), s.str("label_prefix", ""))
    if len(queue.label_prefix) + queue.label_digits > 16:
        raise ConfigError("queue", "label_prefix", "label (prefix + digits) must fit in 16 characters")
    s.done()

    s = _Section("rating", data.get("rating", {}))
    scale = s.int("scale", 3)
    if scale not in (3, 5):
        raise ConfigError("rating", "scale", f"must be 3 or 5, got {scale}")
    labels = s._get("labels", list(DEFAULT_LABELS[scale]), False)
    if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
        raise ConfigError("rating", "labels", "must be a list of non-empty strings (least satisfied first)")
    if len(labels) != scale:
        raise ConfigError(
            "rating", "labels", f"must have {scale} entries for scale {scale}, got {len(labels)}"
        )
    reasons = s._get("reasons", dict(DEFAULT_REASONS), False)
    if not isinstance(reasons, dict):
        raise ConfigError("rating", "reasons", 'must be a table of code = "Vietnamese text"')
    for code, text in reasons.items():
        if not REASON_CODE_RE.match(code):
            raise ConfigError("rating", f"reasons.{code}", "code must be lower-case letters and '_' (1-32)")
        if not isinstance(text, str) or not text:
            raise ConfigError("rating", f"reasons.{code}", "text must be a non-empty string")
    rating = RatingConfig(
        scale,
        labels,
        reasons,
        s.num("reason_timeout_s", 20.0, 1, 600),
        s.num("prompt_timeout_s", 60.0, 1, 3600),
    )
    s.done()

    s = _Section("buttons", data.get("buttons", {}))
    debounce = s.int("debounce_ms", 50, lo=0, hi=1000)
    pin_table = s._get("pins", None, True)
    s.done()
    pins = _pins("buttons.pins", pin_table)
    for need in OFFICER_BUTTONS + tuple(f"rate_{i}" for i in range(1, scale + 1)):
        if need not in pins:
            raise ConfigError("buttons.pins", need, "required button pin is missing")
    for name in pins:
        if name not in OFFICER_BUTTONS and not re.fullmatch(r"rate_\d+", name):
            raise ConfigError(
                "buttons.pins", name, "unknown button name (ticket, next, recall, no_show, rate_N)"
            )
        if name.startswith("rate_") and not 1 <= int(name[5:]) <= scale:
            raise ConfigError("buttons.pins", name, f"outside the {scale}-level rating scale")
    buttons = ButtonsConfig(pins, debounce)

    s = _Section("leds", data.get("leds", {}))
    pwm = s._get("pwm", False, False)
    if not isinstance(pwm, bool):
        raise ConfigError("leds", "pwm", f"must be true or false, got {pwm!r}")
    led_pins = _pins("leds", {k: v for k, v in s.t.items() if k != "pwm"})
    leds = OutputPins(led_pins, pwm)
    buzzer = OutputPins(_pins("buzzer", data.get("buzzer", {})))
    used: dict[int, str] = {}
    for group, mapping in (("buttons.pins", pins), ("leds", led_pins), ("buzzer", buzzer.pins)):
        for name, pin in mapping.items():
            if pin in used:
                raise ConfigError(group, name, f"GPIO {pin} already used by {used[pin]}")
            used[pin] = f"[{group}] {name}"

    s = _Section("printer", data.get("printer", {}))
    kind = s.str("kind", "file")
    if kind not in ("file", "usb", "serial", "none"):
        raise ConfigError("printer", "kind", f"must be file, usb, serial or none, got {kind!r}")
    params = {k: v for k, v in s.t.items() if k not in ("kind", "profile", "qr_url")}
    s.used.update(params)
    if kind == "usb":
        for k in ("vendor_id", "product_id"):
            if not isinstance(params.get(k), int):
                raise ConfigError("printer", k, 'required integer for kind = "usb" (e.g. 0x0416)')
    if kind == "serial" and not isinstance(params.get("devfile"), str):
        raise ConfigError("printer", "devfile", 'required string for kind = "serial" (e.g. /dev/ttyUSB0)')
    printer = PrinterConfig(kind, params, s.str("profile"), s.str("qr_url", ""))
    s.done()

    s = _Section("audio", data.get("audio", {}))
    mode = s.str("mode", "voice")
    if mode not in ("voice", "chime", "off"):
        raise ConfigError("audio", "mode", f"must be voice, chime or off, got {mode!r}")
    audio = AudioConfig(mode, s.num("volume", 0.8, 0, 1), s.str("voice", "vi"), s.str("device"))
    s.done()

    s = _Section("display", data.get("display", {}))
    display = DisplayConfig(s.str("http_host", "127.0.0.1"), s.int("http_port", 8101, lo=1, hi=65535))
    s.done()
    s = _Section("health", data.get("health", {}))
    health = HealthConfig(s.num("interval_s", 60.0, 0.2, 86400))
    s.done()
    s = _Section("outbox", data.get("outbox", {}))
    outbox = OutboxConfig(s.num("quota_mb", 64.0, 0.001, 100_000))
    s.done()
    s = _Section("clock", data.get("clock", {}))
    synced = s._get("synced_override", None, False)
    if synced is not None and not isinstance(synced, bool):
        raise ConfigError("clock", "synced_override", f"must be true or false, got {synced!r}")
    clock = ClockConfig(synced)
    s.done()

    camera = data.get("camera", {})
    updates = data.get("updates", {})
    for name, table in (("camera", camera), ("updates", updates)):
        if not isinstance(table, dict):
            raise ConfigError(name, "", "must be a table")
    if "enabled" in camera and not isinstance(camera["enabled"], bool):
        raise ConfigError("camera", "enabled", f"must be true or false, got {camera['enabled']!r}")

    cfg = KioskConfig(
        device,
        broker,
        queue,
        rating,
        buttons,
        leds,
        buzzer,
        printer,
        audio,
        display,
        health,
        outbox,
        clock,
        dict(camera),
        dict(updates),
        source_sha256=hashlib.sha256(source).hexdigest(),
    )
    if cfg.camera_enabled:
        object.__setattr__(cfg, "vision", _vision_config(camera))
    if updates:
        _check_updates(updates)
    return cfg


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


# Sections an update bundle may not set: identity, broker credentials, local display, update trust.
LOCAL_ONLY_SECTIONS = ("device", "broker", "display", "updates")
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
    object.__setattr__(cfg, "path", str(p))
    object.__setattr__(cfg, "release", None if release is None else str(release))
    return cfg


def with_overrides(
    cfg: KioskConfig,
    broker_url: str | None = None,
    http_port: int | None = None,
    http_host: str | None = None,
) -> KioskConfig:
    """Apply command-line overrides (validated the same way as the file)."""
    from dataclasses import replace

    if broker_url:
        u = urlparse(broker_url)
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ConfigError(
                "broker", "url", f"--broker must look like mqtt://host:port, got {broker_url!r}"
            )
        cfg = replace(cfg, broker=replace(cfg.broker, url=broker_url))
    if http_port is not None or http_host is not None:
        cfg = replace(
            cfg,
            display=replace(
                cfg.display,
                http_port=http_port or cfg.display.http_port,
                http_host=http_host or cfg.display.http_host,
            ),
        )
    return cfg
