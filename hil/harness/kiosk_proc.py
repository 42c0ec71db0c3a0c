"""Run the real kiosk as a subprocess (``python -m device.cli run --simulate``) and watch the broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import tomli_w
from paho.mqtt.enums import CallbackAPIVersion

from hil.harness.mosquitto import free_port
from hil.harness.wait import wait_for

REPO = Path(__file__).resolve().parents[2]


def stop_process(proc: subprocess.Popen | None, timeout: float = 30) -> int | None:
    """SIGTERM (a clean stop, as systemd does), SIGKILL after ``timeout``; the exit code."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode if proc is not None else None
EXAMPLE = REPO / "device" / "kiosk.example.toml"


def example_table() -> dict:
    """The example kiosk config as a TOML table, to be changed by a test or bench."""
    return tomllib.loads(EXAMPLE.read_text())


def write_config(path: Path, device_id: str = "kiosk-t1", office: str = "LC-TEST", **sections: dict) -> Path:
    data = example_table()
    data["device"].update(id=device_id, office_code=office)
    data["health"] = {"interval_s": 1.0}
    data["clock"] = {"synced_override": True}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path.write_text(tomli_w.dumps(data))
    return path


class KioskProc:
    def __init__(self, config: Path, broker_url: str, data_dir: Path, http_port: int | None = None) -> None:
        self.config, self.broker_url, self.data_dir = config, broker_url, data_dir
        self.http_port = http_port or free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"{data_dir.name}.log"

    def start(self, timeout: float = 120) -> KioskProc:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "device.cli",
                    "run",
                    "--simulate",
                    "--config",
                    str(self.config),
                    "--broker",
                    self.broker_url,
                    "--data-dir",
                    str(self.data_dir),
                    "--http-port",
                    str(self.http_port),
                ],
                cwd=REPO,
                stdout=logf,
                stderr=subprocess.STDOUT,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kiosk exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"kiosk did not come up: {self.log.read_text()[-2000:]}")

    def press(self, button: str, timeout: float = 30) -> dict[str, Any]:
        r = httpx.post(f"{self.base}/api/sim/press/{button}", timeout=timeout)
        return {"status": r.status_code} | r.json()

    def status(self) -> dict[str, Any]:
        return httpx.get(f"{self.base}/api/status", timeout=10).json()

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def terminate(self, timeout: float = 30) -> int | None:
        return stop_process(self.proc, timeout)


class Watcher:
    """A paho subscriber with a persistent session: collects every message on ``motcua/v1/#``."""

    def __init__(self, url_port: int, topic: str = "motcua/v1/#") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}", clean_session=False
        )
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect("127.0.0.1", url_port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(30):
            raise TimeoutError("watcher did not subscribe")

    def _on_message(self, c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/events")]

    def raw_events(self) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith("/events")]

    def of_kind(self, kind: str) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith(f"/{kind}")]

    def wait_for(self, pred, timeout: float = 60, what: str = "condition") -> None:
        wait_for(pred, timeout, what, interval=0.05)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
