"""Health snapshot (contract.Health): uptime, temperature, load, memory, disk, outbox, versions."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psutil

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")
_START = time.monotonic()


def cpu_temp_c() -> float | None:
    try:
        return round(int(THERMAL.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def mem_used_pct() -> float:
    """Share of memory not available to new work (psutil: (total - available) / total)."""
    return round(psutil.virtual_memory().percent, 1)


def system_figures(data_dir: Path) -> dict[str, Any]:
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    try:
        disk = round(shutil.disk_usage(data_dir).free / 1e6, 1)
    except OSError:
        disk = None
    return {
        "uptime_s": round(time.monotonic() - _START, 1),
        "cpu_temp_c": cpu_temp_c(),
        "load_1m": load,
        "mem_used_pct": mem_used_pct(),
        "disk_free_mb": disk,
    }


ERROR_RECENT_S = 900.0  # health reports an error for 15 minutes after it was (last) seen


class RecentErrors:
    """The kiosk's last error, stamped when it happened and reported only while recent.

    ``note`` records an error now; ``observe`` polls a component's sticky ``last_error`` and stamps
    it when its text changes (a component that clears it to None drops it at once). ``current()``
    is the newest error seen within ``window_s`` as "HH:MM text" (local time; "HH:MM?" while the
    wall clock is not NTP-synced), else None. Ages use the monotonic clock.
    """

    def __init__(self, clock: Any, tz: Any = None, window_s: float = ERROR_RECENT_S) -> None:
        self._clock, self._tz, self.window_s = clock, tz, window_s
        self._seen: dict[str, tuple[str, float, str]] = {}  # source -> (text, mono, "HH:MM")
        self._lock = threading.Lock()

    def note(self, source: str, message: str | None) -> None:
        if not message:
            return
        wall = self._clock.wall()
        local = wall.astimezone(self._tz) if self._tz is not None else wall
        stamp = local.strftime("%H:%M") + ("" if self._clock.clock_synced() else "?")
        with self._lock:
            self._seen[source] = (str(message), self._clock.monotonic(), stamp)

    def observe(self, source: str, message: str | None) -> None:
        with self._lock:
            seen = self._seen.get(source)
            if not message:
                self._seen.pop(source, None)
                return
            if seen is not None and seen[0] == str(message):
                return
        self.note(source, message)

    def current(self) -> str | None:
        now = self._clock.monotonic()
        with self._lock:
            recent = [v for v in self._seen.values() if now - v[1] <= self.window_s]
        if not recent:
            return None
        text, _, stamp = max(recent, key=lambda v: v[1])
        return f"{stamp} {text}"[:200]
