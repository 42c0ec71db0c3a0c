"""Gateway fixtures: the real app served by uvicorn in a thread, against a real broker and DB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.harness.gateway import (  # noqa: F401 - re-exported: tests import them from here
    ADMIN_TOKEN,
    OPERATOR_TOKEN,
    RunningGateway,
    gateway_settings,
)
from hil.harness.wait import wait_for as wait_for  # re-exported: tests import it from here


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

    from hil.harness.pg import PostgresServer, pg_available

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
