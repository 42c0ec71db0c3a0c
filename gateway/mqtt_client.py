"""The gateway's MQTT connection (paho 2.2): URL, TLS, credentials, MQTT v5 shared subscriptions.

Messages are acknowledged by the caller (``manual_ack``) only after they are stored, so a crash
between receipt and commit makes the broker redeliver (the store is idempotent by event_id).
The session is always persistent (MQTT 3.1.1 ``clean_session=False``; v5 ``clean_start=False`` with
a 30-day session expiry) under a stable client id (``[broker] client_id``, else
``motcua-gw-<hostname>``): QoS 1 events published while the gateway is stopped or restarting wait
at the broker, within its queue limits (provisioning/mosquitto_conf.py). Several gateway processes
on one host need distinct ``client_id`` values (a second connection with the same id takes the
session over).

The broker's ``$SYS`` statistics (queue depth, drops) are subscribed at QoS 0 beside the events and
handed to ``on_sys`` (gateway/broker_stats.py), never to ingest. A broker that drops the connection
instead of answering that subscription (rumqttd, the embedded demo broker, refuses ``$`` filters) is
not asked again: the broker gauges stay empty and a warning says why.

Acknowledgements belong to the connection the message came on. The caller gets a token
(connection number << 16 | message id) instead of the bare id; an ack whose message came on an
earlier connection is dropped (counted in ``stale_acks``): after a reconnect the broker resends
its unacknowledged messages under the same ids, so a late ack of the old copy would acknowledge
the resent one, whose own ack then names an id no longer in flight. Mosquitto ignores such a
PUBACK; rumqttd (the embedded demo broker) drops the connection, the broker resends again, and the
gateway looped (seen in the demo under load: a reconnect every second, thousands of duplicates).
The resent copy is stored (idempotent by event_id) and acknowledged on its own connection.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract.mqtt_url import configure_client
from contract.topics import SUBSCRIBE_ALL, shared_subscription
from gateway.broker_stats import SYS_TOPICS
from gateway.config import BrokerSettings

log = logging.getLogger("motcua.gateway.mqtt")

OnMessage = Callable[[str, bytes, int, int], None]  # topic, payload, ack token, qos
OnSys = Callable[[str, bytes], None]
READ_CHUNK = 65536
READ_SLICE_S = 0.2  # longest stretch of buffered reads before paho's loop may write (acks, pings)
_PUBACK = struct.Struct("!BBH")  # fixed header (PUBACK, remaining length 2) + message id; v3.1.1 and v5
SESSION_EXPIRY_S = 30 * 86400  # as the broker's persistent_client_expiration (mosquitto_conf.py)


class _Matcher(MQTTMatcher):
    """paho walks its per-topic callback tree for every message; we register none (one on_message)."""

    def iter_match(self, topic: str) -> Any:
        return super().iter_match(topic) if self._root._children else iter(())


class _BufferedClient(mqtt.Client):
    """paho's client reading the socket in 64 KiB chunks.

    paho 2.2 reads a packet with three ``recv`` calls (type byte, length bytes, body) and handles
    one packet per ``select`` when nothing is outbound (our acks are manual), i.e. ~4 system calls
    per message. Here ``recv`` fills a buffer that later reads are served from, and ``loop_read``
    goes on while whole packets remain buffered, so a burst of messages costs one ``select`` and
    one ``recv`` per 64 KiB. ``ack_many`` sends the PUBACKs of a stored batch as one write (paho's
    ``ack`` queues one packet per message: a wake-up and a ``send`` each). Every packet is still
    parsed by paho (a hand-written PUBLISH parser saved ~a third of the receive thread's time but
    was not kept: paho's own decoder stays the only one). Relies on paho's
    ``_sock_recv``/``_sock_close``/``_packet_queue`` (pinned 2.2; tests/gateway/test_mqtt_client_paho.py
    fails if they change).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()
        self._on_message_filtered = _Matcher()

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._rbuf:
            data = super()._sock_recv(max(bufsize, READ_CHUNK))
            if len(data) <= bufsize:
                return data  # b"" = connection lost, as paho expects
            self._rbuf += data
        out = bytes(self._rbuf[:bufsize])
        del self._rbuf[:bufsize]
        return out

    def _sock_close(self) -> None:
        self._rbuf.clear()
        super()._sock_close()

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK (MQTT v3.1.1 and v5, reason "success" implied) for QoS 1 messages, in one packet write."""
        if mids:
            self._packet_queue(mqtt.PUBACK, b"".join(_PUBACK.pack(mqtt.PUBACK, 2, m) for m in mids), 0, 0)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """Handle buffered packets for at most ``READ_SLICE_S``, then let paho's loop write.

        A packet that straddles the buffer's end refills it from the socket, so without a bound
        this goes on as long as the broker has messages in flight (10,000): the PUBACKs of stored
        batches and the PINGREQ wait meanwhile, and with a slow writer the broker's keep-alive
        (1.5 x 30 s) cut the connection and resent the whole window (seen draining 100,000 events
        at load 20: tens of thousands of duplicates and a stalled drain)."""
        deadline = time.monotonic() + READ_SLICE_S
        rc = super().loop_read(max_packets)
        while (
            rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
            and self._rbuf
            and self._sock is not None
            and time.monotonic() < deadline
        ):
            rc = super().loop_read(max_packets)
        return rc


def default_client_id() -> str:
    return f"motcua-gw-{socket.gethostname()[:40]}"


class GatewayMqtt:
    def __init__(self, cfg: BrokerSettings, on_message: OnMessage, on_sys: OnSys | None = None) -> None:
        self.cfg = cfg
        self._on_message_cb = on_message
        self._on_sys = on_sys
        self.connected = threading.Event()
        self._sys_mid: int | None = None  # $SYS subscription sent, SUBACK not yet seen
        self.sys_refused = False
        self._connection = 0  # connections so far (the high part of each message's ack token)
        self.stale_acks = 0  # acks dropped: their message came on an earlier connection
        self.v5 = bool(cfg.shared_group)
        self.persistent = True
        client_id = cfg.client_id or default_client_id()
        self.client_id = client_id
        if self.v5:
            self.client = _BufferedClient(
                CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            self.client = _BufferedClient(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv311,
                clean_session=not self.persistent,
                manual_ack=True,
            )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        address = configure_client(self.client, cfg.effective_url(), username=cfg.username,
                                   password=cfg.password, ca_file=cfg.ca_file, cert_file=cfg.cert_file,
                                   key_file=cfg.key_file)
        self.host, self.port = address.host, address.port
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 10)
        self.topic = shared_subscription(cfg.shared_group) if cfg.shared_group else SUBSCRIBE_ALL

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        props = None
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S if self.persistent else 0
            self.client.connect_async(
                self.host,
                self.port,
                keepalive=self.cfg.keepalive_s,
                clean_start=not self.persistent,
                properties=props,
            )
        else:
            self.client.connect_async(self.host, self.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT connect to %s:%s refused: %s", self.host, self.port, reason)
            return
        self._connection += 1  # CONNACK comes before the resent messages: they get the new number
        client.subscribe(self.topic, qos=1)
        if self._on_sys is not None and not self.sys_refused:
            self._sys_mid = client.subscribe([(t, 0) for t in SYS_TOPICS])[1]
        log.info(
            "MQTT connected to %s:%s as %s (persistent session), subscribed to %s",
            self.host,
            self.port,
            self.client_id,
            self.topic,
        )
        self.connected.set()

    def _on_subscribe(self, _c: mqtt.Client, _ud: Any, mid: int, _codes: Any, _props: Any) -> None:
        if mid == self._sys_mid:
            self._sys_mid = None

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.connected.clear()
        if self._sys_mid is not None:
            self._sys_mid = None
            self.sys_refused = True
            log.warning(
                "the broker dropped the connection on the $SYS subscription: not asked again, "
                "broker queue gauges and alerts unavailable with this broker"
            )
        log.warning("MQTT disconnected (%s); paho reconnects", reason)

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        if topic.startswith("$SYS/"):
            if self._on_sys is not None:
                self._on_sys(topic, msg.payload)
            if msg.qos > 0:
                self.client.ack(msg.mid, msg.qos)
            return
        self._on_message_cb(topic, msg.payload, self._connection << 16 | msg.mid, msg.qos)

    # ------------------------------------------------------------------ actions

    def ack(self, token: int, qos: int) -> None:
        """Acknowledge the message of ``token`` (as given to ``on_message``) if it came on this connection."""
        if qos > 0 and self._current(token):
            self.client.ack(token & 0xFFFF, qos)

    def ack_many(self, tokens: list[int]) -> None:
        """Acknowledge QoS 1 messages (their ``tokens``) of this connection in one write."""
        self.client.ack_many([t & 0xFFFF for t in tokens if self._current(t)])

    def _current(self, token: int) -> bool:
        if token >> 16 == self._connection:
            return True
        self.stale_acks += 1
        return False

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> bool:
        """Publish and wait for the broker's acknowledgement; False if not acknowledged in time."""
        info = self.client.publish(topic, payload, qos=qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()
