"""Kiosk test fixtures."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.mosquitto import Mosquitto


@pytest.fixture
def persistent_mosquitto() -> Iterator[Mosquitto]:
    """A Mosquitto whose work dir is reachable by the 'mosquitto' user (it drops root), so its
    persistence file survives a stop/start and persistent sessions keep their queued messages.
    (pytest's tmp_path lives under a 0700 directory the 'mosquitto' user cannot enter.)"""
    broker = Mosquitto().start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(broker.workdir, ignore_errors=True)
