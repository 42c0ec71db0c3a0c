"""One paho client between gateways (feed push and hub subscription): URL, TLS, persistent session.

As the kiosk's and the gateway's own connections: MQTT 3.1.1, ``clean_session=False`` under a fixed
client id (the broker keeps the session and its queued QoS 1 messages across restarts, within the
limits of provisioning/mosquitto_conf.py), TLS from ``ca_file``/``cert_file``/``key_file`` for
``mqtts://``, paho's own reconnect with a growing delay. Public paho API only.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.mqtt_url import configure_client
from gateway.feed.config import UpstreamMqtt

log = logging.getLogger("motcua.gateway.feed.mqtt")


def make_client(cfg: UpstreamMqtt, client_id: str, *, manual_ack: bool, max_inflight: int = 100,
                retry: tuple[float, float] = (1.0, 30.0)) -> tuple[mqtt.Client, threading.Event, str, int]:
    """A configured client (not connected) and the event set while connected."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                         clean_session=False, manual_ack=manual_ack)
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(0)
    address = configure_client(client, cfg.url, username=cfg.username, password=cfg.password,
                               ca_file=cfg.ca_file, cert_file=cfg.cert_file, key_file=cfg.key_file)
    host, port = address.host, address.port
    client.reconnect_delay_set(max(1, int(retry[0])), max(1, int(retry[1])))
    connected = threading.Event()

    def on_disconnect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        connected.clear()
        log.warning("feed MQTT %s:%s disconnected (%s); paho reconnects", host, port, reason)

    client.on_disconnect = on_disconnect
    return client, connected, host, port


def start(client: mqtt.Client, host: str, port: int, keepalive_s: int) -> None:
    client.connect_async(host, port, keepalive=keepalive_s)
    client.loop_start()


def stop(client: mqtt.Client) -> None:
    try:
        client.disconnect()
    finally:
        client.loop_stop()
