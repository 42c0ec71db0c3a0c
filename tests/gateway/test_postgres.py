"""The same day of traffic against a real PostgreSQL server started for the test."""

from __future__ import annotations

from gateway.store import Store
from gateway.store.migrations import STEPS, current_version
from tests.gateway.scenario import WHOLE_DAY_AHEAD
from tests.gateway.test_ingest_kpis import run_day_scenario


def test_postgres_migrations_and_ingest(mosquitto, postgres, gateway_factory) -> None:
    store = Store(postgres.url)
    assert current_version(store.engine) == 0
    assert store.migrate() == [s[0] for s in STEPS]
    assert store.migrate() == []  # idempotent
    store.close()
    gw = gateway_factory(mosquitto.url, postgres.url, integrity=WHOLE_DAY_AHEAD)
    assert gw.app.state.store.dialect == "postgresql"
    run_day_scenario(gw, mosquitto.port)


def test_live_updates_cross_processes_via_listen_notify(postgres) -> None:
    """Two ingests on one PostgreSQL: what one stores shows on the other's live hub."""
    from datetime import UTC, datetime

    from contract.codec import encode
    from contract.topics import events_topic
    from gateway.config import Settings
    from gateway.ingest import Ingest
    from gateway.kpi import KpiService
    from gateway.registry import load_registry
    from tests.gateway.conftest import wait_for
    from tests.gateway.kiosk_sim import EventFactory

    class Hub:
        def __init__(self) -> None:
            self.got: list[dict] = []

        def publish(self, m: dict) -> None:
            self.got.append(m)

    settings = Settings.from_dict({"database": {"url": postgres.url}}, env={})
    stores, hubs, ingests = [], [], []
    try:
        for _ in range(2):
            st = Store(postgres.url)
            st.migrate()
            st.load_registry(load_registry(settings.registry_file))  # k03390-q2 speaks for 03390
            hub = Hub()
            ing = Ingest(settings, st, hub, kpi=KpiService(st, settings.kpi))  # type: ignore[arg-type]
            ing.start(mqtt=False)
            stores.append(st)
            hubs.append(hub)
            ingests.append(ing)
        a, b = ingests
        assert a.bridge.listening.wait(60) and b.bridge.listening.wait(60)
        f = EventFactory("k03390-q2", "03390", 2)
        day = KpiService(stores[0], settings.kpi).today()
        for e in f.visit(1, day, datetime.now(UTC), 30.0, 20.0):
            b.on_message(events_topic(e.office_code, e.device_id), encode(e))  # only B ingests

        def relayed_to_a() -> list[dict]:
            return [
                m
                for m in hubs[0].got
                if m.get("kind") == "office" and m["office_code"] == "03390" and m["kpi_today"]["served"] == 1
            ]

        wait_for(relayed_to_a, what="B's office update on A's hub")
        assert a.bridge.relayed >= 1 and b.bridge.relayed == 0  # nobody relays its own messages
    finally:
        for ing in ingests:
            ing.stop()
        for st in stores:
            st.close()
