"""Ingest bench: events/s end to end (MQTT → stored → visible in the API) next to the broker's own
delivery rate to a do-nothing subscriber, measured in the same run; p95 publish→visible latency.

    .venv/bin/python -m bench.ingest.run [--events 20000] [--devices 40] [--db URL] [--postgres]
        [--compare]      # SQLite, then PostgreSQL, in one run: printed side by side
        [--gateways 1,2] # N processes on a shared subscription ($share, MQTT v5), one run per N,
                         # printed side by side; N > 1 needs PostgreSQL
        [--batch-size N] # the gateways' [database] batch_size

Two phases, one run, the same publisher program and the same number of events in each:

1. **live**: one publisher process sends N valid QoS 1 events (realistic mix) to Mosquitto as fast as
   it acknowledges; a do-nothing subscriber process and the gateway process receive them at the same
   time. Gives the publish→visible latency and whether the gateway keeps up with what one publisher
   offers. On a 2-core machine the publisher, broker, subscriber and gateway share the cores, so the
   offered rate (not the broker) is the limit here and this ratio says little about capacity.
2. **backlog** (capacity): the gateway and a second do-nothing subscriber both have persistent
   sessions and are away while the publisher sends N new events; then the subscriber alone drains
   its backlog (the broker's delivery rate to a subscriber that does nothing), then the gateway alone
   drains its own (stored and visible in the API). Neither competes with the publisher or the other
   for the CPU: this ratio is the gateway's capacity against the broker's.

Each configuration (database × number of gateway processes) gets an empty database (its own SQLite
file, or a new database on the one throw-away PostgreSQL) and its own broker sessions, dropped after
its run. The throw-away PostgreSQL runs with its durable defaults (fsync, synchronous_commit on),
as in production: the tests' server turns them off for speed. Several gateway processes on one
SQLite file are refused: its insert path (gateway/store/pgtypes.py) is exact for one writer.

"Visible" = counted by ``GET /api/v1/stats/ingest`` (a COUNT over the stored events), polled every
50 ms; event i is visible at the first poll showing >= i+1 stored events. Printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from bench.ingest.common import REPO, GatewayProcess, bench_registry, percentile
from hil.harness.mosquitto import PRODUCTION_LOG, Mosquitto


def _proc(*args: str, stdin: bool = False, ready: bool = True) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-m", "bench.ingest.procs", *args],
        cwd=REPO,
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        text=True,
    )
    if ready:  # (a persistent sink may get its whole backlog before its SUBACK: no wait there)
        assert p.stdout and p.stdout.readline().strip() == "ready", f"{args[0]} did not start"
    return p


def _publish(port: int, n: int, devices: int, out: Path) -> list[float]:
    pub = _proc("publish", str(port), str(n), str(devices), str(out), stdin=True)
    assert pub.stdin
    pub.stdin.write("go\n")
    pub.stdin.flush()
    pub.wait(900)
    return json.loads(out.read_text())


class _Poller:
    """Polls the gateway's stored-event count every ``every_s`` until ``n`` more than ``base``.

    Each poll is a COUNT over the events table in the gateway process: 50 ms (live phase, for the
    latency) costs the gateway measurable CPU on 100,000 rows, so the backlog phase polls every
    250 ms (its rate is taken between the first and the last poll, over thousands of events)."""

    def __init__(self, gw: GatewayProcess, base: int, n: int, every_s: float = 0.05) -> None:
        self.polls: list[tuple[float, int]] = []
        self.gw, self.base, self.n, self.every_s = gw, base, n, every_s
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stalled_since = time.monotonic()  # give up after 60 s without progress (reported as such)
        while time.monotonic() - stalled_since < 60:
            k = self.gw.stats()["stored_events"] - self.base
            if not self.polls or k > self.polls[-1][1]:
                stalled_since = time.monotonic()
            self.polls.append((time.time(), k))
            if k >= self.n:
                return
            time.sleep(self.every_s)

    def join(self) -> None:
        self.thread.join(900)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min), {os.cpu_count()} CPUs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--devices", type=int, default=40)
    ap.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    ap.add_argument("--postgres", action="store_true", help="start a throw-away PostgreSQL and use it")
    ap.add_argument(
        "--compare", action="store_true", help="SQLite and a throw-away PostgreSQL, one after the other"
    )
    ap.add_argument("--skip-live", action="store_true", help="only the backlog (capacity) phase")
    ap.add_argument(
        "--gateways", default="1", help="gateway processes (shared subscription); a list (1,2) runs each"
    )
    ap.add_argument("--batch-size", type=int, default=0, help="[database] batch_size (0: the default)")
    a = ap.parse_args()
    counts = [int(k) for k in a.gateways.split(",")]
    if a.db:
        if len(counts) > 1:
            ap.error("a list of --gateways needs fresh databases: use --postgres or --compare, not --db")
        if max(counts) > 1 and not a.db.startswith("postgres"):
            ap.error("--gateways > 1 needs PostgreSQL (--postgres or --db postgresql+psycopg://...)")
    elif max(counts) > 1 and not (a.postgres or a.compare):
        ap.error("--gateways > 1 needs PostgreSQL (--postgres, or --compare for PostgreSQL's rows)")
    work = Path(tempfile.mkdtemp(prefix="motcua-bench-ingest-"))
    broker = Mosquitto(workdir=work / "mosquitto", log_types=PRODUCTION_LOG).start()
    pg = None
    summary: list[tuple[str, int, dict[str, Any]]] = []
    try:
        kinds = ["sqlite", "postgres"] if a.compare else ["postgres" if a.postgres else "given"]
        for kind in kinds:
            if kind == "postgres":
                from hil.harness.pg import PostgresServer

                pg = PostgresServer(Path(tempfile.mkdtemp(prefix="motcua-pg-")), durable=True).start()
            for k in counts:
                if k > 1 and kind == "sqlite":
                    continue  # one writer per SQLite file (see the module docstring)
                label = f"{kind}{k}"
                db = a.db if kind == "given" else (pg.new_database(f"bench_{label}") if pg else "")
                res = _run(a, work / label, broker, db, label, k)
                summary.append(("PostgreSQL" if db.startswith("postgres") else "SQLite (WAL)", k, res))
            if pg:
                pg.stop()
                shutil.rmtree(pg.workdir, ignore_errors=True)
                pg = None
        if len(summary) > 1:
            _side_by_side(summary)
    finally:
        if pg:
            pg.stop()
            shutil.rmtree(pg.workdir, ignore_errors=True)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def _side_by_side(summary: list[tuple[str, int, dict[str, Any]]]) -> None:
    print("side by side (backlog phase, same broker, same run):")
    for label, k, r in summary:
        procs = f"{k} gateway{'s' if k > 1 else ' '}"
        print(
            f"  {label:12} {procs}  broker → null sub {r['cap_sink']:>8,.0f}/s  "
            f"gateway {r['cap_gw']:>7,.0f}/s   ratio {r['cap_gw'] / r['cap_sink']:.0%}   "
            f"CPU/event {r['cpu_gw_us']:.0f} vs {r['cpu_sink_us']:.0f} µs   ({r['load_mid']})"
        )

def _run(
    a: argparse.Namespace, work: Path, broker: Mosquitto, db: str, label: str, k: int
) -> dict[str, Any]:
    """Both phases against one database with ``k`` gateway processes; prints its report and returns
    the figures. The broker sessions of this run are dropped at the end."""
    n = a.events
    work.mkdir(parents=True)
    gws: list[GatewayProcess] = []
    procs: list[subprocess.Popen] = []
    res: dict[str, Any] = {"load_before": _load()}
    try:
        gws = _gateways(k, work, broker.url, db, label, a)
        gw = gws[0]  # the stored-event count is a database total over all processes
        # ---------------------------------------------------------------- phase 1: live
        if not a.skip_live:
            base = gw.stats()["stored_events"]
            sink = _proc("sink", str(broker.port), str(n), str(work / "sink.json"))
            procs.append(sink)
            poller = _Poller(gw, base, n)
            pub_times = _publish(broker.port, n, a.devices, work / "pub.json")
            sink.wait(900)
            poller.join()
            snk = json.loads((work / "sink.json").read_text())
            polls = poller.polls
            visible_at: list[float] = []
            j = 0
            for i in range(len(pub_times)):
                while j < len(polls) and polls[j][1] < i + 1:
                    j += 1
                visible_at.append(polls[j][0] if j < len(polls) else float("nan"))
            t0 = pub_times[0]
            res["lat"] = [v - p for v, p in zip(visible_at, pub_times, strict=True)]
            res["live_gw"] = n / (visible_at[-1] - t0)
            res["live_sink"] = snk["count"] / (snk["last"] - t0)
            res["live_pub"] = n / (pub_times[-1] - t0)

        # ---------------------------------------------------------------- phase 2: backlog
        _proc("sink", str(broker.port), "0", "-", f"p-{label}").wait(60)  # create its session, leave
        for g in gws:  # persistent sessions (fixed client ids): the broker queues for them
            g.stop()
        gws = []
        base = _stored(work, broker.url, db)
        _publish(broker.port, n, a.devices, work / "pub2.json")
        res["load_mid"] = _load()
        sink = _proc("sink", str(broker.port), str(n), str(work / "sink2.json"), f"p-{label}", ready=False)
        procs.append(sink)
        sink.wait(900)
        snk = json.loads((work / "sink2.json").read_text())
        res["cap_sink"] = (snk["count"] - 1) / (snk["last"] - snk["first"])
        res["cpu_sink_us"] = snk["cpu_s"] / (snk["count"] - 1) * 1e6
        gws = _gateways(k, work, broker.url, db, label, a)
        gw = gws[0]
        cpu0, k0 = _cpu(gws), gw.stats()["stored_events"] - base  # from here: CPU and events alike
        poller = _Poller(gw, base, n, every_s=0.25)
        poller.join()
        first = next(p for p in poller.polls if p[1] > 0)
        last = poller.polls[-1]
        if last[0] == first[0]:
            raise SystemExit(f"the backlog of {n} events was drained within one poll: too few to measure "
                             "a rate (use --events of 20,000 or more)")
        res["cpu_gw_us"] = (_cpu(gws) - cpu0) / max(1, last[1] - k0) * 1e6
        res["cap_gw"] = (last[1] - first[1]) / (last[0] - first[0])
        res["cap_drained"] = (last[1], first[1])
        if last[1] < n:
            print(f"INCOMPLETE: only {last[1]} of {n} backlog events stored (no progress for 60 s)")
        stats = gw.stats()
        res["load_after"] = _load()
        _report(a, db, k, res, stats)
        return res
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for g in gws:
            g.stop()
        _drop_sessions(broker.port, [f"bench-sink-p-{label}", *_client_ids(k, label)])


def _client_ids(k: int, label: str) -> list[str]:
    return [f"bench-gw-{label}"] if k == 1 else [f"bench-gw-{label}-{i}" for i in range(k)]


def _drop_sessions(port: int, client_ids: list[str]) -> None:
    """Connect once with a clean session under each id: the broker forgets the session and its queue,
    so a later configuration does not pay for queuing copies to this one's consumers."""
    for cid in client_ids:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True)
        c.connect("127.0.0.1", port)
        c.loop_start()
        c.disconnect()
        c.loop_stop()


def _gateways(
    k: int, work: Path, broker_url: str, db: str, label: str, a: argparse.Namespace
) -> list[GatewayProcess]:
    """``k`` gateway processes; the bench's kiosks are in their registry (events projected, not held)."""
    ids = _client_ids(k, label)
    reg = bench_registry(work / "registry.toml", a.devices)
    group = f"bench-{label}" if k > 1 else ""
    return [
        GatewayProcess(
            work / f"gw{i}" if k > 1 else work,
            broker_url,
            db,
            batch_size=a.batch_size,
            client_id=cid,
            shared_group=group,
            registry=reg,
        ).start()
        for i, cid in enumerate(ids)
    ]


def _cpu(gws: list[GatewayProcess]) -> float:
    """CPU seconds (user + system) used so far by the gateway processes."""
    return sum(sum(psutil.Process(g.proc.pid).cpu_times()[:2]) for g in gws if g.proc)


def _stored(work: Path, broker_url: str, db: str) -> int:
    """Stored events with the gateway away (a direct COUNT on its database)."""
    from gateway.store import Store

    store = Store(db or f"sqlite:///{work / 'data' / 'gateway.sqlite3'}")
    try:
        return store.event_count()
    finally:
        store.close()


def _report(a: argparse.Namespace, db: str, k: int, r: dict[str, Any], stats: dict[str, Any]) -> None:
    n = a.events
    print(
        f"database            {'PostgreSQL' if db.startswith('postgres') else 'SQLite (WAL)'}, "
        f"{k} gateway process{'es on a shared subscription' if k > 1 else ''}"
    )
    print(f"machine             before: {r['load_before']}; after: {r['load_after']}")
    if "lat" in r:
        lat = r["lat"]
        print(f"1. live: {n} events from {a.devices} devices, QoS 1, {r['live_pub']:,.0f}/s offered")
        print(f"   broker → null sub   {r['live_sink']:,.0f} events/s")
        print(f"   gateway end to end  {r['live_gw']:,.0f} events/s (stored and visible in the API)")
        print(f"   ratio               {r['live_gw'] / r['live_sink']:.0%} (bounded by the offered rate)")
        print(
            f"   latency publish→visible  p50 {percentile(lat, 50) * 1000:,.0f} ms  "
            f"p95 {percentile(lat, 95) * 1000:,.0f} ms  max {max(lat) * 1000:,.0f} ms  (poll 50 ms)"
        )
    print(f"2. backlog: {n} events queued at the broker for each, drained one consumer at a time")
    print(f"   ({r['load_mid']} after publishing)")
    print(f"   broker → null sub   {r['cap_sink']:,.0f} events/s")
    print(
        f"   gateway end to end  {r['cap_gw']:,.0f} events/s (stored and visible in the API, "
        f"{r['cap_drained'][0] - r['cap_drained'][1]} events between first and last poll)"
    )
    print(f"   ratio               {r['cap_gw'] / r['cap_sink']:.0%} (target >= 80 %)")
    print(
        f"   CPU per event       gateway {r['cpu_gw_us']:.0f} µs, null sub {r['cpu_sink_us']:.0f} µs "
        f"(less sensitive to other load than the rates; ratio {r['cpu_sink_us'] / r['cpu_gw_us']:.0%})"
    )
    print(
        f"stored {stats['stored_events']}, accepted {stats['accepted']}, duplicates "
        f"{stats['duplicates']}, rejected {stats['rejected']}, held (unregistered device) "
        f"{stats['quarantined']}"
    )


if __name__ == "__main__":
    main()
