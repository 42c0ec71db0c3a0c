"""Kiosk configuration: a TOML file parsed into the typed, validated pydantic models of
device/config_sections.py (frozen, unknown keys refused, values bounded to what the wire contract can
carry), with the checks that span keys or sections, update-release overlays and command-line overrides.

Every problem is reported as ``ConfigError`` naming the key, e.g.
``config error: [rating] scale: must be 3 or 5, got 4``.

Sections defined in other modules are registered in ``EXTRA_SECTIONS`` below (one line each): the
file's ``[name]`` table is validated with that model (a missing table gives its defaults) and kept in
``cfg.extra[name]``; a live reload applies them like ``[queue]``.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from contract.config_errors import ConfigError, from_validation
from contract.payloads import MAX_TICKET_NO
from device.config_line import LineConfig
from device.config_queue import OPTIONAL_BUTTONS, CallingConfig
from device.config_sections import (
    DEFAULT_LABELS,
    DEFAULT_REASONS,
    OFFICER_BUTTONS,
    REASON_CODE_RE,
    SHORT_TEXT,
    AudioConfig,
    BrokerConfig,
    ButtonsConfig,
    ClockConfig,
    CommandsConfig,
    DeviceConfig,
    DisplayConfig,
    HealthConfig,
    KioskConfig,
    OutboxConfig,
    OutputPins,
    PrinterConfig,
    QueueConfig,
    RatingConfig,
    Section,
    UpdatesConfig,
    check_broker_url,
)
from device.vision.config import VisionConfig

__all__ = [
    "DEFAULT_LABELS", "DEFAULT_REASONS", "EXTRA_SECTIONS", "LOCAL_ONLY_SECTIONS", "OFFICER_BUTTONS",
    "REASON_CODE_RE", "RELEASE_CONFIG", "RELEASE_MODELS", "SHORT_TEXT", "AudioConfig", "BrokerConfig",
    "ButtonsConfig", "ClockConfig", "CommandsConfig", "ConfigError", "DeviceConfig", "DisplayConfig",
    "HealthConfig", "KioskConfig", "OutboxConfig", "OutputPins", "PrinterConfig", "QueueConfig",
    "RatingConfig", "Section", "UpdatesConfig", "check_broker_url", "load_config", "merge_overlay",
    "parse_config", "with_overrides",
]

# Sections defined in other modules: "[name]" -> its Section model (one line each; see the docstring).
EXTRA_SECTIONS: dict[str, type[Section]] = {
    "calling": CallingConfig,  # device/config_queue.py
    "line": LineConfig,  # device/config_line.py
}


def validate_section(name: str, model: type[BaseModel], table: Any, **extra: Any) -> Any:
    """``[name]`` validated by ``model``; a pydantic error becomes ConfigError naming the key."""
    if not isinstance(table, dict):
        raise ConfigError(name, "", f"must be a table, got {type(table).__name__}")
    try:
        return model.model_validate({**table, **extra})
    except ValidationError as exc:
        err = from_validation(exc, name, model)
        if err.key.startswith("pins."):  # a nested pin table: [buttons.pins] next, [leds] ticket
            where = f"{name}.pins" if name == "buttons" else name
            raise ConfigError(where, err.key.removeprefix("pins."), err.problem) from None
        raise err from None


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

BUILTIN_SECTIONS = frozenset(
    {"device", "broker", "queue", "rating", "buttons", "leds", "buzzer", "printer", "audio", "display",
     "health", "outbox", "clock", "commands", "camera", "updates"}
)
# Sections with no check beyond their model: validated by validate_section alone.
_PLAIN = {"audio": AudioConfig, "display": DisplayConfig, "health": HealthConfig, "outbox": OutboxConfig,
          "clock": ClockConfig, "commands": CommandsConfig, "updates": UpdatesConfig}


def known_sections() -> frozenset[str]:
    return BUILTIN_SECTIONS | frozenset(EXTRA_SECTIONS)


def parse_config(data: dict[str, Any], base_dir: Path | None = None, source: bytes = b"") -> KioskConfig:
    """Validate a parsed TOML document into a :class:`KioskConfig`."""
    known = known_sections()
    for top in data:
        if top not in known:
            raise ConfigError(top, "", f"unknown section; known: {', '.join(sorted(known))}")
    device = validate_section("device", DeviceConfig, data.get("device", {}))
    broker = _broker(data.get("broker", {}), base_dir)
    queue = validate_section("queue", QueueConfig, data.get("queue", {}))
    if len(queue.label_prefix) + queue.label_digits > 16:
        raise ConfigError("queue", "label_prefix", "label (prefix + digits) must fit in 16 characters")
    rating = _rating(data.get("rating", {}))
    buttons = validate_section("buttons", ButtonsConfig, data.get("buttons", {}))
    _check_buttons(buttons.pins, rating.scale)
    leds, buzzer = _leds(data.get("leds", {})), _pins("buzzer", data.get("buzzer", {}), False)
    _check_shared_pins(buttons.pins, leds.pins, buzzer.pins)
    printer = _printer(data.get("printer", {}))
    camera = _table("camera", data)
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
        camera=dict(camera),
        source_sha256=hashlib.sha256(source).hexdigest(),
        **{name: validate_section(name, model, data.get(name, {})) for name, model in _PLAIN.items()},
        extra={name: validate_section(name, m, data.get(name, {})) for name, m in EXTRA_SECTIONS.items()},
    )
    if max(map(len, cfg.extra["calling"].prefixes())) + len(queue.label(1)) > 16:  # device/config_queue.py
        raise ConfigError("calling", "label_prefix", "label (kind prefix + [queue] label) must fit in 16")
    line, fields = cfg.extra["line"], cfg.extra["calling"].fields
    if line.role == "entrance" and not fields:
        raise ConfigError("line", "role", 'an entrance kiosk needs its service fields in [calling.fields]')
    for name in cfg.buttons.pins:  # the entrance kiosk's buttons per service field (device/entrance.py)
        prefix, _, code = name.partition("_")
        if prefix in ("field", "priority") and code and (line.role != "entrance" or code not in fields):
            raise ConfigError("buttons.pins", name, f"{prefix}_<code> buttons are for [line] role = "
                              '"entrance" and a code of [calling.fields]')
    if line.role == "counter" and not line.token.startswith(f"c{cfg.device.counter}."):
        raise ConfigError("line", "token", f"a counter's token is its own (c{cfg.device.counter}.…, from "
                          "python -m device.line_tokens on the office's line secret), not the secret")
    if line.role == "entrance" and (len(fields) + 1) * line.block > MAX_TICKET_NO:
        raise ConfigError("line", "block", f"{len(fields)} fields x block {line.block} exceed ticket numbers "
                          f"(at most {MAX_TICKET_NO})")
    if cfg.camera_enabled:
        cfg = cfg.model_copy(update={"vision": VisionConfig.from_table(camera)})
    return cfg


def _table(name: str, data: dict[str, Any]) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(name, "", "must be a table")
    return table


def _broker(table: Any, base_dir: Path | None) -> BrokerConfig:
    b = validate_section("broker", BrokerConfig, table)
    files = {k: _check_file("broker", k, getattr(b, k), base_dir) for k in ("ca_file", "cert_file",
                                                                              "key_file")}
    if (files["cert_file"] is None) != (files["key_file"] is None):
        raise ConfigError("broker", "cert_file", "cert_file and key_file must be given together")
    return b.model_copy(update=files)


def _rating(table: Any) -> RatingConfig:
    r = validate_section("rating", RatingConfig, table)
    labels = r.labels if r.labels is not None else list(DEFAULT_LABELS[r.scale])
    if len(labels) != r.scale:
        raise ConfigError(
            "rating", "labels", f"must have {r.scale} entries for scale {r.scale}, got {len(labels)}"
        )
    for code in r.reasons:
        if not REASON_CODE_RE.match(code):
            raise ConfigError("rating", f"reasons.{code}", "code must be lower-case letters and '_' (1-32)")
    return r.model_copy(update={"labels": labels})


BUTTON_NAME_RE = r"rate_\d+|(field|priority)_[a-z][a-z0-9_]*"  # rating levels; an entrance's field buttons


def _check_buttons(pins: dict[str, int], scale: int) -> None:
    for need in OFFICER_BUTTONS + tuple(f"rate_{i}" for i in range(1, scale + 1)):
        if need not in pins:
            raise ConfigError("buttons.pins", need, "required button pin is missing")
    for name in pins:
        if name not in OFFICER_BUTTONS + OPTIONAL_BUTTONS and not re.fullmatch(BUTTON_NAME_RE, name):
            raise ConfigError(
                "buttons.pins", name,
                "unknown button name (ticket, priority, next, recall, no_show, rate_N, field_<code>, "
                "priority_<code>)"
            )
        if name.startswith("rate_") and not 1 <= int(name[5:]) <= scale:
            raise ConfigError("buttons.pins", name, f"outside the {scale}-level rating scale")


def _pins(name: str, table: Any, pwm: bool) -> OutputPins:
    if not isinstance(table, dict):
        raise ConfigError(name, "", "must be a table")
    return validate_section(name, OutputPins, {"pins": table, "pwm": pwm})


def _leds(table: Any) -> OutputPins:
    if not isinstance(table, dict):
        raise ConfigError("leds", "", "must be a table")
    pwm = table.get("pwm", False)
    if not isinstance(pwm, bool):
        raise ConfigError("leds", "pwm", f"must be true or false, got {pwm!r}")
    return _pins("leds", {k: v for k, v in table.items() if k != "pwm"}, pwm)


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
    p = validate_section("printer", PrinterConfig, named, params=params)
    if p.kind == "usb":
        for k in ("vendor_id", "product_id"):
            if not isinstance(params.get(k), int):
                raise ConfigError("printer", k, 'required integer for kind = "usb" (e.g. 0x0416)')
    if p.kind == "serial" and not isinstance(params.get("devfile"), str):
        raise ConfigError("printer", "devfile", 'required string for kind = "serial" (e.g. /dev/ttyUSB0)')
    return p


# Sections an update bundle may not set: identity, broker credentials, local display, update and
# command trust, the shared line's role and token.
LOCAL_ONLY_SECTIONS = ("device", "broker", "display", "updates", "commands", "line")
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
