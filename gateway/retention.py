"""Retention: raw events older than ``raw_days`` are deleted (the derived visits, their kinds,
ratings and sentiment windows they fed stay until ``aggregate_days``); closed alerts and settled
commands follow the raw horizon. The rollups (gateway/store/rollups.py, kind_rollup.py) are never
purged: every period figure, by kind and field too, outlives the rows. Backups: docs/gateway.md#backup."""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta

from sqlalchemy import delete

from gateway.config import RetentionSettings
from gateway.store import Store
from gateway.store import schema as s
from gateway.ticket_kinds import visit_kinds

log = logging.getLogger("motcua.gateway.retention")


class Retention:
    def __init__(self, store: Store, cfg: RetentionSettings) -> None:
        self.store = store
        self.cfg = cfg

    def run(self, now: float | None = None) -> dict[str, int]:
        now = time.time() if now is None else now
        raw_cut = now - self.cfg.raw_days * 86400
        agg_day = (date.fromtimestamp(now) - timedelta(days=self.cfg.aggregate_days)).isoformat()
        out: dict[str, int] = {}
        with self.store.engine.begin() as conn:
            # derived rows are written in the same transaction as their raw event, so deleting raw
            # events never loses an aggregate
            out["events"] = conn.execute(delete(s.events).where(s.events.c.received_at < raw_cut)).rowcount
            out["alerts"] = conn.execute(
                delete(s.alerts).where(s.alerts.c.closed_at.is_not(None) & (s.alerts.c.closed_at < raw_cut))
            ).rowcount
            out["commands"] = conn.execute(
                delete(s.commands).where(s.commands.c.issued_at < raw_cut)
            ).rowcount
            for t in (s.visits, visit_kinds, s.ratings, s.sentiment_windows):
                out[t.name] = conn.execute(delete(t).where(t.c.service_day < agg_day)).rowcount
        log.info("retention: %s", out)
        return out
