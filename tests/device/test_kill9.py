"""Power-cut safety: kill -9 the kiosk at random moments, >= 50 times, against a real Mosquitto.

Checks: no ticket number is issued twice in a service day; every event acknowledged to the user
(HTTP press answered, ticket file printed) reaches the broker after restart; a resent event has the
same event_id and a byte-identical payload.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict

import pytest

from tests.device.kiosk_proc import KioskProc, Watcher, write_config

ROUNDS = 50
BUTTONS = ["ticket", "ticket", "ticket", "next", "rate_3", "rate_2", "rate_1", "no_show", "recall"]


@pytest.mark.slow
def test_kill9_never_reuses_numbers_or_loses_acknowledged_events(tmp_path, mosquitto):
    rng = random.Random(20261130)
    watcher = Watcher(mosquitto.port)
    cfg = write_config(tmp_path / "k.toml", device_id="kiosk-kill")
    data = tmp_path / "data"
    acked: set[str] = set()
    printed: set[str] = set()
    try:
        for _ in range(ROUNDS):
            k = KioskProc(cfg, mosquitto.url, data).start()  # a fresh free port each round
            stop = threading.Event()

            done = [0]

            def presser(k: KioskProc = k, stop: threading.Event = stop, done: list[int] = done) -> None:
                while not stop.is_set():
                    try:
                        out = k.press(rng.choice(BUTTONS), timeout=10)
                    except Exception:
                        return  # killed mid-request: that press was never acknowledged
                    if out.get("ok"):
                        acked.update(out["event_ids"])
                    done[0] += 1

            t = threading.Thread(target=presser, daemon=True)
            t.start()
            # Kill after a random number of answered presses, then a random extra delay, so the kill
            # lands at a random point of a press whatever the machine's speed.
            target, end = rng.randint(0, 4), time.monotonic() + 60
            while done[0] < target and time.monotonic() < end and t.is_alive():
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.15))
            k.kill9()
            stop.set()
            t.join(20)
            printed.update(p.name for p in (data / "prints").glob("*.bin"))
        # Final start: the outbox drains.
        k = KioskProc(cfg, mosquitto.url, data).start()
        try:
            watcher.wait_for(lambda: acked <= {e["event_id"] for e in watcher.events()}, 120, "acked events")
            watcher.wait_for(lambda: k.status()["outbox_depth"] == 0, 60, "outbox drained")
        finally:
            k.terminate()
        by_id: dict[str, set[bytes]] = defaultdict(set)
        for raw in watcher.raw_events():
            by_id[json.loads(raw)["event_id"]].add(raw)
        assert all(len(v) == 1 for v in by_id.values()), "a resent event differed from the original"
        events = [json.loads(next(iter(v))) for v in by_id.values()]
        issued = [e for e in events if e["type"] == "ticket.issued"]
        keys = [(e["data"]["service_day"], e["data"]["ticket_no"]) for e in issued]
        assert len(keys) == len(set(keys)), "a ticket number was issued twice"
        assert issued and acked
        # Every printed ticket's event is on the broker.
        on_broker = {f"{d}-{e['data']['label']}.bin" for e in issued for d in [e["data"]["service_day"]]}
        assert printed <= on_broker
        seqs = sorted(e["seq"] for e in events)
        assert len(seqs) == len(set(seqs)), "a seq was used twice"
        started = [e for e in events if e["type"] == "device.started"]
        assert len(started) == ROUNDS + 1 and all(e["data"]["restart"] == "process" for e in started[1:])
        print(f"\nkill -9 x{ROUNDS}: {len(events)} events, {len(issued)} tickets, {len(acked)} acknowledged, "
              f"{len(printed)} printed, {len(watcher.raw_events()) - len(events)} duplicates delivered")
    finally:
        watcher.close()
