"""Fixtures shared by the whole suite. Sub-folders add their own conftest.py."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto, free_port

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
ARTIFACTS = Path(os.environ.get("MOTCUA_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A real Mosquitto on a free loopback port, stopped after the test.

    Its work dir is a fresh folder under /tmp, not ``tmp_path``: started as root, Mosquitto drops to
    user ``mosquitto``, which cannot enter pytest's 0700 base folder, and would then run without its
    persistence file and log.
    """
    broker = Mosquitto().start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(broker.workdir, ignore_errors=True)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project; skips with a reason in a user's clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs {SHARED_DATA} (the developers' shared data folder), absent in this clone")
    return SHARED_DATA
