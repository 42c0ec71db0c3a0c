"""Kiosk figures, printed (not asserted): button press → MQTT publish latency, RSS, idle CPU.

    .venv/bin/python -m bench.kiosk.latency [--presses 100]

Starts a real Mosquitto and the real kiosk process (simulated GPIO), presses "ticket" over the sim
API and times each press from the HTTP request to the event's arrival at a subscriber.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from hil.harness.kiosk_proc import KioskProc, write_config
from hil.harness.mosquitto import Mosquitto


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--presses", type=int, default=100)
    ap.add_argument("--idle-s", type=float, default=10.0)
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-kiosk-"))
    broker = Mosquitto(workdir=work / "mosq").start()
    arrived: dict[str, float] = {}
    lock = threading.Lock()

    def on_message(c, u, msg) -> None:
        t = time.perf_counter()
        with lock:
            arrived.setdefault(json.loads(msg.payload)["event_id"], t)

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("motcua/v1/+/+/events", qos=1)
    sub.loop_start()
    # min_gap_ms 0: the human-pace rule would otherwise add its wait to the measured press latency
    cfg = write_config(work / "k.toml", device_id="kiosk-bench", buttons={"min_gap_ms": 0})
    k = KioskProc(cfg, broker.url, work / "data").start()
    try:
        proc = psutil.Process(k.proc.pid)
        lat: list[float] = []
        with httpx.Client() as http:
            for i in range(a.presses):
                button = "ticket" if i % 2 == 0 else "next"
                t0 = time.perf_counter()
                out = http.post(f"{k.base}/api/sim/press/{button}", timeout=30).json()
                t_http = time.perf_counter()
                ids = out.get("event_ids", [])
                end = time.monotonic() + 10
                while time.monotonic() < end:
                    with lock:
                        if all(e in arrived for e in ids):
                            break
                    time.sleep(0.0005)
                with lock:
                    if ids and all(e in arrived for e in ids):
                        lat.append(max(arrived[e] for e in ids) - t0)
                if i == 0:
                    print(f"first press (cold: printer/fonts load) {1000 * (t_http - t0):.1f} ms HTTP")
        q = statistics.quantiles(lat, n=20)
        print(
            f"press → MQTT delivery ({len(lat)} presses, ticket/next alternating): "
            f"p50 {1000 * statistics.median(lat):.1f} ms, p95 {1000 * q[18]:.1f} ms, "
            f"max {1000 * max(lat):.1f} ms"
        )
        time.sleep(1)
        rss = proc.memory_info().rss / 1e6
        c0 = proc.cpu_times()
        time.sleep(a.idle_s)
        c1 = proc.cpu_times()
        idle = 100 * ((c1.user + c1.system) - (c0.user + c0.system)) / a.idle_s
        print(f"kiosk RSS {rss:.1f} MB; idle CPU {idle:.2f} % of one core over {a.idle_s:.0f} s")
    finally:
        k.terminate()
        sub.loop_stop()
        broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
