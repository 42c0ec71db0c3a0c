"""Injectable clock: monotonic time for durations, aware wall time, NTP-sync state, boot id.

The Pi has no RTC, so wall time may be wrong until NTP syncs; durations never use it.
"""

from __future__ import annotations

import ctypes
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def wall(self) -> datetime: ...
    def clock_synced(self) -> bool: ...
    @property
    def boot_id(self) -> str: ...


def read_boot_id() -> str:
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        return f"noboot-{uuid.uuid4()}"


class _Timex(ctypes.Structure):
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("pad", ctypes.c_int * 11),
    ]


def _adjtimex_synced() -> bool | None:
    """Kernel view: adjtimex() returns TIME_ERROR (5) while the clock is unsynchronised."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != 5


def _timedatectl_synced() -> bool | None:
    try:
        out = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=2,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = out.stdout.strip().lower()
    if out.returncode != 0 or value not in ("yes", "no"):
        return None
    return value == "yes"


class SystemClock:
    """The real clock. ``synced_override`` (config [clock]) wins over timedatectl/adjtimex."""

    def __init__(self, synced_override: bool | None = None, cache_s: float = 30.0) -> None:
        self._override = synced_override
        self._boot_id = read_boot_id()
        self._cache: tuple[float, bool] | None = None
        self._cache_s = cache_s

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    def clock_synced(self) -> bool:
        if self._override is not None:
            return self._override
        now = time.monotonic()
        if self._cache and now - self._cache[0] < self._cache_s:
            return self._cache[1]
        synced = _timedatectl_synced()
        if synced is None:
            synced = _adjtimex_synced()
        result = bool(synced)
        self._cache = (now, result)
        return result

    @property
    def boot_id(self) -> str:
        return self._boot_id


class FakeClock:
    """A clock for tests: advance monotonic time and move wall time independently."""

    def __init__(
        self, wall: datetime, mono: float = 1000.0, synced: bool = True, boot_id: str = "boot-a"
    ) -> None:
        if wall.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._wall, self._mono, self.synced, self._boot_id = wall, mono, synced, boot_id

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> datetime:
        return self._wall

    def clock_synced(self) -> bool:
        return self.synced

    @property
    def boot_id(self) -> str:
        return self._boot_id

    def advance(self, seconds: float) -> None:
        """Real time passes: both clocks move."""
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)

    def jump_wall(self, delta: timedelta) -> None:
        """The wall clock is stepped (NTP, manual set); the monotonic clock does not move."""
        self._wall += delta

    def reboot(self, boot_id: str, mono: float = 5.0) -> None:
        self._boot_id, self._mono = boot_id, mono
