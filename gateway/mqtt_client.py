"""The gateway's MQTT connection (paho 2.2): URL, TLS, credentials, MQTT v5 shared subscriptions.

Messages are acknowledged by the caller (``manual_ack``) only after they are stored, so a crash
between receipt and commit makes the broker redeliver (the store is idempotent by event_id).
A stable ``client_id`` gets a persistent session: QoS 1 events published while the gateway is down
wait at the broker.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract.topics import SUBSCRIBE_ALL, shared_subscription
from gateway.config import BrokerSettings

log = logging.getLogger("motcua.gateway.mqtt")

OnMessage = Callable[[str, bytes, int, int], None]  # topic, payload, mid, qos


class GatewayMqtt:
    def __init__(self, cfg: BrokerSettings, on_message: OnMessage) -> None:
        self.cfg = cfg
        self._on_message_cb = on_message
        self.connected = threading.Event()
        self.v5 = bool(cfg.shared_group)
        self.persistent = bool(cfg.client_id)
        client_id = cfg.client_id or f"motcua-gw-{socket.gethostname()[:20]}-{os.getpid()}"
        self.client_id = client_id
        if self.v5:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv311,
                clean_session=not self.persistent,
                manual_ack=True,
            )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        u = urlparse(cfg.effective_url())
        self.host = u.hostname or "127.0.0.1"
        tls = u.scheme in ("mqtts", "ssl")
        self.port = u.port or (8883 if tls else 1883)
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.password or None)
        if tls:
            ctx = ssl.create_default_context(cafile=cfg.ca_file or None)
            if cfg.cert_file:
                ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
            self.client.tls_set_context(ctx)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 10)
        self.topic = shared_subscription(cfg.shared_group) if cfg.shared_group else SUBSCRIBE_ALL

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        props = None
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 86400 if self.persistent else 0
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
        client.subscribe(self.topic, qos=1)
        log.info("MQTT connected to %s:%s, subscribed to %s", self.host, self.port, self.topic)
        self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.connected.clear()
        log.warning("MQTT disconnected (%s); paho reconnects", reason)

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        self._on_message_cb(msg.topic, msg.payload, msg.mid, msg.qos)

    # ------------------------------------------------------------------ actions

    def ack(self, mid: int, qos: int) -> None:
        if qos > 0:
            self.client.ack(mid, qos)

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
