"""Live updates after a commit: an office's KPIs are read only for a browser of this process.

The PostgreSQL NOTIFY bridge relays live messages to other gateway processes without their KPIs
(gateway/live_pg.py drops ``kpi_today``), so computing them when no browser of this process
listens is a large read (a busy office's day, every 0.5 s) for nobody. The message itself still
goes over the bridge.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gateway.ingest import Ingest
from gateway.live import LiveHub
from gateway.store import Store
from tests.gateway.conftest import gateway_settings


class _Kpi:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def office_today(self, office: str) -> dict[str, Any]:
        self.calls.append(office)
        return {"visits": 1}


class _Bridge:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, msg: dict[str, Any]) -> None:
        self.sent.append(dict(msg))


def _ingest(tmp_path: Path, hub: LiveHub, kpi: _Kpi, bridge: _Bridge) -> Ingest:
    settings = gateway_settings(tmp_path, "mqtt://127.0.0.1:1")
    store = Store(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    store.migrate()
    ing = Ingest(settings, store, hub, kpi=kpi)
    ing.bridge = bridge
    ing._live_pending[("office", "03390")] = {"kind": "office", "office_code": "03390"}
    return ing


def test_no_kpi_read_without_a_local_browser(tmp_path: Path) -> None:
    kpi, bridge = _Kpi(), _Bridge()
    ing = _ingest(tmp_path, LiveHub(), kpi, bridge)
    try:
        ing._flush_live(force=True)
        assert kpi.calls == []
        assert bridge.sent == [{"kind": "office", "office_code": "03390"}]
    finally:
        ing.store.close()


def test_kpi_read_for_a_local_browser(tmp_path: Path) -> None:
    kpi, bridge, hub = _Kpi(), _Bridge(), LiveHub()
    ing = _ingest(tmp_path, hub, kpi, bridge)

    async def browser() -> dict[str, Any]:
        sub = hub.subscribe()
        first = asyncio.ensure_future(sub.__anext__())
        while hub.subscriber_count == 0:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(ing._flush_live, force=True)
        got = await asyncio.wait_for(first, 30)
        await sub.aclose()
        return got

    try:
        got = asyncio.run(browser())
        assert kpi.calls == ["03390"]
        assert got["kpi_today"] == {"visits": 1}
        assert len(bridge.sent) == 1
    finally:
        ing.store.close()
