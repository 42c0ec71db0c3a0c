"""Fixtures for provisioning tests: a CA, a folder the mosquitto user can read, TLS MQTT clients."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from provisioning.ca import CA, init_ca
from tests.gateway.conftest import RunningGateway, gateway_settings


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    return init_ca(tmp_path / "ca")


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A folder under /tmp whose parents the 'mosquitto' user can traverse (pytest's tmp is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="motcua-prov-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class TlsClient:
    """A paho client with a certificate identity, recording what it receives.

    Observed with Mosquitto 2.0.11 + TLS identities: a denied QoS 1 publish is answered with PUBACK
    rc 135 and then the connection drops ("Bad socket read/write"), for MQTT 5 and 3.1.1 alike.
    """

    def __init__(self, port: int, cafile: Path, cert: Path, key: Path, client_id: str = "",
                 v5: bool = True) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()
        self.connect_rc: object = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
        self.client.tls_set(ca_certs=str(cafile), certfile=str(cert), keyfile=str(key))
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.disconnected = threading.Event()
        self.port = port

    def _on_connect(self, client, userdata, flags, rc, props=None) -> None:
        with self.cond:
            self.connect_rc = rc
            self.cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, rc, props=None) -> None:
        self.disconnected.set()

    def _on_message(self, client, userdata, msg) -> None:
        with self.cond:
            self.received.append((msg.topic, msg.payload))
            self.cond.notify_all()

    def connect(self, timeout: float = 20.0) -> bool:
        """True when CONNACK success arrives; False if the TLS handshake or CONNECT is refused."""
        try:
            self.client.connect("127.0.0.1", self.port, keepalive=30)
        except OSError:
            return False
        self.client.loop_start()
        with self.cond:
            self.cond.wait_for(lambda: self.connect_rc is not None or self.disconnected.is_set(), timeout)
        return self.connect_rc is not None and not self.connect_rc.is_failure

    def subscribe(self, topic: str, qos: int = 1) -> None:
        got = threading.Event()
        self.client.on_subscribe = lambda *a, **k: got.set()
        self.client.subscribe(topic, qos)
        assert got.wait(20), "no SUBACK"

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 20.0) -> bool:
        """Publish; True when acknowledged, False when the broker dropped the connection instead."""
        self.disconnected.clear()
        info = self.client.publish(topic, payload, qos=qos)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if info.is_published():
                return True
            if self.disconnected.is_set():
                return False
            time.sleep(0.01)
        raise TimeoutError(f"publish to {topic} neither acknowledged nor refused in {timeout}s")

    def wait_for(self, payload: bytes, timeout: float = 20.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: any(p == payload for _, p in self.received), timeout)

    def payloads(self) -> list[bytes]:
        with self.cond:
            return [p for _, p in self.received]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def gateway(mosquitto, tmp_path: Path) -> Iterator[RunningGateway]:
    """The real gateway (SQLite in tmp_path) on the test's Mosquitto."""
    gw = RunningGateway(gateway_settings(tmp_path, mosquitto.url)).start()
    try:
        yield gw
    finally:
        gw.stop()
