"""The kiosk database's start-up check (device/store.py's docstring says when it runs): a missing,
empty or corrupt ``kiosk.db`` is reported and, if present, moved aside with its ``-wal``/``-shm`` as
``kiosk.db.corrupt-<UTC stamp>`` for forensics, counting the unsent events it held when the outbox can
still be read. It never raises for a bad file: a kiosk must start, with what happened in health."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from device.highwater import HighWater

log = logging.getLogger("motcua.store")

TABLES = ("meta", "day_counter", "tickets", "outbox", "pending_rating", "appointments")


@dataclass(frozen=True, slots=True)
class Recovery:
    """What the start-up check found and did (reported in health ``last_error`` and device.started)."""

    problem: str
    moved_to: str | None
    lost_events: int | None  # unsent events in the old outbox; None if they could not be counted

    def message(self) -> str:
        lost = "unknown number of" if self.lost_events is None else str(self.lost_events)
        where = f"moved aside to {self.moved_to}" if self.moved_to else "started a new one"
        return f"kiosk.db {self.problem}: {where}; {lost} unsent events lost"[:200]


def _integrity_problem(path: Path) -> tuple[str | None, int | None]:
    """(problem or None, unsent events in the outbox if countable). Never raises for a bad file."""
    try:
        con = sqlite3.connect(str(path), timeout=30)
    except sqlite3.Error as exc:
        return f"cannot be opened ({exc})", None
    try:
        try:
            depth: int | None = int(con.execute("SELECT count(*) FROM outbox").fetchone()[0])
        except sqlite3.Error:
            depth = None  # the outbox itself is unreadable: the loss is unknown
        try:
            rows = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
            if rows != ["ok"]:
                return f"failed its integrity check ({'; '.join(rows[:2])})"[:120], depth
            present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            for table in TABLES:
                if table in present:
                    for _ in con.execute(f"SELECT * FROM {table}"):  # touches every record
                        pass
        except sqlite3.Error as exc:
            return f"is corrupt ({exc})"[:120], depth
        return None, depth
    finally:
        con.close()


def check_or_move_aside(path: Path, highwater: HighWater) -> Recovery | None:
    """The start-up check: a missing, empty or corrupt database is reported (moved aside if present)."""
    wal = path.with_name(path.name + "-wal")
    if not path.exists():
        if highwater.exists:  # the kiosk ran here before: its database is gone
            return Recovery("was missing", None, None)
        return None
    if path.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size > 0):
        problem, depth = "was empty (zero-length)", None
    else:
        problem, depth = _integrity_problem(path)
        if problem is None:
            return None
    return move_aside(path, problem, depth)


def move_aside(path: Path, problem: str, depth: int | None) -> Recovery:
    """Rename the database and its -wal/-shm to ``<name>.corrupt-<UTC stamp>`` (kept for forensics)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("-wal", "-shm", ""):
        src = path.with_name(path.name + suffix)
        if src.exists():
            src.rename(target.with_name(target.name + suffix))
    log.error("kiosk database %s: moved aside to %s", problem, target.name)
    return Recovery(problem, target.name, depth)
