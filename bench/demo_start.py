"""How long ``make demo`` takes to show live offices: prints seconds from the start of
``python -m demo.run --fresh`` to the map URL, all kiosks online and the first visit of the day, and
when the older history (demo.archive) finished.

    python -m bench.demo_start [--repo PATH] [--wait-archive]

``--repo`` runs another checkout's demo (e.g. a worktree of main) with this interpreter, for a
before/after comparison on the same machine; run the two back to back, the machine's load moves the
figures as much as the code does.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
OFFICES = ("03390", "03405")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.demo_start", description=__doc__)
    ap.add_argument("--repo", default=str(REPO))
    ap.add_argument("--wait-archive", action="store_true", help="also wait for the older history")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args(argv)
    data = tempfile.mkdtemp(prefix="motcua-demo-start-")
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "demo.run", "--fresh", "--quiet", "--data-dir", data,
                             "--duration", str(args.timeout)], cwd=args.repo, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": args.repo, "PYTHONUNBUFFERED": "1"})
    marks: dict[str, float] = {}
    base: list[str] = []

    def read() -> None:
        for line in proc.stdout or []:
            now = time.monotonic() - t0
            if (m := re.search(r"Gateway .*(http://127\.0\.0\.1:\d+)", line)) and not base:
                base.append(m.group(1))
            if "Bản đồ" in line:
                marks["map_url_s"] = now
            if "Older history:" in line:
                marks["archive_done_s"] = now

    threading.Thread(target=read, daemon=True).start()
    try:
        while proc.poll() is None and time.monotonic() - t0 < args.timeout:
            if base:
                _poll(base[0], marks, t0)
            wanted = {"map_url_s", "online_s", "first_visit_s"}
            if wanted | ({"archive_done_s"} if args.wait_archive else set()) <= marks.keys():
                break
            time.sleep(0.25)
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(data, ignore_errors=True)
    shown = sorted(marks.items(), key=lambda kv: kv[1])
    print("demo start (s): " + ", ".join(f"{k} {v:.1f}" for k, v in shown))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


def _poll(base: str, marks: dict[str, float], t0: float) -> None:
    try:
        offices = {o["code"]: o for o in httpx.get(base + "/api/v1/offices", timeout=5).json()}
    except (httpx.HTTPError, ValueError):
        return
    now = time.monotonic() - t0
    if sum(offices[c]["devices_online"] for c in OFFICES) >= 6:
        marks.setdefault("online_s", now)
    if sum(offices[c]["kpi_today"]["visits"] for c in OFFICES) > 0:
        marks.setdefault("first_visit_s", now)


if __name__ == "__main__":
    raise SystemExit(main())
