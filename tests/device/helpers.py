"""Shared helpers for the kiosk tests."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from device.clock import FakeClock
from device.config import KioskConfig, parse_config
from device.events import EventBuilder
from device.queue import QueueEngine
from device.store import Store
from hil.harness.kiosk_proc import EXAMPLE as EXAMPLE
from hil.harness.kiosk_proc import REPO as REPO
from hil.harness.kiosk_proc import example_table as example_table

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def make_config(**overrides: dict) -> KioskConfig:
    data = example_table()
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return parse_config(data)


def make_engine(
    tmp: Path,
    clock: FakeClock | None = None,
    quota: int = 10_000_000,
    max_pages: int | None = None,
    cfg: KioskConfig | None = None,
) -> tuple[QueueEngine, Store, FakeClock]:
    cfg = cfg or make_config()
    clock = clock or FakeClock(datetime(2026, 11, 30, 9, 0, tzinfo=VN))
    store = Store(tmp / "kiosk.db", quota, max_pages=max_pages)
    return (
        QueueEngine(cfg, store, clock, EventBuilder(cfg.device.id, cfg.device.office_code, clock)),
        store,
        clock,
    )


def outbox_events(store: Store) -> list[dict]:
    return [json.loads(r.payload) for r in store.pending(0, 100_000)]
