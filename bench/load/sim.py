"""One load-simulator process: a slice of kiosks multiplexed over a few MQTT connections.

``python -m bench.load.sim PORT FIRST COUNT SECONDS HEALTH_S VISITS_PER_HOUR CONNS OUT``
Each kiosk: retained online status at start, health every HEALTH_S (QoS 0, staggered), and visits
as a Poisson process (issued, called, completed, a rating 70 % of the time; QoS 1 events).
Writes {"events": n, "health": n, "status": n} to OUT.
"""

from __future__ import annotations

import heapq
import json
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.codec import encode
from contract.topics import events_topic, health_topic, status_topic
from hil.harness.kiosk_sim import EventFactory


def main(
    port: int, first: int, count: int, seconds: float, health_s: float, vph: float, conns: int, out: str
) -> None:
    rng = random.Random(first)
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    clients = []
    sems = []
    for i in range(conns):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"load-{first}-{i}")
        c.max_inflight_messages_set(200)
        sem = threading.BoundedSemaphore(200)
        c.on_publish = lambda *_a, s=sem: s.release()
        c.connect("127.0.0.1", port, keepalive=60)
        c.loop_start()
        clients.append(c)
        sems.append(sem)
    kiosks = []
    for k in range(first, first + count):
        office = f"L{k // 3:05d}"
        kiosks.append(EventFactory(f"kl{k:05d}-q{k % 3 + 1}", office, k % 3 + 1))
    counts = {"events": 0, "health": 0, "status": 0}

    def pub(idx: int, topic: str, payload: bytes, qos: int, retain: bool = False) -> None:
        sems[idx % conns].acquire()
        info = clients[idx % conns].publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            sems[idx % conns].release()
            raise RuntimeError(f"publish rc={info.rc}")

    for i, f in enumerate(kiosks):
        pub(i, status_topic(f.office_code, f.device_id), encode(f.status()), 1, retain=True)
        counts["status"] += 1
    start = time.time()
    end = start + seconds
    heap: list[tuple[float, int, str]] = []
    for i in range(len(kiosks)):
        heapq.heappush(heap, (start + rng.uniform(0, health_s), i, "health"))
        heapq.heappush(heap, (start + rng.expovariate(vph / 3600), i, "visit"))
    ticket = [0] * len(kiosks)
    print("ready", flush=True)
    while heap:
        t, i, kind = heapq.heappop(heap)
        if t >= end:
            continue
        delay = t - time.time()
        if delay > 0:
            time.sleep(delay)
        f = kiosks[i]
        if kind == "health":
            h = f.health(outbox_depth=0, uptime_s=time.time() - start, interval_s=health_s)
            pub(i, health_topic(f.office_code, f.device_id), encode(h), 0)
            counts["health"] += 1
            heapq.heappush(heap, (t + health_s, i, "health"))
        else:
            ticket[i] += 1
            now = datetime.now(UTC)
            day = now.astimezone(tz).date()
            wait, service = rng.uniform(60, 1800), rng.uniform(60, 900)
            # stamped in the past: the gateway refuses events stamped ahead of its clock
            evs = f.visit(ticket[i], day, now - timedelta(seconds=wait + service), wait, service)
            if rng.random() < 0.7:
                evs.append(f.rating(ticket[i], day, rng.choice([1, 2, 3, 3]), now))
            for e in evs:
                pub(i, events_topic(e.office_code, e.device_id), encode(e), 1)
            counts["events"] += len(evs)
            heapq.heappush(heap, (t + rng.expovariate(vph / 3600), i, "visit"))
    for idx in range(conns):  # everything acknowledged
        for _ in range(200):
            sems[idx].acquire()
    for c in clients:
        c.disconnect()
        c.loop_stop()
    with open(out, "w") as fh:
        json.dump(counts, fh)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]), int(a[1]), int(a[2]), float(a[3]), float(a[4]), float(a[5]), int(a[6]), a[7])
