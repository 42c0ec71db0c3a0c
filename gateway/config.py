"""Gateway settings, loaded from a TOML file (see ``gateway/gateway.example.toml``).

One typed layer: each TOML table is a pydantic model with ``extra="forbid"`` and strict types, so a
misspelt key or a ``"80"`` for a port is refused at start, never guessed. Bounds live on the fields
(``Field(ge=, le=, description=)``); checks that span fields or touch the file system are in
``Settings.validate``, which ``gateway.cli`` runs again after applying its command-line overrides
(assignments are validated too).

Secrets may come from the environment instead of the file: ``MOTCUA_DB_URL``,
``MOTCUA_BROKER_PASSWORD``, ``MOTCUA_SECRET_KEY`` (the latter is put into the raw ``[auth]``
table as ``secret_key`` when the file has none; ``gateway.auth.AuthSettings`` validates that table).
A bad value raises ``contract.config_errors.ConfigError`` (one class for kiosk and gateway) in the
form ``config error: [section] key: problem``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.config_errors import ConfigError, from_validation
from contract.mqtt_url import parse_broker_url
from gateway.booking.config import BookingSettings
from gateway.feed.config import FeedSettings, HubSettings

REGISTRY_DEFAULT = Path(__file__).resolve().parent / "registry" / "lai_chau_2025.toml"
EXAMPLE_CONFIG = Path(__file__).resolve().parent / "gateway.example.toml"
PORT = {"ge": 1, "le": 65535}


class Section(BaseModel):
    """One TOML table: unknown keys and wrong types are errors; assignments are checked too."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class WebSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, **PORT)
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=2**31,
                                description="request bodies above this get 413 before they are read")
    max_upload_bytes: int = Field(512 * 1024 * 1024, ge=1024, le=2**33,
                                  description="POST /api/v1/updates (update bundles, admin only)")
    notice: str = Field("", max_length=400,
                        description="a banner shown as text on every page (make demo: its compressed time)")


class BrokerSettings(Section):
    url: str = Field("", description='"" = embedded iotcore broker on 127.0.0.1:embedded_port')
    embedded_port: int = Field(1883, **PORT)
    username: str = ""
    password: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    client_id: str = Field("", description='"" = motcua-gateway-<hostname>-<pid>')
    shared_group: str = Field("", description='"" = plain subscription; else $share/<group>/motcua/v1/# (v5)')
    keepalive_s: int = Field(30, ge=5, le=3600)

    @property
    def embedded(self) -> bool:
        return not self.url

    def effective_url(self) -> str:
        return self.url or f"mqtt://127.0.0.1:{self.embedded_port}"


class DatabaseSettings(Section):
    url: str = Field("", description='"" = sqlite:///<data_dir>/gateway.sqlite3')
    batch_size: int = Field(2000, ge=1, le=100_000, description="a backlog drains in fewer, larger "
                            "transactions (one fsync each)")
    batch_wait_ms: int = Field(50, ge=0, le=60_000)


class RegistrySettings(Section):
    file: str = Field("", description='"" = the bundled Lai Châu demo registry')
    load_on_start: bool = Field(True, description="upsert the file into the database at start-up "
                                                  "(API edits are kept)")


class AlertSettings(Section):
    webhook_url: str = Field("", description='"" = alerts only logged and listed on /api/v1/alerts')
    offline_after_s: float = Field(85.0, gt=0, le=86_400, description="no health/status for this long = "
                                   "offline (+ sweep interval <= 90 s)")
    temp_high_c: float = Field(75.0, ge=-40, le=150)
    outbox_growing_checks: int = Field(3, ge=1, le=1000,
                                       description="outbox depth rose on this many consecutive reports")
    outbox_high: int = Field(500, ge=1, description="... or is above this")
    broker_queue_high: int = Field(200_000, ge=1, description="the broker holds this many messages "
                                   "($SYS store count): alert")
    sweep_interval_s: float = Field(5.0, gt=0, le=3600)


class RetentionSettings(Section):
    raw_days: int = Field(90, ge=1, description="raw events kept this many days")
    aggregate_days: int = Field(3650, ge=1, description="derived visits/ratings/sentiment kept this long")
    run_every_h: float = Field(24.0, gt=0, le=24 * 365)


class KpiSettings(Section):
    wait_target_s: float = Field(1200.0, gt=0, le=86_400,
                                 description="Lai Châu plan 1379/KH-UBND: average wait <= 20 minutes")
    warn_share: float = Field(0.8, gt=0, le=1,
                              description='wait_class "warn" between warn_share*target and target')
    satisfaction_ok: float = Field(0.9, ge=0, le=1)
    satisfaction_warn: float = Field(0.75, ge=0, le=1)
    timezone: str = "Asia/Ho_Chi_Minh"


class IntegritySettings(Section):
    """Gateway-side rules that keep figures honest (docs/gateway.md#integrity)."""

    min_k: int = Field(5, ge=2, le=1000, description="a sentiment window must claim k >= this and "
                       "visits >= k (kiosks' own k may be higher)")
    window_max_visits_per_hour: int = Field(120, ge=1, le=10_000, description="a window's visits <= "
                                            "this x its hours (one counter, 30 s each)")
    max_clock_ahead_s: float = Field(600.0, gt=0, le=7 * 86_400, description="an event stamped "
                                     "further ahead of the gateway's clock is refused")
    max_event_age_days: int = Field(90, gt=0, le=3650, description="... or older than this (a "
                                    "kiosk's outbox never holds events longer)")
    min_service_s: float = Field(10.0, ge=0, le=3600, description="a served visit shorter than "
                                 "this is flagged (kept, out of staff figures)")
    burst_top_ratings: int = Field(5, ge=2, le=10_000,
                                   description="this many top ratings from one counter ...")
    burst_window_s: float = Field(120.0, gt=0, le=86_400,
                                  description="... within this many seconds are flagged")
    staff_figures_exclude_flagged: bool = True


class StaffFiguresSettings(Section):
    """Per-officer figures over a period (gateway.fairness, docs/gateway.md#period-api)."""

    min_ratings: int = Field(30, ge=1, le=100_000, description="fewer ratings than this: shown as "
                             '"not enough data" (chưa đủ dữ liệu), no rank')
    confidence: float = Field(0.95, ge=0.5, le=0.999, description="level of the Wilson intervals")
    agreement_min_ratings: int = Field(3, ge=1, le=10_000, description="a counter-week enters the agreement "
                                       "of sentiment and ratings with at least this many ratings (and "
                                       "[integrity] min_k sentiment windows)")
    agreement_min_pairs: int = Field(10, ge=4, le=100_000, description="fewer counter-weeks than this: the "
                                     'agreement is shown as "not enough data"')


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True,
                              arbitrary_types_allowed=True)

    data_dir: Path = Field(Path("./gateway-data"), strict=False)
    web: WebSettings = Field(default_factory=WebSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    integrity: IntegritySettings = Field(default_factory=IntegritySettings)
    staff_figures: StaffFiguresSettings = Field(default_factory=StaffFiguresSettings)
    booking: BookingSettings = Field(default_factory=BookingSettings)  # gateway/booking/config.py
    auth: dict[str, Any] = Field(default_factory=dict,
                                 description="raw, validated by gateway.auth.AuthSettings.from_table")
    feed: FeedSettings = Field(default_factory=FeedSettings, description="upward feed (gateway/feed/)")
    hub: HubSettings = Field(default_factory=HubSettings, description="province hub (gateway/feed/)")
    source: Path | None = Field(None, exclude=True)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{(self.data_dir / 'gateway.sqlite3').resolve()}"

    @property
    def registry_file(self) -> Path:
        return Path(self.registry.file) if self.registry.file else REGISTRY_DEFAULT

    def auth_settings(self) -> Any:
        """``gateway.auth.AuthSettings`` built from ``[auth]``."""
        from gateway.auth import AuthSettings

        return AuthSettings.from_table(dict(self.auth), data_dir=self.data_dir)

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
                raise ConfigError("file", str(src), "config file does not exist") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError("file", str(src), f"not valid TOML: {exc}") from None
        return cls.from_dict(raw, env=env, source=src)

    @classmethod
    def from_dict(
        cls, raw: dict[str, Any], *, env: dict[str, str] | None = None, source: Path | None = None
    ) -> Settings:
        env = dict(os.environ) if env is None else env
        raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
        if env.get("MOTCUA_DB_URL") and isinstance(raw.setdefault("database", {}), dict):
            raw["database"]["url"] = env["MOTCUA_DB_URL"]
        if env.get("MOTCUA_BROKER_PASSWORD") and isinstance(raw.setdefault("broker", {}), dict):
            raw["broker"]["password"] = env["MOTCUA_BROKER_PASSWORD"]
        auth = raw.get("auth", {})
        if env.get("MOTCUA_SECRET_KEY") and isinstance(auth, dict) and not auth.get("secret_key"):
            raw["auth"] = {**auth, "secret_key": env["MOTCUA_SECRET_KEY"]}
        try:
            s = cls.model_validate({**raw, "source": source})
        except ValidationError as exc:
            raise from_validation(exc, None, cls) from None
        s.validate()
        return s

    def validate(self) -> None:  # type: ignore[override]  # (pydantic's classmethod is deprecated)
        """Checks across fields and on the file system (after any command-line override)."""
        if self.broker.url:
            try:
                parse_broker_url(self.broker.url)
            except ValueError as exc:
                raise ConfigError("broker", "url", str(exc)) from None
        for key in ("ca_file", "cert_file", "key_file"):
            val = getattr(self.broker, key)
            if val and not Path(val).is_file():
                raise ConfigError("broker", key, f"file not found: {val!r}")
        if "/" in self.broker.shared_group:
            group = self.broker.shared_group
            raise ConfigError("broker", "shared_group", f"must not contain '/', got {group!r}")
        url = self.database_url
        if not (url.startswith("sqlite") or url.startswith("postgresql")):
            raise ConfigError("database", "url", "expected sqlite:///path or postgresql+psycopg://...")
        if self.registry.file and not Path(self.registry.file).is_file():
            raise ConfigError("registry", "file", f"file not found: {self.registry.file!r}")
        if self.retention.aggregate_days < self.retention.raw_days:
            raise ConfigError("retention", "aggregate_days", "must be >= raw_days")
        if self.alerts.webhook_url and urlparse(self.alerts.webhook_url).scheme not in ("http", "https"):
            raise ConfigError("alerts", "webhook_url", f"must be http(s)://, got {self.alerts.webhook_url!r}")
        if self.web.max_upload_bytes < self.web.max_body_bytes:
            raise ConfigError("web", "max_upload_bytes", "must be >= max_body_bytes")
        try:
            ZoneInfo(self.kpi.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError("kpi", "timezone", f"unknown time zone {self.kpi.timezone!r}") from None
