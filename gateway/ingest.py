"""MQTT → validated → stored. One writer thread drains a queue into batched transactions.

* The paho thread decodes each message against the contract; a rejection is counted by reason
  (``too_large``, ``bad_topic``, ``bad_json``, ``unknown_version``, ``invalid``, ``spoofed``,
  ``handler_error``) and acknowledged; nothing raised there can stop the client.
* Valid messages go to a bounded queue (an event with its events-table row already built: the
  paho thread does that while the writer thread waits on the database); the writer takes what is
  queued (up to ``batch_size``), stores it in one transaction and only then acknowledges the QoS 1
  messages. A batch the store refuses (not a database outage, which is retried) is split in halves
  until the message at fault is alone; it is counted as ``handler_error`` and acknowledged, the
  others are stored.
* After a commit: KPI cache invalidation and fleet alerts; live-hub updates (coalesced to ~2/s per
  office/device) are computed and sent by their own thread, so the writer never waits for a KPI
  recomputation. A sweeper thread marks devices offline when health stops and runs retention.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import OperationalError

from contract.codec import ContractError, decode
from contract.payloads import Event
from contract.topics import TopicKind
from gateway.broker_stats import BrokerStats
from gateway.config import Settings
from gateway.live import LiveHub
from gateway.store import Store
from gateway.store.writer import BatchOutcome, Incoming, apply_batch, event_row

log = logging.getLogger("motcua.gateway.ingest")

LIVE_MIN_INTERVAL_S = 0.5
QUEUE_BATCHES = 4
HANDLER_ERROR = "handler_error"


class _Refused(Exception):
    """A batch the store did not take (``stopping``: the database stayed down while stopping)."""

    def __init__(self, *, stopping: bool) -> None:
        super().__init__()
        self.stopping = stopping


@dataclass
class _Item:
    incoming: Incoming
    mid: int
    qos: int


class Ingest:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        live: LiveHub,
        *,
        kpi: Any = None,
        alerts: Any = None,
        retention: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.live = live
        self.kpi = kpi
        self.alerts = alerts
        self.retention = retention
        self.tz = ZoneInfo(settings.kpi.timezone)
        # A few batches: a longer queue only holds decoded messages in RAM (and makes every garbage
        # collection walk them) while the broker could hold them; when it is full the paho thread
        # waits, and TCP flow control makes the broker keep the rest queued.
        self.queue: queue.Queue[_Item | None] = queue.Queue(
            maxsize=QUEUE_BATCHES * settings.database.batch_size
        )
        self._lock = threading.Lock()
        self._pending_rejections: Counter[str] = Counter()
        # per-process totals (the database holds the totals over all processes)
        self.stats: Counter[str] = Counter()
        self.known_devices: set[str] = set()
        self.mqtt: Any = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_live: dict[tuple[str, str], float] = {}
        self._live_pending: dict[tuple[str, str], dict[str, Any]] = {}
        self._live_lock = threading.Lock()
        self.last_batch_at = 0.0
        self.last_error: str | None = None
        self.bridge: Any = None  # PgLiveBridge with PostgreSQL
        self.broker_stats = BrokerStats()

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, mqtt: bool = True) -> None:
        self.known_devices = {d["device_id"] for d in self.store.devices() if d["registered"]}
        if self.store.dialect == "postgresql":  # other gateway processes' live updates, and ours to them
            from gateway.live_pg import PgLiveBridge

            self.bridge = PgLiveBridge(self.store, self.live)
            self.bridge.start()
        self._stop.clear()
        for name, target in (
            ("ingest-writer", self._writer_loop),
            ("ingest-live", self._live_loop),
            ("ingest-sweeper", self._sweeper_loop),
        ):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        if mqtt:
            from gateway.mqtt_client import GatewayMqtt

            self.mqtt = GatewayMqtt(self.settings.broker, self.on_message, self.broker_stats.on_sys)
            self.mqtt.start()

    def stop(self) -> None:
        if self.mqtt is not None:
            self.mqtt.stop()
        self._stop.set()
        self.queue.put(None)
        for t in self._threads:
            t.join(timeout=15)
        self._threads.clear()
        if self.bridge is not None:
            self.bridge.stop()
            self.bridge = None

    def registered(self, device_id: str) -> None:
        """The registry API bound a device: stop treating it as unregistered."""
        self.known_devices.add(device_id)

    # ------------------------------------------------------------------ receive (paho thread)

    def on_message(self, topic: str, payload: bytes, mid: int = 0, qos: int = 0) -> None:
        received = time.time()
        try:
            decoded = decode(topic, payload)
        except ContractError as exc:
            self._reject(exc.reason.value, topic, exc.detail, mid, qos)
            return
        except Exception as exc:  # never let a message stop the client
            self._reject(HANDLER_ERROR, topic, repr(exc), mid, qos)
            return
        if decoded.topic.kind is TopicKind.CMD:
            # Commands are the gateways' own traffic to kiosks (seen through motcua/v1/#); their
            # outcome arrives as cmd.result events. Nothing to store.
            with self._lock:
                self.stats["commands_seen"] += 1
            self._ack(mid, qos)
            return
        msg = decoded.message
        row = event_row(msg, received) if isinstance(msg, Event) else None  # here, not in the writer
        self.queue.put(_Item(Incoming(decoded, received, row), mid, qos))

    def _reject(self, reason: str, topic: str, detail: str, mid: int, qos: int) -> None:
        with self._lock:
            self._pending_rejections[f"rejected:{reason}"] += 1
            self.stats[f"rejected:{reason}"] += 1
        log.info("rejected %s on %s: %s", reason, topic[:200], detail[:300])
        self._ack(mid, qos)

    def _ack(self, mid: int, qos: int) -> None:
        if self.mqtt is not None and qos > 0:
            try:
                self.mqtt.ack(mid, qos)
            except Exception:  # a lost ack means a redelivery, which is idempotent
                log.exception("ack failed")

    def _ack_stored(self, items: list[_Item]) -> None:
        if self.mqtt is None:
            return
        try:
            self.mqtt.ack_many([i.mid for i in items if i.qos == 1])
            for i in items:
                if i.qos > 1:
                    self.mqtt.ack(i.mid, i.qos)
        except Exception:  # a lost ack means a redelivery, which is idempotent
            log.exception("ack failed")

    # ------------------------------------------------------------------ store (writer thread)

    def _writer_loop(self) -> None:
        cfg = self.settings.database
        while True:
            try:
                first = self.queue.get(timeout=0.2)
            except queue.Empty:
                first = None
            batch = [first] if first is not None else []
            while len(batch) < cfg.batch_size:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is not None:
                    batch.append(nxt)
            items = [b for b in batch if b is not None]
            with self._lock:
                rejections = dict(self._pending_rejections)
                self._pending_rejections.clear()
            if items or rejections:
                self._store(items, rejections)
            if self._stop.is_set() and self.queue.empty():
                self._flush_live(force=True)
                return

    def _store(self, items: list[_Item], rejections: dict[str, int]) -> None:
        """Store ``items`` in one transaction, then acknowledge them.

        A database that is unreachable or locked keeps the batch (retried, nothing acknowledged).
        Any other failure is a message the store refuses (a value the database cannot hold, a bug
        on one payload): the batch is split in halves and each half stored on its own, so one bad
        message among n costs about 2·log2(n) extra transactions (not n, as retrying one by one
        did) and the good messages around it are stored. The message at fault is rejected as
        ``handler_error``, logged with its event and acknowledged (counted, never silently lost).
        """
        try:
            out = self._apply(items, rejections)
        except _Refused as refused:
            if refused.stopping:
                return
            exc = refused.__cause__
            if len(items) == 1:
                self._reject_stored(items[0], exc, rejections)
                return
            half = len(items) // 2
            log.warning("batch of %d refused (%s); storing it in halves", len(items), exc)
            self._store(items[:half], rejections)
            self._store(items[half:], {})
            return
        self._ack_stored(items)
        self.last_batch_at = time.time()
        with self._lock:
            self.stats["accepted"] += out.accepted
            self.stats["duplicates"] += out.duplicates
            self.stats["status"] += len(out.statuses)
            self.stats["health"] += len(out.health)
            self.stats["batches"] += 1
        self.known_devices.update(out.unregistered)
        self._after_commit(out)

    def _apply(self, items: list[_Item], rejections: dict[str, int]) -> BatchOutcome:
        """One transaction; database outages are retried here, other failures raise :class:`_Refused`."""
        attempt = 0
        while True:
            try:
                return apply_batch(
                    self.store, [i.incoming for i in items], rejections, self.tz, self.known_devices
                )
            except OperationalError as exc:  # database unreachable/locked: keep the batch, retry
                attempt += 1
                log.error("database error, retrying batch of %d (%s)", len(items), exc.orig)
                if self._stop.is_set() and attempt > 3:
                    raise _Refused(stopping=True) from exc
                time.sleep(min(5.0, 0.2 * attempt))
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                with self._lock:
                    self.stats["refused_batches"] += 1
                raise _Refused(stopping=False) from exc

    def _reject_stored(self, item: _Item, exc: BaseException | None, rejections: dict[str, int]) -> None:
        """The store refused this one message: count it (with the batch's pending rejections), ack it."""
        msg = item.incoming.decoded.message
        log.error(
            "rejected %s: the store refused %s %s from %s: %r",
            HANDLER_ERROR,
            type(msg).__name__,
            getattr(msg, "event_id", ""),
            msg.device_id,
            exc,
        )
        with self._lock:
            self._pending_rejections[f"rejected:{HANDLER_ERROR}"] += 1
            self.stats[f"rejected:{HANDLER_ERROR}"] += 1
            for k, v in rejections.items():
                self._pending_rejections[k] += v
        self._ack(item.mid, item.qos)

    def _after_commit(self, out: BatchOutcome) -> None:
        if self.kpi is not None and out.offices_changed:
            self.kpi.invalidate(out.offices_changed)
        with self._live_lock:
            for office in out.offices_changed:
                self._live_pending[("office", office)] = {"kind": "office", "office_code": office}
            for dev, office in out.devices_changed.items():
                self._live_pending[("device", dev)] = {
                    "kind": "device",
                    "device_id": dev,
                    "office_code": office,
                }
        if self.alerts is not None:
            try:
                for h in out.health:
                    self.alerts.on_health(h)
                for st in out.statuses:
                    self.alerts.on_status(st)
            except Exception:
                log.exception("alert evaluation failed")

    def _live_loop(self) -> None:
        while not self._stop.wait(0.1):
            self._flush_live(force=False)

    def _flush_live(self, *, force: bool) -> None:
        if not self._live_pending:
            return
        now = time.monotonic()
        due: list[tuple[tuple[str, str], dict[str, Any]]] = []
        with self._live_lock:
            for key in list(self._live_pending):
                if not force and now - self._last_live.get(key, 0.0) < LIVE_MIN_INTERVAL_S:
                    continue
                due.append((key, self._live_pending.pop(key)))
                self._last_live[key] = now
        for key, msg in due:
            local = bool(getattr(self.live, "subscriber_count", 1))
            if self.bridge is None and not local:
                continue  # nobody listens (no browser, no other process): no KPI/state read for them
            try:
                # the KPIs only for a browser of this process: the bridge does not carry them (each
                # process's browsers fetch their own), and a busy office's day is a large read
                if msg["kind"] == "office" and self.kpi is not None and local:
                    msg["kpi_today"] = self.kpi.office_today(msg["office_code"])
                elif msg["kind"] == "device":
                    msg["state"] = self._device_state(msg["device_id"])
                self._publish(msg)
            except Exception:
                log.exception("live update failed for %s", key)

    def _publish(self, msg: dict[str, Any]) -> None:
        self.live.publish(msg)
        if self.bridge is not None:
            try:
                self.bridge.send(msg)
            except Exception:
                log.exception("live NOTIFY failed")

    def _device_state(self, device_id: str) -> str | None:
        from sqlalchemy import select

        from gateway.store.schema import device_status

        with self.store.engine.connect() as conn:
            return conn.execute(
                select(device_status.c.state).where(device_status.c.device_id == device_id)
            ).scalar()

    # ------------------------------------------------------------------ sweeper thread

    def _sweeper_loop(self) -> None:
        cfg = self.settings.alerts
        last_retention = 0.0
        while not self._stop.wait(cfg.sweep_interval_s):
            try:
                gone = self.store.sweep_offline(time.time(), cfg.offline_after_s)
                for d in gone:
                    log.warning(
                        "device %s offline: no health for %.0f s", d["device_id"], cfg.offline_after_s
                    )
                    self._publish(
                        {
                            "kind": "device",
                            "device_id": d["device_id"],
                            "office_code": d["office_code"],
                            "state": "offline",
                        }
                    )
                if self.alerts is not None:
                    self.alerts.sweep()
                    self.alerts.on_broker(self.broker_stats.snapshot())
                if self.retention is not None and (
                    time.time() - last_retention > self.settings.retention.run_every_h * 3600
                ):
                    last_retention = time.time()
                    self.retention.run()
            except Exception:
                log.exception("sweep failed")

    # ------------------------------------------------------------------ introspection

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            stats = dict(self.stats)
        return {
            "process": stats,
            "last_error": self.last_error,
            "queue_depth": self.queue.qsize(),
            "mqtt_connected": bool(self.mqtt and self.mqtt.connected.is_set()),
            "mqtt_stale_acks": self.mqtt.stale_acks if self.mqtt else 0,  # from an earlier connection
        }
