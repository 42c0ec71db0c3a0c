"""In-process profile of the ingest writer: decode + ``apply_batch`` over the bench's events.

    .venv/bin/python -m bench.ingest.profile_writer [--events 20000] [--batch 2000] [--db URL]
        [--postgres] [--profile N]   # cProfile, print the top N entries by own time

No broker and no paho: the bench's own event stream (``bench.ingest.procs.events``, 40 registered
kiosks of one office), decoded (with each event's row built) as the paho thread does, stored in
batches as the writer thread does.
Prints CPU and wall µs per event for decode and for the store, over the first and the last fifth of
the batches (what grows with the day's size shows there). Printed, not asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.ingest.common import bench_registry
from bench.ingest.procs import events
from contract.codec import decode
from contract.payloads import Event
from gateway.gc_tuning import tune_gc
from gateway.registry import load_registry
from gateway.store import Store
from gateway.store.writer import Incoming, apply_batch, event_row

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def _run(url: str, n: int, batch: int, devices: int, work: Path, top: int, gateway_gc: bool = False) -> None:
    store = Store(url)
    store.migrate()
    store.load_registry(load_registry(bench_registry(work / "registry.toml", devices)))
    msgs = events(n, devices)
    if gateway_gc:
        tune_gc()  # as ``motcua-gateway run`` does (process-wide: main() only)
    c0, w0 = time.process_time(), time.perf_counter()
    now = time.time()
    incoming = []
    for t, p in msgs:  # as the paho thread does (gateway/ingest.py): decode, build the event's row
        d = decode(t, p)
        incoming.append(Incoming(d, now, event_row(d.message, now) if isinstance(d.message, Event) else None))
    dec_cpu, dec_wall = time.process_time() - c0, time.perf_counter() - w0
    prof = cProfile.Profile() if top else None
    per_batch: list[tuple[float, float, int]] = []
    for i in range(0, n, batch):
        items = incoming[i : i + batch]
        c, w = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        apply_batch(store, items, {}, TZ, set())
        if prof:
            prof.disable()
        per_batch.append((time.process_time() - c, time.perf_counter() - w, len(items)))
    store.close()
    fifth = max(1, len(per_batch) // 5)
    print(f"{url.split(':')[0]}: {n} events, batches of {batch}")
    print(f"  decode  {dec_cpu / n * 1e6:6.1f} µs CPU  {dec_wall / n * 1e6:6.1f} µs wall per event")
    for name, part in (("store, all", per_batch), ("store, first fifth", per_batch[:fifth]),
                       ("store, last fifth", per_batch[-fifth:])):
        k = sum(p[2] for p in part)
        print(f"  {name:18} {sum(p[0] for p in part) / k * 1e6:6.1f} µs CPU  "
              f"{sum(p[1] for p in part) / k * 1e6:6.1f} µs wall per event")
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(top)
        pstats.Stats(prof).sort_stats("cumulative").print_stats("gateway/store|ticket_kinds", top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--devices", type=int, default=40)
    ap.add_argument("--db", default="")
    ap.add_argument("--postgres", action="store_true", help="a throw-away PostgreSQL (durable defaults)")
    ap.add_argument("--profile", type=int, default=0, help="cProfile: print the top N by own time")
    ap.add_argument("--default-gc", action="store_true", help="CPython's collector settings (not tune_gc)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="motcua-profile-writer-"))
    pg = None
    try:
        url = a.db or f"sqlite:///{work / 'g.sqlite3'}"
        if a.postgres:
            from hil.harness.pg import PostgresServer

            pg = PostgresServer(Path(tempfile.mkdtemp(prefix="motcua-pg-")), durable=True).start()
            url = pg.new_database("profile")
        _run(url, a.events, a.batch, a.devices, work, a.profile, not a.default_gc)
    finally:
        if pg:
            pg.stop()
            shutil.rmtree(pg.workdir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
