"""Load bench: 3,000 simulated kiosks (roughly every commune-level office in Vietnam) sending
health every 60 s and realistic visits for 10 minutes; checks nothing is lost and memory is flat.

    .venv/bin/python -m bench.load.run [--kiosks 3000] [--minutes 10] [--health-s 60]
                                       [--visits-per-hour 8] [--procs 4] [--postgres]

Kiosks are simulated by --procs processes, multiplexed over a few MQTT connections each (the
gateway has one subscription; it sees the same traffic as from 3,000 connections). Health is QoS 0
like the real kiosk; events are QoS 1 and must all be stored. Gateway RSS is sampled every 10 s.
Printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.ingest.common import REPO, GatewayProcess
from hil.harness.mosquitto import Mosquitto


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mr = sum(r for _, r in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    return (sum((t - mt) * (r - mr) for t, r in samples) / den) * 60 if den else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kiosks", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--health-s", type=float, default=60.0)
    ap.add_argument("--visits-per-hour", type=float, default=8.0)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--conns", type=int, default=8, help="MQTT connections per simulator process")
    ap.add_argument("--postgres", action="store_true")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="motcua-bench-load-"))
    broker = Mosquitto(workdir=work / "mosquitto").start()
    pg = gw = None
    sims: list[subprocess.Popen] = []
    try:
        db = ""
        if a.postgres:
            from hil.harness.pg import PostgresServer

            pg = PostgresServer(Path(tempfile.mkdtemp(prefix="motcua-pg-"))).start()  # postgres must reach it
            db = pg.url
        # offline after 1.5 health intervals; no sweeping storm from the short bench
        gw = GatewayProcess(
            work, broker.url, db, extra=f"[alerts]\noffline_after_s = {max(90.0, 1.5 * a.health_s)}\n"
        ).start()
        proc = psutil.Process(gw.proc.pid)
        seconds = a.minutes * 60
        per = -(-a.kiosks // a.procs)
        for p in range(a.procs):
            first, count = p * per, min(per, a.kiosks - p * per)
            if count <= 0:
                break
            sp = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.load.sim",
                    str(broker.port),
                    str(first),
                    str(count),
                    str(seconds),
                    str(a.health_s),
                    str(a.visits_per_hour),
                    str(a.conns),
                    str(work / f"sim{p}.json"),
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
            )
            sims.append(sp)
        for sp in sims:
            assert sp.stdout and sp.stdout.readline().strip() == "ready"
        t0 = time.time()
        rss: list[tuple[float, float]] = []
        print(
            f"{a.kiosks} kiosks, {a.minutes:g} min, health every {a.health_s:g} s, "
            f"{a.visits_per_hour:g} visits/h per kiosk, database {'PostgreSQL' if db else 'SQLite'}"
        )
        print("   t(s)  RSS(MB)  events stored  health  queue")
        while any(sp.poll() is None for sp in sims):
            time.sleep(10)
            s = gw.stats()
            r = proc.memory_info().rss / 2**20
            rss.append((time.time() - t0, r))
            print(
                f"{time.time() - t0:7.0f}  {r:7.1f}  {s['stored_events']:13d}  {s['health']:6d}  "
                f"{s['process']['queue_depth']:5d}",
                flush=True,
            )
        sent = {"events": 0, "health": 0, "status": 0}
        for p in range(len(sims)):
            for k, v in json.loads((work / f"sim{p}.json").read_text()).items():
                sent[k] += v
        deadline = time.time() + 300
        while time.time() < deadline:
            s = gw.stats()
            if s["stored_events"] >= sent["events"] and s["process"]["queue_depth"] == 0:
                break
            time.sleep(1)
        s = gw.stats()
        fleet = gw.client.get("/api/v1/fleet").json()
        online = sum(1 for d in fleet if d["state"] == "online")
        half = [x for x in rss if x[0] >= rss[-1][0] / 2] if rss else []
        print(
            f"events  sent {sent['events']}, stored {s['stored_events']}, "
            f"lost {sent['events'] - s['stored_events']}"
            f", duplicates {s['duplicates']}, rejected {s['rejected']}"
        )
        print(f"health  sent {sent['health']} (QoS 0), received {s['health']}; status {s['status']}")
        print(f"fleet   {len(fleet)} devices, {online} online")
        if rss:
            print(
                f"memory  RSS first {rss[0][1]:.1f} MB, last {rss[-1][1]:.1f} MB, "
                f"max {max(r for _, r in rss):.1f} MB;"
                f" slope over the second half {slope_mb_per_min(half):+.2f} MB/min"
            )
    finally:
        for sp in sims:
            if sp.poll() is None:
                sp.kill()
                sp.wait()
        if gw:
            gw.stop()
        if pg:
            pg.stop()
            shutil.rmtree(pg.workdir, ignore_errors=True)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
