"""A broker that refuses the kiosk's events (its identity not yet in the ACL): none is lost.

Mosquitto acknowledges a publish its ACL denies; under MQTT 3.1.1 that PUBACK looks like a delivery
and the kiosk used to delete every event it sent (PLATFORM-NOTES, "A publish the ACL denies"). Under
MQTT 5 the PUBACK carries "Not authorized": the real kiosk process must keep every event in its
outbox, say so, back off, and deliver them all, once and in ``seq`` order, when the operator adds
its identity to the ACL and reloads the broker (SIGHUP).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.mqtt_url import tls_context
from contract.payloads import EventType
from device.clock import FakeClock
from device.config import BrokerConfig
from device.events import EventBuilder
from device.publisher import Publisher
from device.store import Store
from provisioning.ca import GATEWAY_CN, init_ca
from provisioning.mosquitto_conf import write_broker_config
from tests.device.kiosk_proc import KioskProc, Watcher, write_config
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.wait import wait_for

DEVICE, OFFICE, PASSWORD = "kiosk-t1", "LC-TEST", "s3cret-kiosk"
OFFICE_CODE = "03390"  # the CA issues devices for real office codes
TICKETS = 8
# Anonymous clients (the watcher, standing for the gateway) read everything; the kiosk's user may
# only read its commands: its events, status and health are denied.
ACL_DENIED = f"topic read motcua/v1/#\n\nuser {DEVICE}\ntopic read motcua/v1/{OFFICE}/{DEVICE}/cmd/#\n"
ACL_FIXED = "topic read motcua/v1/#\n\npattern readwrite motcua/v1/+/%u/#\n"


@pytest.fixture
def acl_broker():
    if not shutil.which("mosquitto_passwd"):
        pytest.fail("mosquitto_passwd missing: apt-get install -y mosquitto-clients")
    work = Path(tempfile.mkdtemp(prefix="motcua-acl-"))  # not tmp_path: Mosquitto may run as 'mosquitto'
    os.chmod(work, 0o777)
    pw, acl = work / "passwd", work / "acl"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), DEVICE, PASSWORD], check=True)
    acl.write_text(ACL_DENIED)
    for f in (pw, acl):
        os.chmod(f, 0o644)
    port = free_port()
    listener = f"listener {port} 127.0.0.1\nallow_anonymous true\npassword_file {pw}\nacl_file {acl}\n"
    broker = Mosquitto(port=port, workdir=work, listener_conf=listener).start()
    try:
        yield broker, acl
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def _denied_events(broker: Mosquitto) -> int:
    return sum("Denied PUBLISH" in line and "/events'" in line for line in broker.log_text().splitlines())


def _refused(status: dict) -> int:
    return int(status["refused"].get("broker_publish", 0))


@pytest.mark.slow  # a kiosk process, two ACLs and the retry backoff: about 15 s
def test_denied_events_stay_in_the_outbox_until_the_acl_is_fixed(tmp_path, acl_broker):
    broker, acl = acl_broker
    watcher = Watcher(broker.port)
    cfg = write_config(tmp_path / "k.toml", DEVICE, OFFICE, broker={"username": DEVICE, "password": PASSWORD})
    k = KioskProc(cfg, broker.url, tmp_path / "data").start()
    try:
        for _ in range(TICKETS):
            assert k.press("ticket")["ok"]
        wait_for(lambda: _denied_events(broker) > TICKETS, 90, "the broker denied every event once")
        start = time.monotonic()
        wait_for(lambda: time.monotonic() - start > 5, 30, "a few retry rounds")
        s = k.status()
        depth = s["outbox_depth"]
        assert depth >= TICKETS + 1, f"refused events left the outbox: {depth} kept of >= {TICKETS + 1}"
        assert _refused(s) >= depth, f"{_refused(s)} refusals counted for {depth} refused events"
        assert "broker refused publish: Not authorized" in (s["last_error"] or ""), s["last_error"]
        # Backoff, not a spin: from the first refusal (>= 1 s, doubling) only a few resend rounds fit.
        assert _refused(s) <= 6 * depth, f"{_refused(s)} refusals of {depth} events: no backoff"
        assert watcher.events() == [], "the broker delivered a denied event"

        acl.write_text(ACL_FIXED)
        broker.reload()  # SIGHUP: Mosquitto re-reads the ACL
        wait_for(lambda: k.status()["outbox_depth"] == 0, 120, "the outbox drained once the ACL allows")
        wait_for(lambda: len(watcher.events()) >= depth, 60, "every kept event delivered")
        events = watcher.events()
        assert [e["seq"] for e in events] == list(range(1, depth + 1)), "not once each, in seq order"
        assert len({e["event_id"] for e in events}) == depth
        assert sum(e["type"] == "ticket.issued" for e in events) == TICKETS
        assert "broker refused publish" not in (k.status()["last_error"] or ""), "still reported"
    finally:
        k.terminate()
        watcher.close()


@pytest.mark.slow  # TLS broker from the production config, retries: about 15 s
def test_kiosk_issued_after_the_broker_config_keeps_its_events(tmp_path):
    """Production set-up: the CA, the generated broker config (TLS, certificate CN as user name,
    ACL ``registry``), and a kiosk certificate issued *after* that config was written, so its identity
    is not yet in the ACL. The events stay (Mosquitto 2.0.11 answered "Not authorized" here; a drop
    would keep them too), then the operator reruns mosquitto-conf and reloads: all arrive, in order."""
    world = Path(tempfile.mkdtemp(prefix="motcua-acl-prov-"))  # traversable by user 'mosquitto'
    os.chmod(world, 0o755)
    ca = init_ca(tmp_path / "ca")
    port = free_port()
    files = write_broker_config(ca, world / "broker", port=port, bind="127.0.0.1", acl_mode="registry")
    broker = Mosquitto(port=port, workdir=world / "run", listener_conf=files.listener_conf).start()
    kiosk = ca.issue_device(OFFICE_CODE, 1)
    gw_key, gw_cert = ca.issue_service(GATEWAY_CN)
    ids = world / "ids"
    ids.mkdir()
    for name, key, cert in (("kiosk", kiosk.key_pem, kiosk.cert_pem), ("gw", gw_key, gw_cert)):
        (ids / f"{name}.key").write_bytes(key)
        (ids / f"{name}.crt").write_bytes(cert)
    store = Store(tmp_path / "k.db", 1 << 24)
    builder = EventBuilder(kiosk.device_id, OFFICE_CODE, FakeClock(datetime(2026, 11, 30, 9, tzinfo=UTC)))
    data = {"service_day": "2026-11-30", "discarded_waiting": 0, "reason": "acl"}
    with store.tx() as cur:
        for _ in range(TICKETS):
            store.append_event(cur, EventType.QUEUE_RESET, builder.builder(EventType.QUEUE_RESET, data))
    got: list[int] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-test")
    sub.tls_set_context(tls_context(str(files.cafile), str(ids / "gw.crt"), str(ids / "gw.key")))
    sub.on_message = lambda c, u, m: got.append(json.loads(m.payload)["seq"])
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", port)
    sub.subscribe(f"motcua/v1/{OFFICE_CODE}/{kiosk.device_id}/events", qos=1)
    sub.loop_start()
    cfg = BrokerConfig(url=f"mqtts://127.0.0.1:{port}", ca_file=str(files.cafile),
                       cert_file=str(ids / "kiosk.crt"), key_file=str(ids / "kiosk.key"))
    pub = Publisher(cfg, kiosk.device_id, OFFICE_CODE, store, builder, lambda: b"{}", 3600, queue.Queue())
    try:
        assert subscribed.wait(30)
        pub.start()
        wait_for(lambda: _denied_events(broker) >= 1, 60, "a denied publish")
        first = time.monotonic()
        wait_for(lambda: time.monotonic() - first > 6, 30, "a few retries")
        # Either way (refusal: 1 s doubling; drop: 0.5 s doubling) only a few rounds fit in 6 s;
        # a resend or reconnect loop without backoff would be denied hundreds of times.
        denied = _denied_events(broker)
        assert denied <= 8 * TICKETS, f"{denied} denied publishes in 6 s: no backoff"
        assert store.outbox_depth() == TICKETS, "events the broker never accepted left the outbox"
        assert pub.refusals >= TICKETS or pub.connects >= 2, "neither a refusal nor a drop was seen"
        assert got == []
        print(f"certificate identity: {pub.connects} connections, {pub.refusals} refused PUBACKs, "
              f"{denied} denied publishes; last_error {pub.last_error!r}")
        write_broker_config(ca, world / "broker", port=port, bind="127.0.0.1", acl_mode="registry")
        broker.reload()  # the operator's fix: motcua-provision mosquitto-conf, then SIGHUP
        assert pub.wait_drained(120), f"outbox holds {store.outbox_depth()}: {pub.last_error}"
        wait_for(lambda: len(got) >= TICKETS, 60, "every kept event delivered")
        assert got == list(range(1, TICKETS + 1))
    finally:
        pub.stop()
        sub.loop_stop()
        broker.stop()
        shutil.rmtree(world, ignore_errors=True)


@pytest.mark.slow  # reconnect backoff, a broker restart: about 15 s
def test_broker_that_drops_the_connection_instead_keeps_events_and_backs_off(tmp_path, mosquitto):
    """The drop path, made real: Mosquitto with a ``max_packet_size`` below the events' size cuts the
    connection on each event (no PUBACK). Every event stays, reconnects back off (a connection that
    delivers nothing does not reset the backoff), and all arrive once, in order, after the fix."""
    limit = "max_packet_size 350\n"
    mosquitto.stop()
    conf = mosquitto.conf.read_text()
    mosquitto.conf.write_text(conf + limit)  # status (~250 B) and the CONNECT fit; an event does not
    mosquitto.start()
    store = Store(tmp_path / "k.db", 1 << 24)
    builder = EventBuilder(DEVICE, OFFICE, FakeClock(datetime(2026, 11, 30, 9, tzinfo=UTC)))
    data = {"service_day": "2026-11-30", "discarded_waiting": 0, "reason": "x" * 150}
    with store.tx() as cur:
        for _ in range(TICKETS):
            store.append_event(cur, EventType.QUEUE_RESET, builder.builder(EventType.QUEUE_RESET, data))
    pub = Publisher(BrokerConfig(url=mosquitto.url), DEVICE, OFFICE, store, builder, lambda: b"{}", 3600,
                    queue.Queue())
    watcher = Watcher(mosquitto.port)
    try:
        pub.start()
        wait_for(lambda: pub.connects >= 2, 60, "the broker cut the connection on an event")
        first, connects = time.monotonic(), pub.connects
        wait_for(lambda: time.monotonic() - first > 6, 30, "a few reconnects")
        # 0.5 s doubling (jittered 0.25-0.5, 0.5-1, 1-2, 2-4 s): about 4 connects fit in 6 s; a
        # backoff reset by every connection that got CONNACK would make ~16.
        assert pub.connects - connects <= 8, f"{pub.connects - connects} reconnects in 6 s: no backoff"
        assert store.outbox_depth() == TICKETS, "events the broker never acknowledged left the outbox"
        assert watcher.events() == []
        mosquitto.stop()
        mosquitto.conf.write_text(conf)
        mosquitto.start()
        assert pub.wait_drained(120), f"outbox holds {store.outbox_depth()}: {pub.last_error}"
        wait_for(lambda: len(watcher.events()) >= TICKETS, 60, "every kept event delivered")
        assert [e["seq"] for e in watcher.events()] == list(range(1, TICKETS + 1))
    finally:
        pub.stop()
        watcher.close()
