"""Replay issue 8's attacks at volume against a real Mosquitto and a gateway process; print, per
attack: messages sent, how many moved a figure of the office it targets (must be 0 except flagged
rows, which are kept in office figures and left out of staff figures), and the counters that
recorded it (rejected by reason, quarantined, duplicate_rating, flags).

    .venv/bin/python -m bench.integrity [--scale 10] [--db URL]

"Moved a figure" = the change of (visits + rated + sentiment windows) in the target office's
public KPIs (``GET /api/v1/offices/{code}/kpis``) across the attack. Printed, not asserted (the
assertions are in tests/gateway/test_integrity_attacks.py).

Then ingest throughput with 0 % and 2 % poison (``seq = 2**70``): ``--events`` valid events from the
registered demo kiosks, published as fast as the broker acknowledges, timed until the gateway has
stored them all; the ratio of the two rates must stay above 0.8 (poison is refused by the contract
before it reaches a database transaction). bench/ingest measures capacity in depth.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.ingest.common import GatewayProcess
from hil.harness.attacks import (
    Attack,
    baseline,
    farmed_visits,
    foreign_office,
    forged_unregistered,
    overlapping_windows,
    poison,
    rate_ahead,
    rating_burst,
    repeated_ratings,
    restated_visits,
    small_windows,
)
from hil.harness.kiosk_sim import Publisher
from hil.harness.mosquitto import Mosquitto


def _moved(gw: GatewayProcess, office: str) -> int:
    d = gw.client.get(f"/api/v1/offices/{office}/kpis").json()
    return d["kpi"]["rated"] + len(d["sentiment_windows"])


def _counts(gw: GatewayProcess, office: str) -> dict[str, int]:
    st = gw.stats()
    out = {f"rejected:{k}": v for k, v in st["rejected"].items()}
    out.update(quarantined=st["quarantined"], duplicate_rating=st["duplicate_rating"])
    flags = gw.client.get(f"/api/v1/offices/{office}/flags").json()
    counts = flags["counts"]
    out.update({f"flagged:{k.split(':', 1)[1]}": v for k, v in counts.items() if k.startswith("rating:")})
    out.update({f"status:{k}": v for k, v in flags["ratings_by_status"].items() if k == "before_visit"})
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


def _stream(n: int, poison_share: float, tag: int, day: date) -> list[tuple[str, bytes]]:
    """n valid events (ticket.issued at the six demo counters), with a poison every 1/share-th."""
    import json

    from contract.codec import encode
    from contract.payloads import EventType
    from contract.topics import events_topic
    from hil.harness.kiosk_sim import EventFactory

    kiosks = [EventFactory(f"k{o}-q{c}", o, c) for o in ("03390", "03405") for c in (1, 2, 3)]
    for f in kiosks:
        f.seq = 1_000_000 * tag  # past the attacks' seqs: a run of its own
    out: list[tuple[str, bytes]] = []
    every = round(1 / poison_share) if poison_share else 0
    for i in range(n):
        f = kiosks[i % len(kiosks)]
        ticket = {**f.ticket(10_000 * tag + i // len(kiosks) + 1, day), "waiting_ahead": 0}
        ev = f.event(EventType.TICKET_ISSUED, ticket)
        topic = events_topic(f.office_code, f.device_id)
        out.append((topic, encode(ev)))
        if every and i % every == every - 1:
            bad = json.loads(encode(ev))
            bad.update(seq=2**70, event_id=f"00000000-0000-4000-8{tag:03d}-{i:012d}")
            out.append((topic, json.dumps(bad).encode()))
    return out


def _throughput(gw: GatewayProcess, pub: Publisher, n: int, share: float, tag: int, day: date) -> float:
    msgs = _stream(n, share, tag, day)
    stored0 = gw.stats()["accepted"]
    t0 = time.monotonic()
    for topic, payload in msgs:
        pub.raw(topic, payload)
    pub.flush()
    deadline = t0 + 600
    while gw.stats()["accepted"] - stored0 < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return n / (time.monotonic() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=10, help="multiply each attack's size (default 10)")
    ap.add_argument("--db", default="", help="database URL (default: SQLite in a temporary folder)")
    ap.add_argument("--events", type=int, default=5000, help="valid events per throughput run (0 = skip)")
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
            rate_ahead(day, start, 10 * n),
            restated_visits(day, start, 10 * n),
            overlapping_windows(day, start, n),
        ]
        rows = [_run_attack(gw, pub, a) for a in attacks]
        runs = ((1, 0.0), (2, 0.02)) if args.events else ()
        rates = [_throughput(gw, pub, args.events, share, tag, day) for tag, share in runs]
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
    if rates:
        print(f"\ningest, {args.events} valid events: 0 % poison {rates[0]:.0f} events/s, "
              f"2 % poison (seq = 2**70) {rates[1]:.0f} events/s, ratio {rates[1] / rates[0]:.2f} (> 0.8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
