"""Health snapshot (contract.Health): uptime, temperature, load, memory, disk, outbox, versions."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")
_START = time.monotonic()


def cpu_temp_c() -> float | None:
    try:
        return round(int(THERMAL.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def mem_used_pct() -> float | None:
    try:
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            k, v = line.split(":", 1)
            info[k] = int(v.split()[0])
        return round(100.0 * (1 - info["MemAvailable"] / info["MemTotal"]), 1)
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        return None


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
