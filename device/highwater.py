"""A tiny file beside ``kiosk.db`` that outlives it: the highest event ``seq`` and the last ticket
number of each recent service day, written (temp file, fsync, rename, fsync of the folder) inside each
transaction that uses them, before its COMMIT.

Why: if ``kiosk.db`` is lost (corrupt, zero-length, deleted, a truncated WAL that drops committed
transactions) a fresh database would issue ``0001`` again and restart ``seq`` at 1. The store takes
``max(database, high-water + 1)`` for both, so a number or seq is never reused. The file is written
before the COMMIT, so it is never behind the database: a transaction that fails after the write only
leaves a gap (a number nobody got), never a reuse.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

KEEP_DAYS = 7  # service days never go back, so only the latest ones can still be issued


def _recent(numbers: dict[str, int]) -> dict[str, int]:
    """The marks of the latest ``KEEP_DAYS`` days. A key is a day (``2026-12-05``) or, on an entrance
    kiosk, a day and a service field (``2026-12-05#land``, device/line_owner.py)."""
    days = sorted({k.split("#")[0] for k in numbers})[-KEEP_DAYS:]
    return {k: v for k, v in sorted(numbers.items()) if k.split("#")[0] in days}


class HighWaterError(OSError):
    """The high-water file could not be written (e.g. the disk is full)."""


class HighWater:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.seq = 0
        self.numbers: dict[str, int] = {}
        self.problem: str | None = None  # why an existing file could not be read
        self._load()

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            self.problem = f"high-water file unreadable: {exc.strerror}"
            return
        try:
            data = json.loads(raw)
            seq, numbers = data["seq"], data["numbers"]
            if not isinstance(seq, int) or seq < 0 or not isinstance(numbers, dict):
                raise ValueError("bad types")
            if not all(isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in numbers.items()):
                raise ValueError("bad numbers")
        except (ValueError, KeyError, TypeError) as exc:
            self.problem = f"high-water file damaged ({exc})"
            return
        self.seq, self.numbers = seq, dict(numbers)

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def last_number(self, day: str) -> int:
        return self.numbers.get(day, 0)

    def save(self, seq: int, day: str | None = None, number: int | None = None) -> None:
        """Raise the marks (never lowers them) and write the file durably."""
        new_numbers = dict(self.numbers)
        if day is not None and number is not None:
            new_numbers[day] = max(number, new_numbers.get(day, 0))
        new_numbers = _recent(new_numbers)
        new_seq = max(seq, self.seq)
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(json.dumps({"seq": new_seq, "numbers": new_numbers}).encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise HighWaterError(exc.errno, f"high-water file: {exc.strerror}") from None
        self.seq, self.numbers = new_seq, new_numbers
