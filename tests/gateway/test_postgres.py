"""The same day of traffic against a real PostgreSQL server started for the test."""

from __future__ import annotations

from gateway.store import Store
from gateway.store.migrations import STEPS, current_version
from tests.gateway.test_ingest_kpis import run_day_scenario


def test_postgres_migrations_and_ingest(mosquitto, postgres, gateway_factory) -> None:
    store = Store(postgres.url)
    assert current_version(store.engine) == 0
    assert store.migrate() == [s[0] for s in STEPS]
    assert store.migrate() == []  # idempotent
    store.close()
    gw = gateway_factory(mosquitto.url, postgres.url)
    assert gw.app.state.store.dialect == "postgresql"
    run_day_scenario(gw, mosquitto.port)
