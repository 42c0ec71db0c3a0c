"""Nothing lost between the broker and the gateway, with the production broker config.

A fleet of six kiosk identities (their own certificates, mutual TLS, the registry ACL, the
generated queue/in-flight/persistence limits: ``write_broker_config``) publishes a district's day,
>= 50,000 events, while the gateway is stopped, then slowed, then restarted twice, and the broker
itself is restarted (SIGTERM; persistence on) with a backlog queued for the gateway. Every event
whose PUBACK the publisher received is stored exactly once: the set of acknowledged event ids
equals the set of stored ones, and the visits derived from them are counted once.
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import gateway.ingest
from contract.codec import encode
from contract.topics import events_topic
from provisioning.ca import GATEWAY_CN, init_ca
from provisioning.mosquitto_conf import write_broker_config
from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.slow

KIOSKS = (("03390", 1), ("03390", 2), ("03390", 3), ("03405", 1), ("03405", 2), ("03405", 3))
PHASES = (20_000, 16_000, 16_000)  # stopped, slowed (+ restart, broker restart), restarted again
IN_FLIGHT = 500  # per kiosk connection; paho loses messages past 65,535 in flight (PLATFORM-NOTES)


class Kiosk:
    """One device identity over mutual TLS; records the event ids the broker acknowledged."""

    def __init__(self, port: int, cafile: Path, cert: Path, key: Path, device_id: str) -> None:
        self.device_id = device_id
        self.acked: set[str] = set()
        self._mids: dict[int, str] = {}
        self._early: dict[int, bool] = {}
        self._lock = threading.Lock()
        self._sem = threading.BoundedSemaphore(IN_FLIGHT)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id)
        ctx = ssl.create_default_context(cafile=str(cafile))
        ctx.load_cert_chain(str(cert), str(key))
        self.client.tls_set_context(ctx)
        self.client.max_inflight_messages_set(IN_FLIGHT)
        self.client.on_publish = self._on_publish
        self.connected = threading.Event()
        self.client.on_connect = lambda *_a: self.connected.set()
        self.client.on_disconnect = lambda *_a: self.connected.clear()
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(30), f"{device_id} could not connect"

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        # paho calls this holding its own message lock: never call paho while holding ours
        with self._lock:
            event_id = self._mids.pop(mid, None)
            if event_id is None:  # PUBACK before publish() returned its mid
                self._early[mid] = not rc.is_failure
            elif not rc.is_failure:
                self.acked.add(event_id)
        self._sem.release()

    def publish(self, topic: str, event_id: str, payload: bytes) -> None:
        self._sem.acquire()
        info = self.client.publish(topic, payload, qos=1)
        with self._lock:
            ok = self._early.pop(info.mid, None)
            if ok is None:
                self._mids[info.mid] = event_id
            elif ok:
                self.acked.add(event_id)

    def flush(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._mids:
                    return
            assert time.monotonic() < deadline, f"{self.device_id}: {len(self._mids)} never acknowledged"
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """CA, device and gateway identities, the generated broker config, real Mosquitto."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="motcua-loss-"))  # the mosquitto user must read it
    os.chmod(root, 0o755)
    ca = init_ca(tmp_path / "ca")
    ids = root / "ids"
    ids.mkdir()
    os.chmod(ids, 0o755)
    devices = []
    for office, counter in KIOSKS:
        d = ca.issue_device(office, counter)
        (ids / f"{d.device_id}.crt").write_bytes(d.cert_pem)
        (ids / f"{d.device_id}.key").write_bytes(d.key_pem)
        devices.append((d.device_id, office, counter))
    gw_key, gw_cert = ca.issue_service(GATEWAY_CN)
    (ids / "gw.crt").write_bytes(gw_cert)
    (ids / "gw.key").write_bytes(gw_key)
    port = free_port()
    files = write_broker_config(ca, root / "broker", port=port, bind="127.0.0.1")  # registry ACL
    broker = Mosquitto(port=port, workdir=root / "run", listener_conf=files.listener_conf)
    assert "max_queued_messages 1000000" in broker.conf.read_text()  # the production sizing
    broker.start()
    try:
        yield {"broker": broker, "files": files, "ids": ids, "devices": devices, "port": port}
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


def _events(factories: dict[str, EventFactory], n: int, day: Any, start_no: int) -> Iterator[tuple]:
    """n events, round-robin over the kiosks: visits (issued, called, completed; the last may be cut)."""
    t0 = datetime.now(UTC) - timedelta(hours=8)
    made = 0
    no = start_no
    while made < n:
        no += 1
        for dev, f in factories.items():
            for ev in f.visit(no, day, t0 + timedelta(seconds=no), 60.0, 120.0):
                if made == n:
                    return
                made += 1
                yield dev, events_topic(ev.office_code, dev), ev.event_id, encode(ev)


def _slow_writer(delay_s: float) -> Callable[..., Any]:
    real = gateway.ingest.apply_batch

    def slowed(*a: Any, **kw: Any) -> Any:
        time.sleep(delay_s)  # a gateway that cannot keep up (slow disk, busy host)
        return real(*a, **kw)

    return slowed


def test_acknowledged_events_stored_exactly_once(world, gateway_factory, monkeypatch) -> None:
    ids, port = world["ids"], world["port"]
    tls = {
        "ca_file": str(world["files"].cafile),
        "cert_file": str(ids / "gw.crt"),
        "key_file": str(ids / "gw.key"),
    }
    url = f"mqtts://127.0.0.1:{port}"

    def start_gateway(**database: Any) -> Any:
        return gateway_factory(url, broker=tls, database=database or {})

    gw = start_gateway()
    for dev, office, counter in world["devices"]:
        r = gw.admin.post(
            "/api/v1/devices", json={"device_id": dev, "office_code": office, "counter": counter}
        )
        assert r.status_code in (200, 201), r.text
    day = gw.app.state.kpi.today()
    gw.stop()  # its persistent session stays: the broker queues for it

    kiosks = {
        d: Kiosk(port, world["files"].cafile, ids / f"{d}.crt", ids / f"{d}.key", d)
        for d, _o, _c in world["devices"]
    }

    factories = {d: EventFactory(d, office, counter) for d, office, counter in world["devices"]}

    def publish(n: int, start_no: int) -> None:
        for dev, topic, event_id, payload in _events(factories, n, day, start_no):
            kiosks[dev].publish(topic, event_id, payload)
        for k in kiosks.values():
            k.flush()

    # 1. gateway stopped: a day's burst queues at the broker
    publish(PHASES[0], 0)
    # 2. gateway slowed (small batches, each delayed) while more arrives; restarted once mid-way
    monkeypatch.setattr(gateway.ingest, "apply_batch", _slow_writer(0.02))
    gw = start_gateway(batch_size=50)
    publish(PHASES[1] // 2, 2_000)
    gw.stop()
    gw = start_gateway(batch_size=50)
    publish(PHASES[1] - PHASES[1] // 2, 3_000)
    # the broker restarts with a backlog queued for the gateway (persistence saves it at SIGTERM)
    stored_before = gw.stats()["stored_events"]
    world["broker"].stop()
    world["broker"].start()
    for k in kiosks.values():
        assert k.connected.wait(60), f"{k.device_id} did not reconnect"
    # 3. restarted again, at full speed, while the rest arrives
    gw.stop()
    monkeypatch.undo()
    gw = start_gateway()
    publish(PHASES[2], 4_000)
    for k in kiosks.values():
        k.close()

    acked = set().union(*(k.acked for k in kiosks.values()))
    total = sum(PHASES)
    assert len(acked) == total, f"{total - len(acked)} publishes never acknowledged"
    assert stored_before < PHASES[0] + PHASES[1], "the broker restart happened with nothing queued"
    wait_for(lambda: gw.stats()["stored_events"] >= total, timeout=300, what="every event stored")
    store = gw.app.state.store
    with store.engine.connect() as conn:
        stored = [r[0] for r in conn.exec_driver_sql("SELECT event_id FROM events")]
        visits = conn.exec_driver_sql("SELECT count(*) FROM visits WHERE issued_at IS NOT NULL").scalar()
        issued = conn.exec_driver_sql("SELECT count(*) FROM events WHERE type = 'ticket.issued'").scalar()
    assert len(stored) == len(set(stored)) == total  # exactly once
    assert set(stored) == acked  # every acknowledged event, nothing else
    assert visits == issued > total // 3 - len(KIOSKS) * 4  # derived rows counted once
    s = gw.stats()
    assert s["rejected"] == {}, s["rejected"]
    assert "Outgoing messages are being dropped" not in world["broker"].log_text()
