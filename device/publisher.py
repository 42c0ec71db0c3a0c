"""MQTT publisher: drains the durable outbox in ``seq`` order with QoS 1, status, health, commands.

One thread owns the paho client (no shared paho state). Each connection is a fresh paho client with
the same client id and a persistent session (MQTT 5 ``clean_start=False`` with a session that never
expires, as 3.1.1 ``clean_session=False``: the broker keeps the command subscription and queued
commands while the kiosk is away). After every (re)connect all events still in the outbox are sent
again from the lowest ``seq``: an event leaves the outbox only on a *successful* PUBACK, so a resend
is possible and byte-identical (same ``event_id``), never a loss. At most ``max_inflight`` events are
unacknowledged at once (paho silently loses QoS 1 messages past 65,535 in flight).

A PUBACK with a failure reason code (MQTT 5, >= 0x80; Mosquitto sends "Not authorized" when its ACL
denies the kiosk's topic) is a refusal, not a delivery: the event stays in the outbox, the refusal
is counted (``refused.broker_publish``, in health and /api/status) and shown as ``last_error``, and
the publisher stops sending events for a backoff (doubling, capped at ``REFUSAL_BACKOFF_MAX_S``)
before it resends from the lowest ``seq`` still in the outbox, so that the events flow in order once
the operator fixes the ACL. MQTT 3.1.1 has no reason codes (Mosquitto acknowledges a denied publish
as delivered): ``[broker] protocol = "3.1.1"`` exists only for the embedded demo broker, which
refuses MQTT 5. A broker that drops the connection instead (reported for Mosquitto 2.0.11 with
certificate identities) never acknowledged the events: they stay, and reconnects back off while no
event gets through.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract.mqtt_url import configure_client
from contract.topics import cmd_filter, events_topic, health_topic, status_topic
from device.config import BrokerConfig
from device.events import EventBuilder
from device.queue import REFUSED_PREFIX
from device.store import Store

log = logging.getLogger("motcua.publisher")

SESSION_NEVER_EXPIRES = 0xFFFFFFFF  # MQTT 5 session expiry "never" = 3.1.1 clean_session=False
REFUSAL_BACKOFF_MIN_S = 1.0
REFUSAL_BACKOFF_MAX_S = 60.0
BROKER_REFUSED = REFUSED_PREFIX + "broker_publish"  # persistent counter, health/status ``refused``
REFUSED_TEXT = "broker refused publish:"
HEALTHY_SESSION_S = 10.0  # a connection that lasted this long resets the reconnect backoff


class _Kick(threading.Event):
    """Set when the outbox has new events; also wakes the paho loop's select() at once."""

    client: mqtt.Client | None = None

    def set(self) -> None:
        super().set()
        sock = getattr(self.client, "_sockpairW", None)  # paho 2.2 (pinned): its own loop-wakeup socketpair
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.send(b"0")


class Publisher:
    def __init__(
        self,
        broker: BrokerConfig,
        device_id: str,
        office_code: str,
        store: Store,
        builder: EventBuilder,
        health: Callable[[], bytes],
        health_interval_s: float,
        commands: queue.Queue,
        max_inflight: int = 200,
        poll_s: float = 0.2,
    ) -> None:
        self.broker, self.store, self.builder = broker, store, builder
        self.device_id, self.office_code = device_id, office_code
        self.health, self.health_interval_s, self.commands = health, health_interval_s, commands
        self.max_inflight, self.poll_s = max_inflight, poll_s
        self.events_topic = events_topic(office_code, device_id)
        self.status_topic = status_topic(office_code, device_id)
        self.health_topic = health_topic(office_code, device_id)
        self.kick = _Kick()
        self.connected = False
        self.last_error: str | None = None
        self.connects = 0
        self.published = 0
        self.acked = 0
        self.refusals = 0  # PUBACKs with a failure reason code since start (persistent: BROKER_REFUSED)
        self.connected_since: float | None = None
        self._refusal_backoff = 0.0
        self._hold_until = 0.0  # no event is sent before this (monotonic) after a refusal
        self._rewind = False  # resend from the lowest outbox seq once the refused ones have settled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_health = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the retained offline status (reason shutdown) and disconnect."""
        self._stop.set()
        self.kick.set()
        if self._thread:
            self._thread.join(timeout)

    def wait_drained(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.store.outbox_depth() == 0:
                return True
            time.sleep(0.05)
        return False

    def send_health_now(self) -> None:
        self._flush_health.set()
        self.kick.set()

    # ------------------------------------------------------------------ client

    def _client(self) -> mqtt.Client:
        client_id = f"kiosk-{self.device_id}"
        if self.broker.protocol == "5":
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        else:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                            protocol=mqtt.MQTTv311)
        b = self.broker
        configure_client(c, b.url, username=b.username, password=b.password, ca_file=b.ca_file,
                         cert_file=b.cert_file, key_file=b.key_file)
        c.will_set(self.status_topic, self.builder.status("offline", "connection_lost"), qos=1, retain=True)
        c.max_inflight_messages_set(self.max_inflight)
        c.on_connect = self._on_connect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        c.on_disconnect = self._on_disconnect
        return c

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            self.last_error = f"broker refused connection: {rc}"
            self._sess["failed"] = True
            return
        self._sess["connack"] = True

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._sess["lost"] = True

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self._sess["acks"].append((mid, rc))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.commands.put_nowait((msg.topic, bytes(msg.payload)))
        except queue.Full:
            self.last_error = "command queue full"

    # ------------------------------------------------------------------ main loop

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                ok = self._session()
            except Exception as exc:  # a bug or storage error must not end publishing for good
                log.exception("publisher session failed")
                self.last_error = f"publisher: {exc}"[:200]
                self.connected = False
                ok = False
            if self._stop.is_set():
                break
            backoff = 0.5 if ok else min(backoff * 2, 30.0)  # ok: a healthy session (see _session)
            delay = backoff * random.uniform(0.5, 1.0)  # jitter: a whole office reconnecting spreads out
            self._stop.wait(delay)

    def _session(self) -> bool:
        """One connection; returns True if it was healthy (to reset the reconnect backoff): it lasted
        ``HEALTHY_SESSION_S`` or got an event acknowledged. A broker that drops every connection
        right after a refused publish thus meets a growing backoff, not a reconnect loop."""
        self._sess: dict[str, Any] = {"connack": False, "lost": False, "failed": False, "acks": []}
        client = self._client()
        if not self._connect(client):
            return False
        self.connected, self.connects, self.connected_since = True, self.connects + 1, time.monotonic()
        self.kick.client = client
        log.info("connected to %s", self.broker.url)
        client.publish(self.status_topic, self.builder.status("online", "connected"), qos=1, retain=True)
        client.subscribe(cmd_filter(self.office_code, self.device_id), qos=1)
        acked_before = self.acked
        try:
            self._connected_loop(client)
            lasted = time.monotonic() - self.connected_since
            return self.acked > acked_before or lasted >= HEALTHY_SESSION_S
        finally:
            self.connected = False
            self.kick.client = None

    def _connect(self, client: mqtt.Client) -> bool:
        """Connect and wait (at most 15 s) for the broker's CONNACK."""
        try:
            if self.broker.protocol == "5":
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
                client.connect(self.broker.host, self.broker.port, keepalive=self.broker.keepalive,
                               clean_start=False, properties=props)
            else:
                client.connect(self.broker.host, self.broker.port, keepalive=self.broker.keepalive)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self.last_error = f"broker {self.broker.host}:{self.broker.port}: {exc}"[:200]
            return False
        deadline = time.monotonic() + 15
        while not self._sess["connack"]:
            rc = client.loop(0.1)
            if (
                rc != mqtt.MQTT_ERR_SUCCESS
                or self._sess["failed"]
                or self._sess["lost"]
                or time.monotonic() > deadline
                or self._stop.is_set()
            ):
                self.last_error = self.last_error or "no CONNACK from broker"
                client.socket() and client.disconnect()
                return False
        return True

    def _connected_loop(self, client: mqtt.Client) -> None:
        """Drain the outbox in seq order (at most ``max_inflight`` unacknowledged), delete what the
        broker acknowledged, send health on time; until the connection drops or the publisher stops."""
        inflight: dict[int, int] = {}  # mid -> outbox seq
        last_seq, last_poll, next_health = 0, 0.0, time.monotonic()
        while not self._stop.is_set():
            rc = client.loop(self.poll_s)
            if rc != mqtt.MQTT_ERR_SUCCESS or self._sess["lost"]:
                unacked = f", {len(inflight)} events unacknowledged (kept)" if inflight else ""
                self.last_error = f"connection lost ({mqtt.error_string(rc)}){unacked}"
                return
            done = self._settle(inflight)
            now = time.monotonic()
            resend = False
            if self._rewind and not inflight and now >= self._hold_until:
                self._rewind, last_seq, resend = False, 0, True  # again from the lowest seq kept
            room = self.max_inflight - len(inflight)
            sending = not self._rewind and now >= self._hold_until  # refused: back off first
            if sending and room > 0 and (resend or self.kick.is_set() or done or now - last_poll > 1.0):
                self.kick.clear()
                last_poll = now
                last_seq = self._publish_pending(client, inflight, last_seq, room)
            if now >= next_health or self._flush_health.is_set():
                self._flush_health.clear()
                next_health = now + self.health_interval_s
                try:
                    client.publish(self.health_topic, self.health(), qos=0)
                except Exception as exc:  # health must never stop the event stream
                    self.last_error = f"health: {exc}"[:200]
        self._say_goodbye(client)

    def _settle(self, inflight: dict[int, int]) -> list[int]:
        """Handle the PUBACKs seen since the last call: delete the events the broker accepted, keep
        (count, report, back off on) the ones it refused. Returns the seqs deleted."""
        acks, self._sess["acks"] = self._sess["acks"], []
        done: list[int] = []
        refused: list[tuple[int, Any]] = []
        for mid, rc in acks:
            seq = inflight.pop(mid, None)
            if seq is None:
                continue  # a status publish
            if rc.is_failure:
                refused.append((seq, rc))
            else:
                done.append(seq)
        if done:
            self.store.ack(done)
            self.acked += len(done)
            if not refused:
                self._refusal_backoff = 0.0
                if (self.last_error or "").startswith(REFUSED_TEXT):
                    self.last_error = None  # delivered again: health stops reporting the refusal
        if refused:
            self._refused(refused)
        return done

    def _refused(self, refused: list[tuple[int, Any]]) -> None:
        self.refusals += len(refused)
        self.store.bump(BROKER_REFUSED, len(refused))
        seq, rc = refused[0]
        self.last_error = f"{REFUSED_TEXT} {rc} (event seq {seq} kept in the outbox)"[:200]
        if self._rewind:
            return  # the same round of refusals: one backoff step per resend
        self._refusal_backoff = min(max(self._refusal_backoff * 2, REFUSAL_BACKOFF_MIN_S),
                                    REFUSAL_BACKOFF_MAX_S)
        self._hold_until = time.monotonic() + self._refusal_backoff * random.uniform(0.75, 1.0)
        self._rewind = True
        log.warning("broker refused %d event(s) (%s); retrying in %.0f s", len(refused), rc,
                    self._refusal_backoff)

    def _publish_pending(self, client: mqtt.Client, inflight: dict[int, int], last_seq: int,
                         room: int) -> int:
        """Publish up to ``room`` outbox rows after ``last_seq``; returns the last seq sent."""
        for row in self.store.pending(last_seq, room):
            info = client.publish(self.events_topic, row.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.last_error = f"publish failed: {mqtt.error_string(info.rc)}"
                break
            inflight[info.mid] = row.seq
            last_seq = row.seq
            self.published += 1
        return last_seq

    def _say_goodbye(self, client: mqtt.Client) -> None:
        """Clean shutdown: say so (retained, waited for up to 3 s), then disconnect (no Last Will)."""
        goodbye = self.builder.status("offline", "shutdown")
        info = client.publish(self.status_topic, goodbye, qos=1, retain=True)
        end = time.monotonic() + 3
        while not info.is_published() and time.monotonic() < end:
            if client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        client.disconnect()
