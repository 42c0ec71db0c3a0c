"""Ingest bench: events/s end to end (MQTT → stored → visible in the API) next to the broker's own
delivery rate to a do-nothing subscriber, measured in the same run; p95 publish→visible latency.

    .venv/bin/python -m bench.ingest.run [--events 20000] [--devices 40] [--db URL] [--postgres]

One publisher process sends N valid QoS 1 events (realistic mix) to Mosquitto as fast as it
acknowledges; a do-nothing subscriber process and the gateway process both receive them. "Visible"
= counted by ``GET /api/v1/stats/ingest`` (a COUNT over the stored events), polled every 50 ms;
event i is visible at the first poll showing >= i+1 stored events. Printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.ingest.common import REPO, GatewayProcess, percentile
from tests.support.mosquitto import Mosquitto


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--devices", type=int, default=40)
    ap.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    ap.add_argument("--postgres", action="store_true", help="start a throw-away PostgreSQL and use it")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="motcua-bench-ingest-"))
    broker = Mosquitto(workdir=work / "mosquitto").start()
    pg = None
    gw = None
    procs: list[subprocess.Popen] = []
    try:
        db = a.db
        if a.postgres:
            from tests.gateway.pg import PostgresServer

            pg = PostgresServer(Path(tempfile.mkdtemp(prefix="motcua-pg-"))).start()  # postgres must reach it
            db = pg.url
        gw = GatewayProcess(work, broker.url, db).start()
        base = gw.stats()["stored_events"]
        sink = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.ingest.procs",
                "sink",
                str(broker.port),
                str(a.events),
                str(work / "sink.json"),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(sink)
        assert sink.stdout and sink.stdout.readline().strip() == "ready"
        pub = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.ingest.procs",
                "publish",
                str(broker.port),
                str(a.events),
                str(a.devices),
                str(work / "pub.json"),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(pub)
        assert pub.stdout and pub.stdout.readline().strip() == "ready"

        polls: list[tuple[float, int]] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                n = gw.stats()["stored_events"] - base
                polls.append((time.time(), n))
                if n >= a.events:
                    return
                time.sleep(0.05)

        t = threading.Thread(target=poll, daemon=True)
        t.start()
        assert pub.stdin
        pub.stdin.write("go\n")
        pub.stdin.flush()
        pub.wait(600)
        sink.wait(600)
        t.join(600)
        stop.set()
        pub_times = json.loads((work / "pub.json").read_text())
        snk = json.loads((work / "sink.json").read_text())
        stats = gw.stats()

        t0 = pub_times[0]
        visible_at: list[float] = []
        j = 0
        for i in range(len(pub_times)):
            while j < len(polls) and polls[j][1] < i + 1:
                j += 1
            visible_at.append(polls[j][0] if j < len(polls) else float("nan"))
        lat = [v - p for v, p in zip(visible_at, pub_times, strict=True)]
        gw_rate = a.events / (visible_at[-1] - t0)
        broker_rate = snk["count"] / (snk["last"] - t0)
        pub_rate = a.events / (pub_times[-1] - t0)
        print(f"database            {'PostgreSQL' if db.startswith('postgres') else 'SQLite (WAL)'}")
        print(f"events published    {a.events} from {a.devices} devices, QoS 1, {pub_rate:,.0f}/s offered")
        print(f"broker → null sub   {broker_rate:,.0f} events/s ({snk['count']} delivered)")
        print(f"gateway end to end  {gw_rate:,.0f} events/s (stored and visible in the API)")
        print(f"ratio               {gw_rate / broker_rate:.0%} (target >= 80 %)")
        print(
            f"latency publish→visible  p50 {percentile(lat, 50) * 1000:,.0f} ms  "
            f"p95 {percentile(lat, 95) * 1000:,.0f} ms  max {max(lat) * 1000:,.0f} ms  (poll 50 ms)"
        )
        print(
            f"stored {stats['stored_events'] - base}, accepted {stats['accepted']}, duplicates "
            f"{stats['duplicates']}, rejected {stats['rejected']}"
        )
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if gw:
            gw.stop()
        if pg:
            pg.stop()
            shutil.rmtree(pg.workdir, ignore_errors=True)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
