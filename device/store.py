"""Durable local store (SQLite, WAL, synchronous=FULL): queue state, day counters and the event outbox.

A ticket's number, its row and its ``ticket.issued`` event are written in ONE transaction that is
committed (fsync) before the citizen sees the ticket, so a power cut can never reuse a number or lose
an acknowledged event. The outbox keeps each event's encoded payload exactly once: a resend after a
restart is byte-identical (same ``event_id``, same ``seq``).

At open the database is checked (``PRAGMA quick_check`` and a read of every row). A corrupt or
zero-length database is moved aside as ``kiosk.db.corrupt-<UTC stamp>`` (with its ``-wal``/``-shm``),
kept for forensics, and a fresh one is started; :attr:`Store.recovery` says what happened and how many
unsent events were lost (when the old outbox could still be counted). Numbers and ``seq`` continue
after the high-water file (device/highwater.py), so nothing is reused. A database error at run time
(e.g. "database disk image is malformed") refuses the action as a :class:`StoreError` and sets
:attr:`Store.corrupt`; the kiosk then restarts itself so that the check above runs.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from contract.payloads import EventType
from device.highwater import HighWater, HighWaterError
from device.store_check import check_or_move_aside, move_aside
from device.store_schema import ensure_schema

log = logging.getLogger("motcua.store")

# Events that may be evicted when the outbox quota is reached (oldest first). Everything else
# (tickets, service, ratings, resets, sentiment) is never dropped: new tickets are refused instead.
LOW_PRIORITY = frozenset(
    {EventType.DEVICE_STARTED, EventType.CMD_RESULT, EventType.SELFTEST_REPORT, EventType.UPDATE_RESULT}
)



class StoreError(RuntimeError):
    """A storage problem the kiosk reports instead of crashing."""


class StoreFull(StoreError):
    """SQLite reported 'database or disk is full'; the transaction was rolled back."""


class OutboxFull(StoreError):
    """The outbox quota is used by events that must never be dropped; new work is refused."""


CORRUPTION_MARKERS = ("malformed", "not a database", "corrupt")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    event_id: str
    type: str
    payload: bytes


# builder(seq) -> (event_id, payload bytes)
PayloadBuilder = Callable[[int], tuple[str, bytes]]


class Store:
    """All durable state. Thread-safe (one connection guarded by a lock)."""

    def __init__(self, path: str | Path, quota_bytes: int, max_pages: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.quota_bytes = quota_bytes
        self._lock = threading.RLock()
        self.highwater = HighWater(self.path.with_name(self.path.stem + ".highwater.json"))
        self.recovery = check_or_move_aside(self.path, self.highwater)
        self.corrupt = False  # set when a database error at run time looks like corruption
        try:
            self._db = self._connect(max_pages)
        except sqlite3.DatabaseError as exc:  # damage the check did not see: start afresh once
            self.recovery = move_aside(self.path, f"could not be opened ({exc})"[:120], None)
            self._db = self._connect(max_pages)
        self.disk_full_count = 0
        self.last_error: str | None = self.highwater.problem
        self._outbox_bytes = int(self._db.execute("SELECT total(size) FROM outbox").fetchone()[0])
        self._in_tx = False
        self._pending_delta = 0
        self._pending_counts: list[str] = []
        self._hw_seq: int | None = None  # highest seq appended in the open transaction
        self._hw_number: tuple[str, int] | None = None  # ticket number issued in the open transaction
        self._continue_after_highwater()

    def _connect(self, max_pages: int | None) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            if max_pages is not None:  # tests: make the database "full" at a small size
                db.execute(f"PRAGMA max_page_count={int(max_pages)}")
            ensure_schema(db)
            db.execute("SELECT total(size) FROM outbox").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _continue_after_highwater(self) -> None:
        """A database that lost transactions (or a fresh one) continues ``seq`` after the high-water."""
        db_next = int(self.get_meta("next_seq", "1") or 1)
        if db_next <= self.highwater.seq:
            with self.tx() as cur:
                self.set_meta(cur, "next_seq", str(self.highwater.seq + 1))
            log.warning("seq continues after the high-water mark %d (database had %d)",
                        self.highwater.seq, db_next)

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Cursor]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (durable on return). Disk full raises :class:`StoreFull`."""
        with self._lock:
            try:
                with self._tx() as cur:
                    yield cur
            finally:
                if self._pending_counts:
                    self.flush_counts()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            if self._in_tx:
                raise StoreError("nested transaction")
            cur = self._db.cursor()
            self._in_tx, self._pending_delta = True, 0
            self._hw_seq, self._hw_number = None, None
            try:
                cur.execute("BEGIN IMMEDIATE")
                yield cur
                self._save_highwater()
                cur.execute("COMMIT")
                self._outbox_bytes += self._pending_delta
            except HighWaterError as exc:
                self._rollback()
                self.disk_full_count += 1
                self.last_error = f"storage full (bộ nhớ đầy): {exc.strerror}"[:200]
                raise StoreFull(str(exc.strerror)) from None
            except sqlite3.DatabaseError as exc:
                self._rollback()
                if "full" in str(exc):
                    self.disk_full_count += 1
                    self.last_error = "storage full (bộ nhớ đầy)"
                    raise StoreFull("database or disk is full") from None
                raise self._failure(exc) from None
            except BaseException:
                self._rollback()
                raise
            finally:
                self._in_tx = False

    def _save_highwater(self) -> None:
        """Before COMMIT: the high-water file is never behind the database (device/highwater.py)."""
        if self._hw_seq is None and self._hw_number is None:
            return
        day, number = self._hw_number or (None, None)
        self.highwater.save(self._hw_seq or 0, day, number)

    def note_number(self, day: str, number: int) -> None:
        """Inside a transaction: ticket ``number`` of ``day`` is being issued (high-water)."""
        self._hw_number = (day, number)

    def next_number_floor(self, day: str) -> int:
        """The lowest number ``day`` may still issue according to the high-water file."""
        return self.highwater.last_number(day) + 1

    def _failure(self, exc: sqlite3.DatabaseError) -> StoreError:
        """A database error as a StoreError; corruption is flagged so the kiosk restarts and checks."""
        self.last_error = f"storage error: {exc}"[:200]
        if any(m in str(exc).lower() for m in CORRUPTION_MARKERS):
            self.corrupt = True
        log.error("storage error: %s", exc)
        return StoreError(str(exc))

    def _rollback(self) -> None:
        with suppress(sqlite3.OperationalError):  # SQLite may already have rolled back (SQLITE_FULL)
            self._db.execute("ROLLBACK")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        """A cursor for reads outside a transaction (holds the store lock); errors as StoreError."""
        with self._lock:
            try:
                yield self._db.cursor()
            except sqlite3.DatabaseError as exc:
                raise self._failure(exc) from None

    def _one(self, sql: str, args: tuple = ()) -> tuple | None:
        with self.read() as cur:
            return cur.execute(sql, args).fetchone()

    def quick_check(self) -> bool:
        try:
            row = self._one("PRAGMA quick_check")
        except StoreError:
            return False
        return row is not None and row[0] == "ok"

    # ------------------------------------------------------------------ meta counters

    def get_meta(self, key: str, default: str | None = None, cur: sqlite3.Cursor | None = None) -> str | None:
        if cur is not None:
            row = cur.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        else:
            row = self._one("SELECT value FROM meta WHERE key=?", (key,))
        return row[0] if row else default

    def set_meta(self, cur: sqlite3.Cursor, key: str, value: str) -> None:
        cur.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def increment(self, cur: sqlite3.Cursor, key: str, by: int = 1) -> None:
        """Increment a persistent counter inside the caller's transaction."""
        cur.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE "
            "SET value=CAST(value AS INTEGER)+?",
            (key, str(by), by),
        )

    def counters(self, prefix: str) -> dict[str, int]:
        """All counters whose key starts with ``prefix`` (the prefix removed)."""
        with self.read() as cur:
            rows = cur.execute(
                "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
        return {k[len(prefix):]: int(v) for k, v in rows}

    def bump(self, key: str, by: int = 1) -> None:
        """Increment a persistent counter (best effort: a full disk only loses the count)."""
        try:
            with self.tx() as cur:
                self.increment(cur, key, by)
        except StoreError:
            pass

    def counter(self, key: str) -> int:
        return int(self.get_meta(key, "0") or 0)

    # ------------------------------------------------------------------ outbox

    def append_event(
        self, cur: sqlite3.Cursor, etype: EventType, build: PayloadBuilder
    ) -> tuple[str, int] | None:
        """Append an event inside the caller's transaction; returns (event_id, seq).

        Applies the quota: evicts low-priority events (oldest first) to make room; if still no
        room, a low-priority event is dropped (counted, returns None) and any other event raises
        :class:`OutboxFull` so the caller refuses the action (the transaction is rolled back).
        """
        seq = int(self.get_meta("next_seq", "1", cur) or 1)
        event_id, payload = build(seq)
        size = len(payload)
        low = etype in LOW_PRIORITY
        used = self._outbox_bytes + self._pending_delta
        if used + size > self.quota_bytes:
            need = used + size - self.quota_bytes
            victims = cur.execute("SELECT seq, size FROM outbox WHERE low_priority=1 ORDER BY seq").fetchall()
            freed, chosen = 0, []
            for vseq, vsize in victims:
                if freed >= need:
                    break
                chosen.append(vseq)
                freed += vsize
            if freed < need:
                self._count_outside_tx("outbox_rejected")
                self.last_error = "outbox full (hàng đợi sự kiện đầy)"
                if low:
                    return None
                raise OutboxFull(f"outbox quota {self.quota_bytes} B used by events that must be kept")
            cur.executemany("DELETE FROM outbox WHERE seq=?", [(s,) for s in chosen])
            self._pending_delta -= freed
            n = len(chosen)
            cur.execute(
                "INSERT INTO meta(key, value) VALUES('outbox_evicted', ?) ON CONFLICT(key) DO UPDATE "
                "SET value=CAST(value AS INTEGER)+?",
                (str(n), n),
            )
        cur.execute(
            "INSERT INTO outbox(seq, event_id, type, low_priority, size, payload) VALUES(?,?,?,?,?,?)",
            (seq, event_id, etype.value, int(low), size, payload),
        )
        self.set_meta(cur, "next_seq", str(seq + 1))
        self._hw_seq = seq
        self._pending_delta += size
        return event_id, seq

    def _count_outside_tx(self, key: str) -> None:
        # The refusing transaction may be rolled back; count in a separate one afterwards.
        self._pending_counts.append(key)

    def flush_counts(self) -> None:
        """Persist refusal counters collected during the last transaction."""
        counts, self._pending_counts = self._pending_counts, []
        for key in counts:
            self.bump(key)

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[OutboxRow]:
        with self.read() as cur:
            rows = cur.execute(
                "SELECT seq, event_id, type, payload FROM outbox WHERE seq>? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [OutboxRow(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def ack(self, seqs: list[int]) -> None:
        """Remove events the broker acknowledged (PUBACK)."""
        if not seqs:
            return
        try:
            with self.tx() as cur:
                for s in seqs:
                    row = cur.execute("SELECT size FROM outbox WHERE seq=?", (s,)).fetchone()
                    if row:
                        cur.execute("DELETE FROM outbox WHERE seq=?", (s,))
                        self._pending_delta -= row[0]
        except StoreError:
            pass  # retried on the next PUBACK batch; a resend is harmless (same event_id)

    def outbox_depth(self) -> int:
        row = self._one("SELECT count(*) FROM outbox")
        return int(row[0]) if row else 0

    @property
    def outbox_bytes(self) -> int:
        return self._outbox_bytes

    def close(self) -> None:
        with self._lock:
            self._db.close()
