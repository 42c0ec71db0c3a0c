"""Replay issue 8's attacks at volume against a real Mosquitto and a gateway process; print, per
attack: messages sent, how many moved a figure of the office it targets (must be 0 except flagged
rows, which are kept in office figures and left out of staff figures), and the counters that
recorded it (rejected by reason, quarantined, duplicate_rating, flags).

    .venv/bin/python -m bench.integrity [--scale 10] [--db URL]

"Moved a figure" = the change of (visits + rated + sentiment windows) in the target office's
public KPIs (``GET /api/v1/offices/{code}/kpis``) across the attack. Printed, not asserted (the
assertions are in tests/gateway/test_integrity_attacks.py). Ingest throughput under 2 % poison is
bench/ingest's.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.ingest.common import GatewayProcess
from tests.gateway.attacks import (
    Attack,
    baseline,
    farmed_visits,
    foreign_office,
    forged_unregistered,
    poison,
    rating_burst,
    repeated_ratings,
    small_windows,
)
from tests.gateway.kiosk_sim import Publisher
from tests.support.mosquitto import Mosquitto


def _moved(gw: GatewayProcess, office: str) -> int:
    d = gw.client.get(f"/api/v1/offices/{office}/kpis").json()
    return d["kpi"]["rated"] + len(d["sentiment_windows"])


def _counts(gw: GatewayProcess, office: str) -> dict[str, int]:
    st = gw.stats()
    out = {f"rejected:{k}": v for k, v in st["rejected"].items()}
    out.update(quarantined=st["quarantined"], duplicate_rating=st["duplicate_rating"])
    flags = gw.client.get(f"/api/v1/offices/{office}/flags").json()["counts"]
    out.update({f"flagged:{k.split(':', 1)[1]}": v for k, v in flags.items() if k.startswith("rating:")})
    return out


def _run_attack(gw: GatewayProcess, pub: Publisher, attack: Attack) -> dict[str, Any]:
    before, moved_before = _counts(gw, attack.office), _moved(gw, attack.office)
    t0 = time.monotonic()
    for topic, payload in attack.messages:
        pub.raw(topic, payload)
    pub.flush()
    deadline = time.monotonic() + 300
    while True:
        now = _counts(gw, attack.office)
        delta = {k: now.get(k, 0) - before.get(k, 0) for k in set(now) | set(before)}
        if all(delta.get(k, 0) >= v for k, v in attack.expect.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    flagged = sum(v for k, v in delta.items() if k.startswith("flagged:"))
    return {
        "attack": attack.name,
        "sent": len(attack.messages),
        "moved": _moved(gw, attack.office) - moved_before,
        "flagged": flagged,
        "recorded": {k: v for k, v in sorted(delta.items()) if v},
        "seconds": time.monotonic() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=10, help="multiply each attack's size (default 10)")
    ap.add_argument("--db", default="", help="database URL (default: SQLite in a temporary folder)")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-integrity-"))
    broker = Mosquitto(workdir=work / "mosquitto")
    broker.start()
    gw = GatewayProcess(work / "gw", broker.url, args.db).start()
    pub = Publisher(broker.port)
    n = args.scale
    day = datetime.fromisoformat(gw.client.get("/api/v1/offices/03390/kpis").json()["day"]).date()
    start = datetime.now(UTC) - timedelta(hours=1)
    try:
        for topic, payload in baseline(day, start):
            pub.raw(topic, payload)
        pub.flush()
        attacks = [
            forged_unregistered(day, start, 150 * n),
            repeated_ratings(day, start, 30 * n),
            foreign_office(day, start, 20 * n),
            farmed_visits(day, start, 20 * n),
            rating_burst(day, start, 6 * n),
            small_windows(day, start, n),
            poison(day, start, 10 * n),
        ]
        rows = [_run_attack(gw, pub, a) for a in attacks]
    finally:
        pub.close()
        gw.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    db = args.db or "SQLite"
    print(f"\nbench.integrity (scale {n}): issue 8's attacks against Mosquitto + gateway, {db}")
    print(f"{'attack':<40} {'sent':>7} {'moved':>6} {'flagged':>8}  recorded by")
    for r in rows:
        rec = ", ".join(f"{k}={v}" for k, v in r["recorded"].items())
        print(f"{r['attack']:<40} {r['sent']:>7} {r['moved']:>6} {r['flagged']:>8}  {rec}")
    print("moved = change of ratings counted + sentiment windows in the target office's public KPIs;"
          " must be 0 except flagged ratings (kept in office figures, out of staff figures).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
