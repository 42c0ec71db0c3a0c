"""Fleet health with real processes: Last Will, missing health, commands round trip, webhook alerts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def kiosks() -> Iterator[Any]:
    procs: list[subprocess.Popen] = []

    def start(port: int, device: str, office: str, *extra: str) -> subprocess.Popen:
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.gateway.fake_kiosk",
                "--port",
                str(port),
                "--device",
                device,
                "--office",
                office,
                *extra,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _device(gw: Any, device_id: str) -> dict[str, Any] | None:
    return next((d for d in gw.ops.get("/api/v1/fleet").json() if d["device_id"] == device_id), None)


def test_offline_by_last_will_when_kiosk_is_killed(mosquitto, gateway_factory, kiosks) -> None:
    gw = gateway_factory(mosquitto.url)
    p = kiosks(mosquitto.port, "k03390-q1", "03390")
    d = wait_for(
        lambda: (x := _device(gw, "k03390-q1")) and x["state"] == "online" and x["cpu_temp_c"] and x,
        what="kiosk online with health",
    )
    assert d["sw_version"] == "1.0.0" and d["model_versions"] == {"expr": "fer-mx-1"}
    online_since = d["since"]
    p.send_signal(signal.SIGKILL)
    p.wait()
    d = wait_for(
        lambda: (x := _device(gw, "k03390-q1")) and x["state"] == "offline" and x,
        what="offline via Last Will",
    )
    assert d["offline_reason"] == "connection_lost"
    assert d["since"] > online_since
    office = gw.public.get("/api/v1/offices/03390").json()
    assert office["devices_online"] == 0 and office["devices_total"] == 3


def test_offline_when_health_stops(mosquitto, gateway_factory, kiosks) -> None:
    gw = gateway_factory(mosquitto.url, alerts={"offline_after_s": 3.0})
    kiosks(mosquitto.port, "k03405-q2", "03405", "--health-stop-after", "10")
    wait_for(lambda: (x := _device(gw, "k03405-q2")) and x["state"] == "online", what="online")
    d = wait_for(
        lambda: (x := _device(gw, "k03405-q2")) and x["state"] == "offline" and x,
        what="offline after health stopped",
    )
    assert d["offline_reason"] == "no_health"
    assert d["offline_detail"].startswith("no health for")
    alerts = gw.ops.get("/api/v1/alerts").json()
    assert [a["kind"] for a in alerts if a["device_id"] == "k03405-q2"] == ["offline"]


def test_command_round_trip(mosquitto, gateway_factory, kiosks) -> None:
    gw = gateway_factory(mosquitto.url)
    kiosks(mosquitto.port, "k03390-q2", "03390", "--counter", "2")
    wait_for(lambda: (x := _device(gw, "k03390-q2")) and x["state"] == "online", what="online")
    r = gw.ops.post("/api/v1/devices/k03390-q2/commands", json={"name": "reload_config", "args": {"x": 1}})
    assert r.status_code == 202, r.text
    cmd = r.json()
    assert cmd["status"] in ("sent", "ok") and cmd["issued_by"] == "ops"  # the kiosk may answer at once
    done = wait_for(
        lambda: (x := gw.ops.get(f"/api/v1/commands/{cmd['cmd_id']}").json())["status"] != "sent" and x,
        what="command result",
    )
    assert done["status"] == "ok"
    assert done["result"]["message"] == 'done: {"x": 1}' and done["result"]["type"] == "cmd.result"

    r = gw.ops.post("/api/v1/devices/k03390-q2/commands", json={"name": "selftest"})
    cmd = r.json()
    wait_for(
        lambda: gw.ops.get(f"/api/v1/commands/{cmd['cmd_id']}").json()["status"] == "ok", what="selftest"
    )
    d = wait_for(lambda: (x := _device(gw, "k03390-q2")) and x["last_selftest"] and x, what="selftest stored")
    assert d["last_selftest"]["passed"] is True
    assert [c["name"] for c in d["last_selftest"]["components"]] == ["printer", "camera"]

    assert gw.ops.post("/api/v1/devices/k03390-q2/commands", json={"name": "format_disk"}).status_code == 422
    assert gw.ops.post("/api/v1/devices/nope/commands", json={"name": "selftest"}).status_code == 404
    assert gw.public.post("/api/v1/devices/k03390-q2/commands", json={"name": "selftest"}).status_code == 401
    # the gateway sees its own commands through motcua/v1/#: skipped, never a handler error
    stats = gw.ops.get("/api/v1/stats/ingest").json()
    assert stats["rejected"] == {}, stats
    assert stats["process"]["process"]["commands_seen"] >= 2, stats


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_a: Any) -> None:
        pass


def test_webhook_alerts_deduplicated(mosquitto, gateway_factory, port) -> None:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", port), _Receiver)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        gw = gateway_factory(
            mosquitto.url, alerts={"webhook_url": f"http://127.0.0.1:{port}/hook", "outbox_growing_checks": 3}
        )
        f = EventFactory("k03405-q1", "03405", 1)
        pub = Publisher(mosquitto.port)
        pub.status(f.status())
        for temp in (85.0, 86.0, 87.0):  # persists: one alert, not three
            pub.health(f.health(cpu_temp_c=temp))
        pub.health(f.health(clock_synced=False))
        for depth in (1, 5, 9, 20):
            pub.health(f.health(outbox_depth=depth))
        pub.health(f.health(cpu_temp_c=50.0, outbox_depth=0))
        pub.status(f.status("offline", "shutdown"))
        pub.flush()
        pub.close()

        def kinds(state: str) -> list[str]:
            return sorted(a["kind"] for a in _Receiver.received if a["state"] == state)

        wait_for(
            lambda: (
                kinds("open") == ["clock_unsynced", "offline", "outbox_growing", "temp_high"]
                and kinds("resolved") == ["clock_unsynced", "outbox_growing", "temp_high"]
            ),
            what=f"webhook alerts (got {_Receiver.received})",
        )
        offline = next(a for a in _Receiver.received if a["kind"] == "offline")
        assert offline["device_id"] == "k03405-q1" and "shutdown" in offline["message"]
        open_now = wait_for(
            lambda: (x := gw.ops.get("/api/v1/alerts").json()) and x[0]["delivered"] and x,
            what="delivery recorded",
        )
        assert [a["kind"] for a in open_now] == ["offline"]
    finally:
        server.shutdown()
