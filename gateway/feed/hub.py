"""Province hub mode: receive commune gateways' feeds by MQTT subscription and/or HTTP pull.

Both hand every record to :func:`gateway.feed.hub_store.accept` (validation, counted rejections,
revision rule). MQTT: a persistent session under a fixed client id subscribed to
``motcua-feed/v1/+/+`` at QoS 1 with manual acknowledgement, so a record is acknowledged only after
``accept`` returned (stored or counted as refused); a database error leaves it unacknowledged and
the broker delivers it again after a reconnect. Pull: per source, ``GET <url>/api/v1/feed`` from the
cursor stored in ``hub_pull_state``, the cursor saved after the page's records were handled; a
pulled record must carry the source configured for its URL.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from sqlalchemy import select

from contract.feed import FEED_TOPIC_PREFIX
from contract.worker import Worker
from gateway.feed import mqtt_link
from gateway.feed import schema as fs
from gateway.feed.config import HubSettings, PullSource
from gateway.feed.hub_store import accept
from gateway.store import Store

log = logging.getLogger("motcua.gateway.hub")
MAX_PAGES_PER_ROUND = 50  # then the next source gets its turn; the rest waits for the next round


def topic_parts(topic: str) -> tuple[str, str] | None:
    prefix = FEED_TOPIC_PREFIX + "/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix):].split("/")
    return (parts[0], parts[1]) if len(parts) == 2 else None


class HubSubscriber:
    def __init__(self, store: Store, cfg: HubSettings) -> None:
        self.store, self.cfg = store, cfg
        m = cfg.mqtt
        self.client, self.connected, self.host, self.port = mqtt_link.make_client(
            m, m.client_id or f"motcua-hub-{socket.gethostname()[:40]}", manual_ack=True, retry=(1.0, 10.0))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.outcomes: dict[str, int] = {}

    def start(self) -> None:
        mqtt_link.start(self.client, self.host, self.port, self.cfg.mqtt.keepalive_s)

    def stop(self) -> None:
        mqtt_link.stop(self.client)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("hub MQTT %s:%s refused: %s", self.host, self.port, reason)
            return
        client.subscribe(f"{FEED_TOPIC_PREFIX}/+/+", qos=1)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
        self.connected.set()  # connected and subscribed (SUBACK)
        log.info("hub MQTT connected to %s:%s, subscribed to %s/+/+", self.host, self.port, FEED_TOPIC_PREFIX)

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        parts = topic_parts(msg.topic) or ("", "")
        try:
            outcome = accept(self.store, msg.payload, self.cfg, topic=parts)
        except Exception:  # the store failed: no ack, the broker redelivers after a reconnect
            log.exception("hub: storing a record from %s failed", msg.topic)
            return
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if msg.qos > 0:
            client.ack(msg.mid, msg.qos)


class HubPuller(Worker):
    """Polls each ``[[hub.pull]]`` source every ``pull_interval_s``, page by page until it is current."""

    def __init__(self, store: Store, cfg: HubSettings) -> None:
        self.store, self.cfg = store, cfg
        self.errors = 0
        Worker.__init__(self, "hub-pull", self._loop, join_timeout_s=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for src in self.cfg.pull:
                try:
                    self.pull(src)
                except (httpx.HTTPError, ValueError) as exc:
                    self.errors += 1
                    log.warning("hub pull %s: %s (retrying in %.0f s)", src.url, exc,
                                self.cfg.pull_interval_s)
            self._stop.wait(self.cfg.pull_interval_s)

    def pull(self, src: PullSource) -> int:
        """Fetch and store what follows the saved cursor, at most ``MAX_PAGES_PER_ROUND`` pages (a
        source that always says ``more``, or never moves its cursor, cannot keep the others from
        their turn); returns how many records were handled."""
        headers = {"Authorization": f"Bearer {src.token}"} if src.token else {}
        cursor, n = self._cursor(src.url), 0
        with httpx.Client(base_url=src.url, headers=headers, timeout=30, verify=src.ca_file or True) as http:
            for _page in range(MAX_PAGES_PER_ROUND):
                if self._stop.is_set():
                    return n
                r = http.get("/api/v1/feed", params={"cursor": cursor, "limit": self.cfg.pull_page})
                r.raise_for_status()
                page = r.json()
                if not isinstance(page, dict) or not isinstance(page.get("records"), list) \
                        or not isinstance(page.get("next_cursor"), str):
                    raise ValueError("not a feed page")
                for rec in page["records"]:
                    accept(self.store, json.dumps(rec, ensure_ascii=False), self.cfg, source=src.source)
                n += len(page["records"])
                moved, cursor = page["next_cursor"] != cursor, page["next_cursor"]
                self._save(src.url, cursor)
                if not page.get("more") or not moved:
                    return n
        log.warning("hub pull %s: more after %d pages; the rest next round", src.url, MAX_PAGES_PER_ROUND)
        return n

    def _cursor(self, url: str) -> str:
        with self.store.engine.connect() as conn:
            st = fs.hub_pull_state
            v = conn.execute(select(st.c.cursor).where(st.c.url == url)).scalar()
        return v or ""

    def _save(self, url: str, cursor: str) -> None:
        row = {"url": url, "cursor": cursor, "updated_at": time.time()}
        stmt = self.store.insert(fs.hub_pull_state).values(row)
        with self.store.engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["url"], set_=row))
