"""Child processes of the ingest bench (own interpreters, so they do not share the GIL).

``python -m bench.ingest.procs sink PORT N OUT [NAME]``: a do-nothing QoS 1 subscriber; writes
first/last receive times to OUT when N messages arrived. ``NAME``: client id ``bench-sink-NAME``
with a persistent session, so messages published while it was away are delivered on connect
(``N`` = 0: subscribe, print ``ready`` and leave, i.e. only create the session).
``python -m bench.ingest.procs publish PORT N DEVICES OUT``: publishes N valid events (a realistic
mix) as fast as the broker acknowledges, at most 1,000 in flight; writes publish times to OUT.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.codec import encode
from contract.topics import SUBSCRIBE_ALL, events_topic
from hil.harness.kiosk_sim import EventFactory


def sink(port: int, n: int, out: str, persistent: str = "") -> None:
    times: list[float] = []
    done = threading.Event()
    if persistent:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-sink-{persistent}", clean_session=False
        )
    else:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sink")
    c.on_connect = lambda cl, *_a: cl.subscribe(SUBSCRIBE_ALL, qos=1)

    def on_subscribe(*_a: object) -> None:
        print("ready", flush=True)
        if n == 0:
            done.set()

    c.on_subscribe = on_subscribe

    cpu: list[float] = []

    def on_message(_c, _u, _m) -> None:
        t = time.time()
        if not times:
            times.append(t)
            cpu.append(time.process_time())
        times[1:] = [t]
        cpu[1:] = [time.process_time()]
        sink.count += 1  # type: ignore[attr-defined]
        if sink.count >= n:  # type: ignore[attr-defined]
            done.set()

    sink.count = 0  # type: ignore[attr-defined]
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.loop_start()
    done.wait()
    c.disconnect()
    c.loop_stop()
    if n == 0:
        return
    with open(out, "w") as f:
        json.dump(
            {"first": times[0], "last": times[-1], "count": sink.count, "cpu_s": cpu[-1] - cpu[0]},  # type: ignore[attr-defined]
            f,
        )


def events(n: int, devices: int) -> list[tuple[str, bytes]]:
    day = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    facts = [EventFactory(f"kb{d:04d}-q1", "03390", 1) for d in range(devices)]
    out: list[tuple[str, bytes]] = []
    no = 0
    now = datetime.now(UTC)
    while len(out) < n:
        no += 1
        for f in facts:
            evs = f.visit(no, day, now - timedelta(minutes=30), 300.0, 240.0)
            evs.append(f.rating(no, day, 2, now))
            out += [(events_topic(e.office_code, e.device_id), encode(e)) for e in evs]
    return out[:n]


def publish(port: int, n: int, devices: int, out: str) -> None:
    msgs = events(n, devices)
    sem = threading.BoundedSemaphore(1000)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
    c.max_inflight_messages_set(1000)
    c.on_publish = lambda *_a: sem.release()
    c.connect("127.0.0.1", port)
    c.loop_start()
    print("ready", flush=True)
    sys.stdin.readline()  # go
    times = []
    for topic, payload in msgs:
        sem.acquire()
        times.append(time.time())
        c.publish(topic, payload, qos=1)
    for _ in range(1000):
        sem.acquire()
    c.disconnect()
    c.loop_stop()
    with open(out, "w") as f:
        json.dump(times, f)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sink":
        sink(int(args[0]), int(args[1]), args[2], persistent=args[3] if len(args) > 3 else "")
    else:
        publish(int(args[0]), int(args[1]), int(args[2]), args[3])
