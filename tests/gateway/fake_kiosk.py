"""A fake kiosk process for fleet tests: Last Will, retained status, periodic health, commands.

``python -m tests.gateway.fake_kiosk --port P --device D --office O [--health-stop-after N]``
prints ``ready`` once online. Commands get a ``cmd.result`` event (and ``selftest.report`` for
``selftest``). Kill it with SIGKILL to exercise the Last Will.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.codec import decode, encode
from contract.payloads import CommandRequest, EventType, Status
from contract.topics import cmd_filter, events_topic, health_topic, status_topic
from tests.gateway.kiosk_sim import EventFactory


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--office", required=True)
    ap.add_argument("--counter", type=int, default=1)
    ap.add_argument("--health-interval", type=float, default=0.5)
    ap.add_argument(
        "--health-stop-after", type=int, default=0, help="stop health after N reports (0 = never)"
    )
    a = ap.parse_args()
    f = EventFactory(a.device, a.office, a.counter)
    will: Status = f.status("offline", "connection_lost")
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"kiosk-{a.device}")
    c.will_set(status_topic(a.office, a.device), encode(will), qos=1, retain=True)
    ready = threading.Event()

    def on_connect(cl, _u, _f, _rc, _p) -> None:
        cl.subscribe(cmd_filter(a.office, a.device), qos=1)
        cl.publish(status_topic(a.office, a.device), encode(f.status()), qos=1, retain=True)
        ready.set()

    def on_message(cl, _u, msg) -> None:
        cmd = decode(msg.topic, msg.payload).message
        assert isinstance(cmd, CommandRequest)
        if cmd.name.value == "selftest":
            rep = f.event(
                EventType.SELFTEST_REPORT,
                {
                    "passed": True,
                    "cmd_id": cmd.cmd_id,
                    "components": [
                        {"name": "printer", "ok": True, "detail": "ok"},
                        {"name": "camera", "ok": True, "detail": ""},
                    ],
                },
            )
            cl.publish(events_topic(a.office, a.device), encode(rep), qos=1)
        res = f.event(
            EventType.CMD_RESULT,
            {
                "cmd_id": cmd.cmd_id,
                "name": cmd.name.value,
                "ok": True,
                "message": f"done: {json.dumps(cmd.args)}",
                "details": {"n": 1},
            },
        )
        cl.publish(events_topic(a.office, a.device), encode(res), qos=1)

    c.on_connect = on_connect
    c.on_message = on_message
    c.connect("127.0.0.1", a.port, keepalive=10)
    c.loop_start()
    if not ready.wait(30):
        sys.exit("could not connect")
    print("ready", flush=True)
    n = 0
    while True:
        if not a.health_stop_after or n < a.health_stop_after:
            c.publish(health_topic(a.office, a.device), encode(f.health(outbox_depth=0)), qos=0)
            n += 1
        time.sleep(a.health_interval)


if __name__ == "__main__":
    main()
