"""Run the real vision pipeline for a few visits and print what it emitted as JSON lines.

Used by test_privacy.py in a subprocess whose cwd/HOME/TMPDIR (and, as root, /tmp, /var/tmp and
/dev/shm as fresh tmpfs mounts) are watched for any file the pipeline might write.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from device.vision.config import VisionConfig
from device.vision.service import VisionService


class FastClock:
    """Real monotonic time, offset so that a test can close windows without waiting an hour."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> datetime:
        return datetime.now(UTC)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", required=True)
    ap.add_argument("--visits", type=int, default=6)
    ap.add_argument("--k", type=int, default=5)
    args = ap.parse_args()
    emitted: list = []
    clock = FastClock()
    cfg = VisionConfig.from_table({"enabled": True, "source": f"folder:{args.frames}", "fps": 30,
                                   "k": args.k, "window_s": 3600, "motion_threshold": 0})
    svc = VisionService(cfg, counter=1, emit=lambda t, d: emitted.append({"type": str(t), "data": d}),
                        clock=clock)
    svc.start()
    deadline = time.monotonic() + 120
    for no in range(1, args.visits + 1):
        start = svc.frames_processed
        svc.visit_started(no)
        while svc.frames_processed < start + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        svc.visit_ended(no)
    clock.offset += 3600
    while not emitted and svc._agg.carried == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    carried, pending = svc._agg.carried, svc._agg.pending_visits  # before stop() drops the visits
    svc.stop()
    print(json.dumps({"emitted": emitted, "frames": svc.frames_processed, "carried": carried,
                      "pending_visits": pending, "status": svc.status()}))


if __name__ == "__main__":
    main()
