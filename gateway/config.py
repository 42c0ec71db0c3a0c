"""Gateway settings, loaded from a TOML file (see ``gateway/gateway.example.toml``).

Secrets may come from the environment instead of the file: ``MOTCUA_DB_URL``,
``MOTCUA_BROKER_PASSWORD``, ``MOTCUA_SECRET_KEY`` (the latter is put into the raw ``[auth]``
table as ``secret_key`` when the file has none). A bad value raises :class:`ConfigError`
naming the key.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REGISTRY_DEFAULT = Path(__file__).resolve().parent / "registry" / "lai_chau_2025.toml"
EXAMPLE_CONFIG = Path(__file__).resolve().parent / "gateway.example.toml"


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the key."""


@dataclass
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8000


@dataclass
class BrokerSettings:
    url: str = ""  # "" = embedded iotcore broker on 127.0.0.1:embedded_port
    embedded_port: int = 1883
    username: str = ""
    password: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    client_id: str = ""  # "" = motcua-gateway-<hostname>-<pid>
    shared_group: str = ""  # "" = plain subscription; else $share/<group>/motcua/v1/# (MQTT v5)
    keepalive_s: int = 30

    @property
    def embedded(self) -> bool:
        return not self.url

    def effective_url(self) -> str:
        return self.url or f"mqtt://127.0.0.1:{self.embedded_port}"


@dataclass
class DatabaseSettings:
    url: str = ""  # "" = sqlite:///<data_dir>/gateway.sqlite3
    batch_size: int = 500
    batch_wait_ms: int = 50


@dataclass
class RegistrySettings:
    file: str = ""  # "" = the bundled Lai Châu demo registry
    load_on_start: bool = True  # upsert the file into the database at start-up (API edits are kept)


@dataclass
class AlertSettings:
    webhook_url: str = ""  # "" = alerts only logged and listed on /api/v1/alerts
    offline_after_s: float = 85.0  # no health/status for this long = offline (+ sweep interval <= 90 s)
    temp_high_c: float = 75.0
    outbox_growing_checks: int = 3  # outbox depth rose on this many consecutive health reports
    outbox_high: int = 500  # ... or is above this
    sweep_interval_s: float = 5.0


@dataclass
class RetentionSettings:
    raw_days: int = 90  # raw events kept this many days
    aggregate_days: int = 3650  # derived visits/ratings/sentiment kept this long
    run_every_h: float = 24.0


@dataclass
class KpiSettings:
    wait_target_s: float = 1200.0  # Lai Châu plan 1379/KH-UBND: average wait <= 20 minutes
    warn_share: float = 0.8  # wait_class "warn" between warn_share*target and target
    satisfaction_ok: float = 0.9
    satisfaction_warn: float = 0.75
    timezone: str = "Asia/Ho_Chi_Minh"


@dataclass
class IntegritySettings:
    """Gateway-side rules that keep figures honest (docs/gateway.md#integrity)."""

    min_k: int = 5  # a sentiment window must claim k >= this and visits >= k (kiosks' own k may be higher)
    window_max_visits_per_hour: int = 120  # a window's visits <= this x its hours (one counter, 30 s each)
    max_clock_ahead_s: float = 600.0  # an event stamped further ahead of the gateway's clock is refused
    max_event_age_days: int = 90  # ... or older than this (a kiosk's outbox never holds events longer)
    min_service_s: float = 10.0  # a served visit shorter than this is flagged (kept, out of staff figures)
    burst_top_ratings: int = 5  # this many top ratings from one counter ...
    burst_window_s: float = 120.0  # ... within this many seconds are flagged
    staff_figures_exclude_flagged: bool = True


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path("./gateway-data"))
    web: WebSettings = field(default_factory=WebSettings)
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    kpi: KpiSettings = field(default_factory=KpiSettings)
    integrity: IntegritySettings = field(default_factory=IntegritySettings)
    auth: dict[str, Any] = field(default_factory=dict)  # raw, for gateway.auth.AuthSettings.from_table
    source: Path | None = None

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{(self.data_dir / 'gateway.sqlite3').resolve()}"

    @property
    def registry_file(self) -> Path:
        return Path(self.registry.file) if self.registry.file else REGISTRY_DEFAULT

    def auth_settings(self) -> Any:
        """``gateway.auth.AuthSettings`` built from ``[auth]`` (None if gateway.auth is absent)."""
        try:
            from gateway.auth import AuthSettings  # written by the web part
        except ImportError:
            return None
        return AuthSettings.from_table(dict(self.auth))

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path | None = None, *, env: dict[str, str] | None = None) -> Settings:
        """Read ``path`` (or only defaults), then apply environment secrets, then validate."""
        raw: dict[str, Any] = {}
        src = None
        if path is not None:
            src = Path(path)
            try:
                raw = tomllib.loads(src.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"config file {src} does not exist") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{src}: not valid TOML: {exc}") from None
        return cls.from_dict(raw, env=env, source=src)

    @classmethod
    def from_dict(
        cls, raw: dict[str, Any], *, env: dict[str, str] | None = None, source: Path | None = None
    ) -> Settings:
        env = dict(os.environ) if env is None else env
        s = cls(source=source)
        known = {"data_dir", "web", "broker", "database", "registry", "alerts", "retention", "kpi", "auth"}
        known.add("integrity")
        for key in raw:
            if key not in known:
                raise ConfigError(f"unknown config key [{key}] (known: {', '.join(sorted(known))})")
        if "data_dir" in raw:
            if not isinstance(raw["data_dir"], str):
                raise ConfigError("data_dir must be a string path")
            s.data_dir = Path(raw["data_dir"])
        for section in ("web", "broker", "database", "registry", "alerts", "retention", "kpi", "integrity"):
            if section in raw:
                _fill(section, getattr(s, section), raw[section])
        if "auth" in raw:
            if not isinstance(raw["auth"], dict):
                raise ConfigError("[auth] must be a table")
            s.auth = dict(raw["auth"])
        if env.get("MOTCUA_DB_URL"):
            s.database.url = env["MOTCUA_DB_URL"]
        if env.get("MOTCUA_BROKER_PASSWORD"):
            s.broker.password = env["MOTCUA_BROKER_PASSWORD"]
        if env.get("MOTCUA_SECRET_KEY") and not s.auth.get("secret_key"):
            s.auth["secret_key"] = env["MOTCUA_SECRET_KEY"]
        s.validate()
        return s

    def validate(self) -> None:
        if not (0 < self.web.port < 65536):
            raise ConfigError(f"[web] port={self.web.port}: must be 1..65535")
        if not (0 < self.broker.embedded_port < 65536):
            raise ConfigError(f"[broker] embedded_port={self.broker.embedded_port}: must be 1..65535")
        if self.broker.url:
            u = urlparse(self.broker.url)
            if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not u.hostname:
                raise ConfigError(
                    f"[broker] url={self.broker.url!r}: expected mqtt://host:port or mqtts://host:port"
                )
        for key in ("ca_file", "cert_file", "key_file"):
            val = getattr(self.broker, key)
            if val and not Path(val).is_file():
                raise ConfigError(f"[broker] {key}={val!r}: file not found")
        if self.broker.shared_group and "/" in self.broker.shared_group:
            raise ConfigError(f"[broker] shared_group={self.broker.shared_group!r}: must not contain '/'")
        url = self.database_url
        if not (url.startswith("sqlite") or url.startswith("postgresql")):
            raise ConfigError(f"[database] url={url!r}: expected sqlite:///path or postgresql+psycopg://...")
        if self.database.batch_size < 1:
            raise ConfigError("[database] batch_size must be >= 1")
        if self.registry.file and not Path(self.registry.file).is_file():
            raise ConfigError(f"[registry] file={self.registry.file!r}: file not found")
        if self.retention.raw_days < 1 or self.retention.aggregate_days < self.retention.raw_days:
            raise ConfigError("[retention] raw_days must be >= 1 and aggregate_days >= raw_days")
        if self.alerts.offline_after_s <= 0:
            raise ConfigError("[alerts] offline_after_s must be > 0")
        if self.alerts.webhook_url and urlparse(self.alerts.webhook_url).scheme not in ("http", "https"):
            raise ConfigError(f"[alerts] webhook_url={self.alerts.webhook_url!r}: must be http(s)://")
        i = self.integrity
        if min(i.min_k, i.burst_top_ratings) < 2 or i.window_max_visits_per_hour < 1:
            raise ConfigError("[integrity] min_k, burst_top_ratings >= 2; window_max_visits_per_hour >= 1")
        if min(i.max_clock_ahead_s, i.max_event_age_days, i.burst_window_s) <= 0 or i.min_service_s < 0:
            raise ConfigError("[integrity] clock window, age, burst_window_s > 0; min_service_s >= 0")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.kpi.timezone)
        except Exception:
            raise ConfigError(f"[kpi] timezone={self.kpi.timezone!r}: unknown time zone") from None


def _fill(section: str, target: Any, table: Any) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"[{section}] must be a table")
    types = {f.name: f.type for f in fields(target)}
    for key, value in table.items():
        if key not in types:
            raise ConfigError(f"[{section}] unknown key {key!r} (known: {', '.join(sorted(types))})")
        current = getattr(target, key)
        expected = type(current)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"[{section}] {key}={value!r}: expected {expected.__name__}, got {type(value).__name__}"
            )
        setattr(target, key, value)
