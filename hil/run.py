"""Run the kiosk scenarios against a real Pi (a technician presses the real buttons) or simulated
hardware (CI: the kiosk's sim API presses the mock pins). Verdicts come from the MQTT broker.

    # CI / laptop: start Mosquitto and a simulated kiosk here, run everything automatically
    python -m hil.run --local
    # A real kiosk on the bench (run from a laptop on the same network):
    python -m hil.run --kiosk http://192.168.1.50:8101 --broker mqtt://192.168.1.10:1883 \\
        --office LC-03390 --device kiosk-demo-01 --manual

Scenarios: S1 visit (ticket → next → rating, events in order with sane durations); S2 officer
buttons (recall, no-show); S3 lowest rating with reason; S4 power cut (manual: pull the plug; local:
kill -9) → no number reused, acknowledged events delivered; S5 network cut (manual: unplug the
Ethernet / stop the broker; local: broker stopped) → everything arrives in seq order.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hil.verdict import Verdict


class Broker:
    def __init__(self, url: str, office: str, device: str, tls: dict[str, str] | None = None) -> None:
        """``tls``: {"ca_certs", "certfile", "keyfile"} for an mqtts:// broker with client certificates."""
        from contract.mqtt_url import parse_broker_url, tls_context

        address = parse_broker_url(url)
        self.events: list[dict] = []
        self.raw: list[bytes] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"hil-{uuid.uuid4().hex[:8]}", clean_session=False
        )
        self.c.on_connect = lambda c, *a: c.subscribe(f"motcua/v1/{office}/{device}/#", qos=1)
        self.c.on_message = self._msg
        self.c.reconnect_delay_set(0.2, 2)
        if tls:
            self.c.tls_set_context(tls_context(tls.get("ca_certs"), tls.get("certfile"), tls.get("keyfile")))
        self.c.connect(address.host, address.port)
        self.c.loop_start()

    def _msg(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        if m.topic.endswith("/events"):
            with self.lock:
                self.raw.append(bytes(m.payload))
                self.events.append(json.loads(m.payload))

    def wait(self, pred, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if pred(list(self.events)):
                    return
            time.sleep(0.1)
        raise AssertionError(f"timed out: {what}")

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class Rig:
    """How buttons get pressed: the sim API (automatic) or a technician (manual prompts)."""

    def __init__(self, kiosk: str, manual: bool) -> None:
        self.kiosk, self.manual = kiosk.rstrip("/"), manual
        self.http = httpx.Client(timeout=30)

    def press(self, button: str) -> dict:
        if self.manual:
            input(f"  → Bấm nút / press the '{button}' button on the kiosk, then Enter ")
            return {}
        r = self.http.post(f"{self.kiosk}/api/sim/press/{button}")
        r.raise_for_status()
        return r.json()

    def reason(self, code: str) -> None:
        if self.manual:
            self.ask("Chạm một lý do trên màn hình / touch a reason on the display")
        else:
            self.http.post(f"{self.kiosk}/api/rating/reason/{code}").raise_for_status()

    def ask(self, text: str) -> None:
        if self.manual:
            input(f"  → {text}, then Enter ")


def _new(broker: Broker, since: int) -> list[dict]:
    with broker.lock:
        return broker.events[since:]


def scenario_visit(rig: Rig, b: Broker) -> str:
    n = len(b.events)
    for button in ("ticket", "next", "next", "rate_3"):  # the second next completes: rating prompt
        rig.press(button)
    b.wait(
        lambda ev: (
            [e["type"] for e in ev[n:] if e["type"] != "ticket.called"][-2:]
            == ["service.completed", "rating.submitted"]
        ),
        60,
        "visit events",
    )
    new = _new(b, n)
    seqs = [e["seq"] for e in new]
    assert seqs == sorted(seqs), f"seq out of order: {seqs}"
    done = next(e for e in new if e["type"] == "service.completed")["data"]
    assert done["service_s"] is None or 0 <= done["service_s"] < 3600
    return f"{len(new)} events, service_s={done['service_s']}"


def scenario_officer(rig: Rig, b: Broker) -> str:
    n = len(b.events)
    for button in ("ticket", "next", "recall", "no_show"):
        rig.press(button)
    b.wait(
        lambda ev: {"ticket.recalled", "ticket.no_show"} <= {e["type"] for e in ev[n:]}, 60, "recall/no-show"
    )
    return "recall and no-show seen"


def scenario_reason(rig: Rig, b: Broker) -> str:
    n = len(b.events)
    for button in ("ticket", "next", "next", "rate_1"):
        rig.press(button)
    rig.reason("waited_too_long")
    b.wait(
        lambda ev: any(e["type"] == "rating.submitted" and e["data"]["level"] == 1 for e in ev[n:]),
        90,
        "lowest rating",
    )
    r = next(e for e in _new(b, n) if e["type"] == "rating.submitted")
    return f"reason={r['data']['reason']}"


def scenario_power_cut(rig: Rig, b: Broker, restart) -> str:
    acked = []
    for _ in range(3):
        out = rig.press("ticket")
        acked += out.get("event_ids", [])
    restart("Rút điện kiosk rồi cắm lại / pull the kiosk's power, plug it back, wait for the display")
    b.wait(lambda ev: set(acked) <= {e["event_id"] for e in ev}, 180, "acknowledged events after power cut")
    with b.lock:
        issued = {}
        for e in b.events:
            if e["type"] == "ticket.issued":
                issued.setdefault((e["data"]["service_day"], e["data"]["ticket_no"]), set()).add(
                    e["event_id"]
                )
    dup = [k for k, v in issued.items() if len(v) > 1]
    assert not dup, f"ticket numbers issued twice: {dup}"
    return f"{len(issued)} distinct ticket numbers, none reused"


def scenario_network_cut(rig: Rig, b: Broker, cut, heal) -> str:
    cut()
    acked = []
    for button in ("ticket", "ticket", "next", "next", "rate_2"):
        acked += rig.press(button).get("event_ids", [])
    heal()
    b.wait(lambda ev: set(acked) <= {e["event_id"] for e in ev}, 180, "events after network cut")
    with b.lock:
        order, seen = [], set()
        for e in b.events:
            if e["event_id"] not in seen:
                seen.add(e["event_id"])
                order.append(e["seq"])
    assert order == sorted(order), "events arrived out of seq order"
    return f"{len(order)} events in seq order"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--local", action="store_true", help="start Mosquitto + a simulated kiosk here (CI)")
    ap.add_argument("--kiosk", help="kiosk base URL, e.g. http://192.168.1.50:8101")
    ap.add_argument("--broker", help="broker URL the kiosk publishes to")
    ap.add_argument("--office", default="LC-TEST")
    ap.add_argument("--device", default="kiosk-hil")
    ap.add_argument("--manual", action="store_true", help="a technician presses the real buttons")
    a = ap.parse_args(argv)
    procs: dict[str, Any] = {}
    work = Path(".")
    if a.local:
        from hil.harness.kiosk_proc import KioskProc, write_config
        from hil.harness.mosquitto import Mosquitto

        work = Path(tempfile.mkdtemp(prefix="hil-"))
        procs["broker"] = Mosquitto().start()
        cfg = write_config(work / "k.toml", device_id=a.device, office=a.office)
        procs["kiosk"] = KioskProc(cfg, procs["broker"].url, work / "data").start()
        a.kiosk, a.broker = procs["kiosk"].base, procs["broker"].url
    elif not (a.kiosk and a.broker):
        ap.error("give --local, or --kiosk and --broker")
    b = Broker(a.broker, a.office, a.device)
    rig = Rig(a.kiosk, a.manual)

    def restart(prompt: str) -> None:
        if a.local:
            procs["kiosk"].kill9()
            procs["kiosk"].start()
        else:
            rig.ask(prompt)

    def cut() -> None:
        procs["broker"].stop() if a.local else rig.ask("Rút cáp mạng / unplug the network cable")

    def heal() -> None:
        procs["broker"].start() if a.local else rig.ask("Cắm lại cáp mạng / plug the network back")

    scenarios = [
        ("S1 visit", lambda: scenario_visit(rig, b)),
        ("S2 officer", lambda: scenario_officer(rig, b)),
        ("S3 reason", lambda: scenario_reason(rig, b)),
        ("S4 power cut", lambda: scenario_power_cut(rig, b, restart)),
        ("S5 network cut", lambda: scenario_network_cut(rig, b, cut, heal)),
    ]
    verdict = Verdict("HIL")
    try:
        for name, fn in scenarios:
            verdict.run(name, fn)
    finally:
        b.close()
        if "kiosk" in procs:
            procs["kiosk"].terminate()
        if "broker" in procs:
            procs["broker"].stop()
            shutil.rmtree(procs["broker"].workdir, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
    print(verdict.table(), flush=True)
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
