"""Gateway fixtures: the real app served by uvicorn in a thread, against a real broker and DB."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.app import create_app
from gateway.auth import sha256_hex
from gateway.config import Settings
from tests.support.mosquitto import free_port, wait_port
from tests.support.wait import wait_for as wait_for  # re-exported: tests import it from here

OPERATOR_TOKEN = "test-operator-token-0123456789abcdef"
ADMIN_TOKEN = "test-admin-token-0123456789abcdef012"


def gateway_settings(tmp: Path, broker_url: str, db_url: str = "", **sections: dict[str, Any]) -> Settings:
    raw: dict[str, Any] = {
        "data_dir": str(tmp / "gw-data"),
        "web": {"port": free_port()},
        "broker": {"url": broker_url},
        "database": {"url": db_url},
        "auth": {
            "secret_key": "x" * 40,
            "api_tokens": [
                {"name": "ops", "role": "operator", "token_sha256": sha256_hex(OPERATOR_TOKEN)},
                {"name": "adm", "role": "admin", "token_sha256": sha256_hex(ADMIN_TOKEN)},
            ],
        },
        "alerts": {"sweep_interval_s": 0.5},
    }
    for k, v in sections.items():
        raw.setdefault(k, {}).update(v)
    return Settings.from_dict(raw, env={})


class RunningGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.port = settings.web.port
        self.base = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                             proxy_headers=False)  # as gateway.cli runs it: [auth] trusted_proxies decides
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.public = httpx.Client(base_url=self.base, timeout=30)
        self.ops = httpx.Client(
            base_url=self.base, timeout=30, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        )
        self.admin = httpx.Client(
            base_url=self.base, timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )

    def start(self) -> RunningGateway:
        self.thread.start()
        wait_port(self.port, timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.app.state.ingest.mqtt is not None and self.app.state.ingest.mqtt.connected.is_set():
                return self
            time.sleep(0.05)
        raise TimeoutError("gateway did not connect to the broker")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        for c in (self.public, self.ops, self.admin):
            c.close()

    def stats(self) -> dict[str, Any]:
        r = self.ops.get("/api/v1/stats/ingest")
        r.raise_for_status()
        return r.json()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., RunningGateway]]:
    started: list[RunningGateway] = []

    def make(broker_url: str, db_url: str = "", sub: str = "a", **sections: dict[str, Any]) -> RunningGateway:
        gw = RunningGateway(gateway_settings(tmp_path / sub, broker_url, db_url, **sections)).start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


@pytest.fixture
def postgres() -> Iterator[Any]:
    """A real PostgreSQL server; skips only if the binaries are missing.

    Its data lives in a fresh /tmp/motcua-pg-* folder, not under pytest's tmp_path: pytest resets
    /tmp/pytest-of-root to mode 0700 whenever another session starts, which would lock out the
    ``postgres`` user mid-test."""
    import shutil
    import tempfile

    from tests.gateway.pg import PostgresServer, pg_available

    reason = pg_available()
    if reason:
        pytest.skip(reason)
    workdir = Path(tempfile.mkdtemp(prefix="motcua-pg-"))
    server = PostgresServer(workdir)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
