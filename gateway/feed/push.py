"""Push the feed upstream with store-and-forward: to an MQTT broker (QoS 1) and/or an HTTPS endpoint.

The outbox is ``feed_records`` itself (append-only, ordered by id) with one mark per target in
``feed_push_state``: everything above ``acked_id`` waits. Records go out in id order; the mark moves
only past records the upstream acknowledged (MQTT: PUBACK, tracked per message id, the mark moving
over the acknowledged prefix; HTTPS: a 2xx answer to ``POST`` with ``Idempotency-Key:
<source>/<office>/<hour>/<revision>``). A gateway offline for a day (or restarted) resumes from the
mark and sends the backlog in order; anything sent twice is the same record under the same key, which
the receiver counts as a duplicate. Failures wait ``retry_min_s`` doubling to ``retry_max_s``
(HTTPS) or paho's reconnect delay over the same bounds (MQTT).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from sqlalchemy import func, select

from contract.feed import feed_topic
from contract.worker import Worker
from gateway.feed import mqtt_link
from gateway.feed import schema as fs
from gateway.feed.config import FeedSettings
from gateway.feed.producer import records_after
from gateway.store import Store

log = logging.getLogger("motcua.gateway.feed.push")
ACK_TIMEOUT_S = 120.0  # connected, yet the oldest message unacknowledged this long: send again from the mark


def load_mark(store: Store, target: str) -> int:
    with store.engine.connect() as conn:
        v = conn.execute(select(fs.feed_push_state.c.acked_id)
                         .where(fs.feed_push_state.c.target == target)).scalar()
    return int(v or 0)


def save_mark(store: Store, target: str, acked_id: int) -> None:
    row = {"target": target, "acked_id": acked_id, "updated_at": time.time()}
    stmt = store.insert(fs.feed_push_state).values(row)
    with store.engine.begin() as conn:
        conn.execute(stmt.on_conflict_do_update(index_elements=["target"], set_=row))


class _Pusher(Worker):
    target = ""

    def __init__(self, store: Store, cfg: FeedSettings) -> None:
        self.store, self.cfg = store, cfg
        self.acked = load_mark(store, self.target)
        self.sent = 0  # messages handed to the transport (resends included)
        Worker.__init__(self, f"feed-push-{self.target}", self._loop, join_timeout_s=30)

    def backlog(self) -> int:
        """Records not yet acknowledged by this target."""
        r = fs.feed_records
        with self.store.engine.connect() as conn:
            q = select(func.count()).select_from(r).where(r.c.id > self.acked)
            return int(conn.execute(q).scalar_one())

    def _loop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class MqttPusher(_Pusher):
    """QoS 1 to ``motcua-feed/v1/<source>/<office>``, at most ``max_in_flight`` awaiting PUBACK."""

    target = "mqtt"

    def __init__(self, store: Store, cfg: FeedSettings) -> None:
        super().__init__(store, cfg)
        m = cfg.mqtt
        self.client, self.connected, self.host, self.port = mqtt_link.make_client(
            m, m.client_id or f"motcua-feed-{cfg.source_id}", manual_ack=False,
            max_inflight=cfg.max_in_flight, retry=(cfg.retry_min_s, cfg.retry_max_s))
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self._lock = threading.Lock()
        self._inflight: OrderedDict[int, bool] = OrderedDict()  # record id -> acknowledged
        self._mid_id: dict[int, int] = {}
        self._early: set[int] = set()
        self._published_upto = self.acked
        self._oldest_at = 0.0

    def start(self) -> None:
        mqtt_link.start(self.client, self.host, self.port, self.cfg.mqtt.keepalive_s)
        super().start()

    def stop(self) -> None:
        super().stop()
        mqtt_link.stop(self.client)

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("feed MQTT %s:%s refused: %s", self.host, self.port, reason)
            return
        self.connected.set()
        log.info("feed MQTT connected to %s:%s (persistent session)", self.host, self.port)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _reason: Any, _p: Any) -> None:
        with self._lock:
            rid = self._mid_id.pop(mid, None)
            if rid is None:
                self._early.add(mid)  # PUBACK before publish() returned its mid to us
            elif rid in self._inflight:
                self._inflight[rid] = True

    def _advance(self) -> bool:
        """Move the mark over the acknowledged prefix; True if it moved."""
        with self._lock:
            moved = False
            while self._inflight and next(iter(self._inflight.values())):
                self.acked = self._inflight.popitem(last=False)[0]
                moved = True
            if moved:
                self._oldest_at = time.monotonic()
            elif (self._inflight and self.connected.is_set()
                  and time.monotonic() - self._oldest_at > ACK_TIMEOUT_S):
                log.warning("feed MQTT: no PUBACK for %.0f s; sending again from record %d",
                            ACK_TIMEOUT_S, self.acked)
                self._inflight.clear()
                self._mid_id.clear()
                self._early.clear()
                self._published_upto = self.acked
        if moved:
            save_mark(self.store, self.target, self.acked)
        return moved

    def _publish_more(self) -> int:
        with self._lock:
            room = self.cfg.max_in_flight - len(self._inflight)
            after = self._published_upto
        if room <= 0 or not self.connected.is_set():
            return 0
        n = 0
        for rid, office, _key, record in records_after(self.store, after, room):
            # not under self._lock: paho calls on_publish holding its own lock, which publish() takes
            info = self.client.publish(feed_topic(self.cfg.source_id or "", office), record, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break  # disconnected meanwhile: paho reconnects, we go on from here
            with self._lock:
                if not self._inflight:
                    self._oldest_at = time.monotonic()
                self._inflight[rid] = info.mid in self._early
                self._early.discard(info.mid)
                if not self._inflight[rid]:
                    self._mid_id[info.mid] = rid
                self._published_upto = rid
            self.sent += 1
            n += 1
        return n

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._publish_more() + int(self._advance())
            except Exception:  # a database error: retry later, the mark is unchanged
                log.exception("feed MQTT push failed; retrying")
                busy = 0
            if not busy:
                self._stop.wait(0.2)


class HttpsPusher(_Pusher):
    """``POST`` each record (JSON) to ``https_url``, in order, one at a time."""

    target = "https"

    def __init__(self, store: Store, cfg: FeedSettings) -> None:
        super().__init__(store, cfg)
        headers = {"Content-Type": "application/json"}
        if cfg.https_token:
            headers["Authorization"] = f"Bearer {cfg.https_token}"
        self.http = httpx.Client(timeout=30, headers=headers, verify=cfg.https_ca_file or True)
        self.failures = 0

    def stop(self) -> None:
        super().stop()
        self.http.close()

    def _send(self, key: str, record: str) -> bool:
        try:
            r = self.http.post(self.cfg.https_url, content=record.encode(),
                               headers={"Idempotency-Key": f"{self.cfg.source_id}/{key}"})
        except httpx.HTTPError as exc:
            log.warning("feed HTTPS push: %s", exc)
            return False
        if not r.is_success:
            log.warning("feed HTTPS push: HTTP %d %s", r.status_code, r.text[:200])
        return r.is_success

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                rows = records_after(self.store, self.acked, 100)
            except Exception:
                log.exception("feed HTTPS push: reading the feed failed")
                rows = []
            ok = True
            for rid, _office, key, record in rows:
                self.sent += 1
                ok = self._send(key, record)
                if not ok:
                    break
                self.acked = rid
                save_mark(self.store, self.target, rid)
                if self._stop.is_set():
                    return
            self.failures = 0 if ok else self.failures + 1
            if not ok:
                delay = self.cfg.retry_min_s * 2 ** min(self.failures - 1, 20)
                self._stop.wait(min(self.cfg.retry_max_s, delay))
            elif not rows:
                self._stop.wait(0.5)
