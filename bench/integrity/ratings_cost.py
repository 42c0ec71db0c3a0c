"""Does one kiosk's flood of ratings slow the ingest of everyone? In-process store cost (SQLite,
``apply_batch`` in batches of 500, as the writer thread does) for N ratings from one registered kiosk:

* ``repeated``: N ratings of one served visit (all but the first are ``duplicate``);
* ``never_matched``: N ratings of tickets that never arrive (all stay ``pending``);
* ``visits``: N/4 ordinary rated visits (issued, called, completed, rated), for reference.

    .venv/bin/python -m bench.integrity.ratings_cost [--n 2000 8000]

The rate must not fall as N grows: each batch reads only its own ratings and the rating counted so
far for each visit (``gateway.store.ratings.reconcile``), and the burst rule reads only counted top
ratings. Before that, every batch re-read every stored rating of the visit or counter-day.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from contract.codec import decode, encode
from contract.topics import events_topic
from gateway.config import Settings
from gateway.registry import load_registry
from gateway.store import Store
from gateway.store.writer import Incoming, apply_batch
from hil.harness.kiosk_sim import EventFactory

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def _events(kind: str, n: int) -> list:
    f = EventFactory("k03390-q1", "03390", 1)
    day = datetime.now(TZ).date()
    t0 = datetime.now(UTC) - timedelta(hours=3)
    if kind == "visits":
        out = []
        for no in range(1, n // 4 + 1):
            issued = t0 + timedelta(seconds=no)
            out += f.visit(no, day, issued, 60.0, 300.0)
            out.append(f.rating(no, day, 2, issued + timedelta(seconds=400)))
        return out
    out = f.visit(1, day, t0, 60.0, 300.0)
    for i in range(n):  # all within one burst window: the worst case for the burst rule
        no = 1 if kind == "repeated" else 2 + i
        out.append(f.rating(no, day, 3, t0 + timedelta(seconds=400 + (i % 50) * 0.01)))
    return out


def run(kind: str, n: int) -> float:
    work = Path(tempfile.mkdtemp(prefix="bench-ratings-"))
    try:
        store = Store(f"sqlite:///{work / 'g.sqlite3'}")
        store.migrate()
        store.load_registry(load_registry(Settings.load(None).registry_file))
        msgs = [decode(events_topic(e.office_code, e.device_id), encode(e)) for e in _events(kind, n)]
        t0 = time.perf_counter()
        for i in range(0, len(msgs), 500):
            apply_batch(store, [Incoming(m, time.time()) for m in msgs[i : i + 500]], {}, TZ, set())
        rate = len(msgs) / (time.perf_counter() - t0)
        store.close()
        return rate
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 8000], help="ratings per run")
    args = ap.parse_args(argv)
    print("store cost, one kiosk, SQLite, batches of 500 (events/s; must not fall as N grows)")
    for kind in ("visits", "repeated", "never_matched"):
        print(f"{kind:<14}" + "".join(f"  N={n}: {run(kind, n):>6.0f}/s" for n in args.n), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
