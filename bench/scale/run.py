"""Scale bench (issue 11): period reads on a filled province-year, SQLite and PostgreSQL.

    python -m bench.scale.run [--before-repo PATH] [--calls 5] [--db sqlite,postgresql]

Fills once (bench/scale/fill.py: >= 1 M visits over 38 offices through the real writer; cached under
build/bench-scale/), then starts the real gateway (``gateway.cli run``, its own process, against a
Mosquitto started here) on that database and times over HTTP every period endpoint for a week, a
month, a quarter and a year ending 2026-11-30 (median wall time of ``--calls`` calls, and the mean
CPU time the gateway process spent per call; the year CSV read whole), sampling the gateway
process's RSS (psutil, every 50 ms) throughout. ``--before-repo`` names a
checkout of the code before the rollups (main): the same database is then read by that code's
gateway too (its endpoints: units/{code}/kpis and kpis.csv), for the "before" column.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import psutil

from bench.scale.cache import LAST, ROOT, postgres_db, sqlite_db
from hil.harness.gateway import gateway_command, process_config
from hil.harness.kiosk_proc import stop_process
from hil.harness.mosquitto import Mosquitto, free_port, wait_port

TOKEN = "bench-operator-token-0123456789abcdef"
PERIODS = {"week": 7, "month": 30, "quarter": 91, "year": 365}
BY = {"week": "day", "month": "day", "quarter": "week", "year": "month"}
OFFICE = UNIT = "03390"


class Gateway:
    """The gateway of ``repo`` in a child process on ``db_url``; RSS sampled from start to stop."""

    def __init__(self, repo: Path, db_url: str, broker_url: str) -> None:
        self.repo, self.port = repo, free_port()
        work = Path(tempfile.mkdtemp(prefix="scale-gw-"))
        self.config = work / "gateway.toml"
        self.config.write_text(process_config(
            work / "data", self.port, broker_url, db_url, TOKEN, client_id=f"scale-{self.port}",
            registry={"load_on_start": False}, retention={"raw_days": 3650}))
        self.log = work / "gateway.log"
        self.peak_rss = 0
        self._stop = threading.Event()

    def __enter__(self) -> Gateway:
        py = self.repo / ".venv" / "bin" / "python"
        self.proc = subprocess.Popen(
            gateway_command(self.config, str(py if py.exists() else sys.executable)),
            cwd=self.repo, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(self.repo)})
        wait_port(self.port, timeout=180)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=300,
                                   headers={"Authorization": f"Bearer {TOKEN}"})
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def _sample(self) -> None:
        p = psutil.Process(self.proc.pid)
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, p.memory_info().rss)
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.client.close()
        stop_process(self.proc)

    def time(self, path: str, params: dict, calls: int) -> tuple[float, float]:
        """(median wall ms, mean gateway CPU ms) of ``calls`` GETs, body read whole. The CPU time the
        gateway process spent is the figure a busy shared machine does not inflate."""
        took, p = [], psutil.Process(self.proc.pid)
        cpu0 = sum(p.cpu_times()[:2])
        for _ in range(calls):
            t0 = time.perf_counter()
            r = self.client.get(path, params=params)
            r.raise_for_status()
            took.append((time.perf_counter() - t0) * 1000)
        return statistics.median(took), (sum(p.cpu_times()[:2]) - cpu0) * 1000 / calls


def endpoints(after: bool, last: date = LAST) -> list[tuple[str, str, dict]]:
    """The calls timed, for periods ending on ``last`` (the filled database's last day)."""
    first = {p: (last - timedelta(days=n - 1)).isoformat() for p, n in PERIODS.items()}
    out = []
    for p in PERIODS:
        rng = {"from": first[p], "to": last.isoformat()}
        out.append((f"units/{{code}}/kpis ({p})", f"/api/v1/units/{UNIT}/kpis", rng))
        out.append((f"kpis.csv office ({p})", "/api/v1/kpis.csv", {**rng, "level": "office"}))
        if after:
            per = {"start": first[p], "end": last.isoformat(), "by": BY[p]}
            out.append((f"offices/{{code}}/period ({p})", f"/api/v1/offices/{OFFICE}/period", per))
            out.append((f"units/{{code}}/period ({p})", f"/api/v1/units/{UNIT}/period", per))
    return out


def measure(repo: Path, db_url: str, broker: str, after: bool, calls: int,
            last: date = LAST) -> tuple[dict, int]:
    with Gateway(repo, db_url, broker) as gw:
        out = {}
        for name, path, params in endpoints(after, last):
            slow = not after and "year" in name
            out[name] = gw.time(path, params, 1 if slow else calls)
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"    {name}: {out[name][0]:,.0f} ms, gateway CPU {out[name][1]:,.0f} ms "
                  f"(peak RSS so far {gw.peak_rss / 2**20:,.0f} MB, load average {load})", flush=True)
        return out, gw.peak_rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before-repo", type=Path, help="checkout of the code before the rollups (main)")
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--db", default="sqlite,postgresql")
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[2]
    broker = Mosquitto().start()
    results: dict[str, dict] = {}
    try:
        for db in args.db.split(","):
            pg = None
            if db == "sqlite":
                url, info = sqlite_db()
            else:
                pg, info = postgres_db()
                url = pg.url
            print(f"{db}: {info}", flush=True)
            try:
                print("  after (this branch):", flush=True)
                last = date.fromisoformat(info["last"])  # a fill cut short ends earlier
                ms, rss = measure(here, url, broker.url, True, args.calls, last)
                results[f"{db} after"] = {"info": info, "ms": ms, "rss": rss}
                if args.before_repo:
                    print(f"  before ({args.before_repo}):", flush=True)
                    ms, rss = measure(args.before_repo, url, broker.url, False, max(1, args.calls // 2), last)
                    results[f"{db} before"] = {"info": info, "ms": ms, "rss": rss}
            finally:
                if pg is not None:
                    pg.stop()
    finally:
        broker.stop()
    print(f"load average at the end: {os.getloadavg()}")
    print_table(results)


def print_table(results: dict[str, dict]) -> None:
    names = [n for n, _p, _q in endpoints(True)]
    cols = list(results)
    print("\n| endpoint | " + " | ".join(cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for n in names:
        cells = [f"{results[c]['ms'][n][0]:,.0f} ms (CPU {results[c]['ms'][n][1]:,.0f})"
                 if n in results[c]["ms"] else "n/a" for c in cols]
        print(f"| {n} | " + " | ".join(cells) + " |")
    print("| gateway peak RSS | " + " | ".join(f"{results[c]['rss'] / 2**20:,.0f} MB" for c in cols) + " |")
    for c in cols:
        i = results[c]["info"]
        how = f"in {i['fill_s']:,.0f} s" if i.get("fill_s") else f"({i.get('partial', '')})"
        print(f"{c}: {i['visits']:,} visits, {i['events']:,} events, {i['offices']} offices, "
              f"{i['days']} working days {i['first']}..{i['last']}, filled through the writer {how}")
    (ROOT / "last-run.txt").write_text(repr(results))


if __name__ == "__main__":
    main()
