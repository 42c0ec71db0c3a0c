"""Produce the feed: closed hours → ``feed_records`` (append-only, one row per office, hour, revision).

Each run recomputes the closed hours of the last ``[feed] recheck_days`` service days
(:func:`gateway.feed.aggregate.hour_figures`) and compares each hour's figures with the latest
revision stored for it (by digest):
* an hour with figures and no record gets revision 1;
* an hour whose figures changed (late events, a flag cleared, a queue reset) gets ``revision + 1``,
  including an hour that became empty (all zero), so upstream converges to the truth;
* an unchanged hour gets nothing, so re-running is idempotent.
The records of one run are written in one transaction in (hour, office) order. On PostgreSQL, where
several gateway processes may run, a transaction-scoped advisory lock lets one producer run at a
time, so ``feed_records.id`` order is commit order: a reader at cursor *c* never later finds a new
row below *c*. (SQLite serialises writers by itself.)
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Connection, select

from contract.feed import FeedRecord
from contract.worker import Worker
from gateway.feed import schema as fs
from gateway.feed.aggregate import Key, empty_figures, hour_figures
from gateway.feed.config import FeedSettings
from gateway.store import Store

log = logging.getLogger("motcua.gateway.feed")
PRODUCER_LOCK = 766469  # pg_advisory_xact_lock key (766468 is the migrations')


def digest(figures: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(figures, sort_keys=True).encode()).hexdigest()


class FeedProducer(Worker):
    def __init__(self, store: Store, cfg: FeedSettings, *, wait_target_s: float, timezone: str,
                 min_k: int) -> None:
        self.store, self.cfg = store, cfg
        self.target_s, self.tz, self.min_k = wait_target_s, ZoneInfo(timezone), min_k
        self.invalid = 0  # hours whose figures the contract refused (logged; a bug if ever > 0)
        Worker.__init__(self, "feed-producer", self._loop, join_timeout_s=30)

    def run_once(self, now: float | None = None) -> int:
        """Recompute, write new revisions; returns how many records were written."""
        now = time.time() if now is None else now
        today = datetime.fromtimestamp(now, self.tz).date()
        first = today - timedelta(days=self.cfg.recheck_days - 1)
        lo = int(datetime.combine(first, datetime.min.time(), self.tz).timestamp())
        with self.store.engine.begin() as conn:
            if self.store.dialect == "postgresql" and not conn.exec_driver_sql(
                    f"SELECT pg_try_advisory_xact_lock({PRODUCER_LOCK})").scalar():
                return 0  # another process is producing
            figures = hour_figures(conn, self.store.dialect, first.isoformat(), today.isoformat(),
                                   self.target_s, self.min_k, now - self.cfg.close_after_s)
            # only hours inside the window: an hour before it would hold just the rows of a visit whose
            # stamp left its service day (a kiosk clock off around midnight), a partial figure
            figures = {k: v for k, v in figures.items() if k[1] >= lo}
            rows = self._new_revisions(figures, _latest(conn, lo), now)
            if rows:
                conn.execute(fs.feed_records.insert(), rows)
        return len(rows)

    def _new_revisions(self, figures: dict[Key, dict[str, Any]], latest: dict[Key, tuple[int, str]],
                       now: float) -> list[dict[str, Any]]:
        rows = []
        zero = empty_figures()
        for office, hour in sorted(set(figures) | set(latest), key=lambda k: (k[1], k[0])):
            fig = figures.get((office, hour), zero)
            d = digest(fig)
            prev = latest.get((office, hour))
            if (prev is not None and prev[1] == d) or (prev is None and fig == zero):
                continue
            revision = prev[0] + 1 if prev else 1
            try:
                record = FeedRecord(source=self.cfg.source_id, office_code=office,
                                    hour_start=datetime.fromtimestamp(hour, UTC), revision=revision,
                                    produced_at=datetime.fromtimestamp(now, UTC), wait_target_s=self.target_s,
                                    **{**fig, "wait_histogram": tuple(fig["wait_histogram"]),
                                       "ratings_by_level": tuple(fig["ratings_by_level"])})
            except ValidationError as exc:
                self.invalid += 1
                log.error("feed: office %s hour %s not published: %s", office, hour, exc)
                continue
            rows.append({"office_code": office, "hour_start": hour, "revision": revision, "produced_at": now,
                         "digest": d, "record": record.model_dump_json()})
        return rows

    # ------------------------------------------------------------------ thread

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.run_once()
                if n:
                    log.info("feed: %d new hour record(s)", n)
            except Exception:  # a database hiccup must not end the feed; the next run retries
                log.exception("feed: producing failed; retrying in %.0f s", self.cfg.interval_s)
            self._stop.wait(self.cfg.interval_s)


def _latest(conn: Connection, lo: int) -> dict[Key, tuple[int, str]]:
    """(office, hour) → (latest revision, its digest) for hours from ``lo``."""
    r = fs.feed_records
    q = (select(r.c.office_code, r.c.hour_start, r.c.revision, r.c.digest)
         .where(r.c.hour_start >= lo).order_by(r.c.revision))
    return {(o, int(h)): (rev, d) for o, h, rev, d in conn.execute(q)}


# ---------------------------------------------------------------------- reading the log (pull, push)

def encode_cursor(record_id: int) -> str:
    return base64.urlsafe_b64encode(f"feed1:{record_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The record id behind a cursor; ``ValueError`` for anything this gateway did not hand out."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a feed cursor") from None
    prefix, _, num = text.partition(":")
    if prefix != "feed1" or not num.isascii() or not num.isdigit() or int(num) > 2**63 - 1:
        raise ValueError("not a feed cursor")
    return int(num)


def records_after(store: Store, after_id: int, limit: int) -> list[tuple[int, str, str, str]]:
    """Up to ``limit`` records after ``after_id`` in id order: (id, office, idempotency key, JSON)."""
    r = fs.feed_records
    q = (select(r.c.id, r.c.office_code, r.c.hour_start, r.c.revision, r.c.record)
         .where(r.c.id > after_id).order_by(r.c.id).limit(limit))
    with store.engine.connect() as conn:
        return [(int(i), o, f"{o}/{h}/{rev}", rec) for i, o, h, rev, rec in conn.execute(q)]
