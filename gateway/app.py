"""FastAPI application factory: storage, KPI service, live hub, ingest, routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from contract.body_limit import BodyLimitMiddleware
from gateway.alerts import AlertManager
from gateway.api import router as api_router
from gateway.api_kinds import router as kinds_router
from gateway.auth import AuthSettings, build_authenticator
from gateway.booking.routes import install as install_booking
from gateway.config import ConfigError, Settings
from gateway.feed.api import router as feed_router
from gateway.feed.service import FeedService
from gateway.ingest import Ingest
from gateway.kpi import KpiService
from gateway.live import LiveHub
from gateway.metrics import router as metrics_router
from gateway.registry import load_registry
from gateway.reports.routes import router as reports_router
from gateway.retention import Retention
from gateway.store import Store
from gateway.updates_api import router as updates_router
from gateway.web.routes import router as web_router

log = logging.getLogger("motcua.gateway")


def create_app(settings: Settings, *, start_ingest: bool = True) -> FastAPI:
    """Build the app. The lifespan migrates the database, loads the registry, starts the embedded
    broker (when ``[broker] url`` is empty) and the ingest; they stop with it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url, integrity=settings.integrity)
    live = LiveHub()
    kpi = KpiService(store, settings.kpi)

    alerts = AlertManager(store, settings.alerts)
    retention = Retention(store, settings.retention)
    ingest = Ingest(settings, store, live, kpi=kpi, alerts=alerts, retention=retention)
    feed = FeedService(settings, store)  # upward feed / province hub (off unless configured)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = None
        store.migrate()
        if settings.registry.load_on_start:
            store.load_registry(load_registry(settings.registry_file))
        alerts.start()
        feed.start()
        ingest.start(mqtt=False)
        if start_ingest:
            broker = _start_mqtt(settings, ingest)
        app.state.broker = broker
        booking_pusher.start()  # the day's appointments to the kiosks (gateway/booking/push.py)
        try:
            yield
        finally:
            booking_pusher.stop()
            ingest.stop()
            feed.stop()
            alerts.stop()
            if broker is not None:
                broker.stop()
            store.close()

    app = FastAPIOffline(  # /docs and /redoc with Swagger UI / ReDoc served from the package, no CDN
        title="MotCua Edge gateway",
        version="0.1.0",
        lifespan=lifespan,
        description="One-stop office KPIs, map feed and fleet health (Bộ phận Một cửa).",
        static_url="/docs-static",
        favicon_url="/web-static/favicon.svg",
    )
    app.add_middleware(BodyLimitMiddleware, limit=settings.web.max_body_bytes,
                       per_path={"/api/v1/updates": settings.web.max_upload_bytes})
    app.state.settings = settings
    app.state.store = store
    app.state.live = live
    app.state.kpi = kpi
    app.state.ingest = ingest
    app.state.alerts = alerts
    app.state.retention = retention
    app.state.feed = feed
    app.state.broker = None
    app.state.auth = build_authenticator(_auth_settings(settings))
    _include_routers(app)
    booking_pusher = install_booking(app, settings, store, kpi.tz)
    return app


def _start_mqtt(settings: Settings, ingest: Ingest) -> Any:
    """The embedded broker (when ``[broker] url`` is empty; returned so that it stops with the app)
    and the gateway's MQTT client feeding the ingest."""
    broker = None
    if settings.broker.embedded:
        from iotcore import Broker

        broker = Broker(port=settings.broker.embedded_port, listen="127.0.0.1").start()
        log.warning(
            "embedded MQTT broker on 127.0.0.1:%d: CHỈ DÙNG CỤC BỘ / LOCAL USE ONLY (anonymous, "
            "no TLS, no ACL, queues in RAM; production: Mosquitto, motcua-provision mosquitto-conf)",
            settings.broker.embedded_port,
        )
    from gateway.mqtt_client import GatewayMqtt

    ingest.mqtt = GatewayMqtt(settings.broker, ingest.on_message, ingest.broker_stats.on_sys)
    ingest.mqtt.start()
    return broker


def _auth_settings(settings: Settings) -> AuthSettings:
    try:
        return AuthSettings.from_table(settings.auth, data_dir=settings.data_dir)
    except ConfigError:
        raise
    except ValueError as exc:  # checks in gateway.auth beyond the table's model
        raise ConfigError("auth", "", str(exc)) from None


def _include_routers(app: FastAPI) -> None:
    app.include_router(api_router)
    app.include_router(feed_router)  # /api/v1/feed, /api/v1/hub/*
    app.include_router(metrics_router)
    app.include_router(web_router)
    app.include_router(reports_router)
    app.include_router(updates_router)
    app.include_router(kinds_router)
