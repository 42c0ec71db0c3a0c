"""Fleet alerts: offline, outbox growing, clock unsynchronised, temperature high; and the broker's
queue: ``broker_queue_high`` (messages held ≥ ``[alerts] broker_queue_high``) and ``broker_dropping``
(Mosquitto's dropped-message counter grew, or is above 0 when first seen: it dropped while we were
away). Broker alerts use the device id ``broker`` and an empty office code.

One open alert per (device, kind) in the ``alerts`` table (deduplicated: a condition that persists
does not alert again); opening and resolving are POSTed as JSON to ``[alerts] webhook_url`` from a
background thread with retries, so a slow receiver never slows ingest.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import and_, select, update

from contract.payloads import Health, Status
from gateway.broker_stats import BrokerSnapshot
from gateway.config import AlertSettings
from gateway.store import Store
from gateway.store import schema as s

log = logging.getLogger("motcua.gateway.alerts")

TEMP_HYSTERESIS_C = 5.0
BROKER = "broker"  # device_id of broker alerts
DROP_QUIET_S = 600.0  # broker_dropping resolves after this long without new drops
QUEUE_HYSTERESIS = 0.8  # broker_queue_high resolves below this share of the threshold


class AlertManager:
    def __init__(self, store: Store, cfg: AlertSettings) -> None:
        self.store = store
        self.cfg = cfg
        self._depths: dict[str, deque[int]] = defaultdict(lambda: deque(maxlen=cfg.outbox_growing_checks + 1))
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self._open_keys: set[tuple[str, str]] = set()  # cache of open (device, kind): skips needless queries
        self._dropped: float | None = None  # broker's dropped counter at the last look
        self._last_drop_at = 0.0

    def start(self) -> None:
        a = s.alerts
        with self.store.engine.connect() as conn:
            self._open_keys = {
                (r.device_id, r.kind)
                for r in conn.execute(select(a.c.device_id, a.c.kind).where(a.c.closed_at.is_(None)))
            }
        if self.cfg.webhook_url and self._thread is None:
            self._thread = threading.Thread(target=self._deliver_loop, name="alerts-webhook", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._outbox.put(None)
            self._thread.join(timeout=15)
            self._thread = None

    # ------------------------------------------------------------------ conditions

    def on_health(self, h: Health) -> None:
        dev, office = h.device_id, h.office_code
        self.close(dev, "offline")
        if h.cpu_temp_c is not None:
            if h.cpu_temp_c >= self.cfg.temp_high_c:
                self.open(
                    dev,
                    office,
                    "temp_high",
                    f"CPU {h.cpu_temp_c:.1f} °C ≥ {self.cfg.temp_high_c:.0f} °C (nhiệt độ cao)",
                )
            elif h.cpu_temp_c < self.cfg.temp_high_c - TEMP_HYSTERESIS_C:
                self.close(dev, "temp_high")
        if not h.clock_synced:
            self.open(dev, office, "clock_unsynced", "wall clock not NTP-synchronised (đồng hồ chưa đồng bộ)")
        else:
            self.close(dev, "clock_unsynced")
        depths = self._depths[dev]
        depths.append(h.outbox_depth)
        n = self.cfg.outbox_growing_checks
        growing = len(depths) == n + 1 and all(b > a for a, b in zip(depths, list(depths)[1:], strict=False))
        if growing or h.outbox_depth > self.cfg.outbox_high:
            self.open(
                dev,
                office,
                "outbox_growing",
                f"outbox {h.outbox_depth} events and growing (hàng đợi gửi tăng)",
            )
        elif h.outbox_depth == 0 or (len(depths) > 1 and depths[-1] < depths[-2]):
            self.close(dev, "outbox_growing")

    def on_status(self, st: Status) -> None:
        if st.state == "offline":
            self.open(st.device_id, st.office_code, "offline", f"offline: {st.reason} (ngoại tuyến)")
        else:
            self.close(st.device_id, "offline")

    def on_broker(self, snap: BrokerSnapshot) -> None:
        """Broker queue depth and drops (from ``$SYS``; nothing to do when the broker sends none)."""
        stored = snap.values.get("stored_messages")
        if stored is not None:
            high = self.cfg.broker_queue_high
            if stored >= high:
                self.open(
                    BROKER,
                    "",
                    "broker_queue_high",
                    f"broker holds {stored:,.0f} messages ≥ {high:,} (hàng đợi broker cao): "
                    "is the gateway draining?",
                )
            elif stored < high * QUEUE_HYSTERESIS:
                self.close(BROKER, "broker_queue_high")
        dropped = snap.values.get("dropped_messages")
        if dropped is None:
            return
        before, self._dropped = self._dropped, dropped
        now = time.monotonic()
        grew = dropped > 0 if before is None or dropped < before else dropped > before  # restart resets it
        if grew:
            self._last_drop_at = now
            self.open(
                BROKER,
                "",
                "broker_dropping",
                f"broker dropped {dropped:,.0f} messages since it started (broker bỏ tin: hàng đợi "
                "đầy): events acknowledged to kiosks are lost; raise max_queued_messages",
            )
        elif now - self._last_drop_at > DROP_QUIET_S:
            self.close(BROKER, "broker_dropping")

    def sweep(self) -> None:
        """Offline alerts for devices the sweeper (or another gateway process) marked offline."""
        ds = s.device_status
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(ds.c.device_id, ds.c.office_code, ds.c.reason).where(ds.c.state == "offline")
            ).all()
        for r in rows:
            self.open(r.device_id, r.office_code, "offline", f"offline: {r.reason} (ngoại tuyến)")

    # ------------------------------------------------------------------ open / close (deduplicated)

    def open(self, device_id: str, office_code: str, kind: str, message: str) -> int | None:
        if (device_id, kind) in self._open_keys:
            return None
        a = s.alerts
        now = time.time()
        with self._lock, self.store.engine.begin() as conn:
            self._open_keys.add((device_id, kind))
            exists = conn.execute(
                select(a.c.id).where(
                    and_(a.c.device_id == device_id, a.c.kind == kind, a.c.closed_at.is_(None))
                )
            ).first()
            if exists:
                return None
            alert_id = conn.execute(
                a.insert()
                .values(
                    device_id=device_id,
                    office_code=office_code,
                    kind=kind,
                    opened_at=now,
                    message=message,
                    delivered=False,
                )
                .returning(a.c.id)
            ).scalar_one()
        log.warning("alert %s %s: %s", kind, device_id, message)
        self._enqueue(
            {
                "alert_id": alert_id,
                "state": "open",
                "kind": kind,
                "device_id": device_id,
                "office_code": office_code,
                "message": message,
                "at": _iso(now),
            }
        )
        return alert_id

    def close(self, device_id: str, kind: str) -> None:
        if (device_id, kind) not in self._open_keys:
            return
        a = s.alerts
        now = time.time()
        with self._lock, self.store.engine.begin() as conn:
            self._open_keys.discard((device_id, kind))
            rows = conn.execute(
                select(a.c.id, a.c.office_code, a.c.message).where(
                    and_(a.c.device_id == device_id, a.c.kind == kind, a.c.closed_at.is_(None))
                )
            ).all()
            if not rows:
                return
            conn.execute(update(a).where(a.c.id.in_([r.id for r in rows])).values(closed_at=now))
        for r in rows:
            self._enqueue(
                {
                    "alert_id": r.id,
                    "state": "resolved",
                    "kind": kind,
                    "device_id": device_id,
                    "office_code": r.office_code,
                    "message": r.message,
                    "at": _iso(now),
                }
            )

    # ------------------------------------------------------------------ webhook

    def _enqueue(self, payload: dict[str, Any]) -> None:
        if self.cfg.webhook_url:
            self._outbox.put(payload)

    def _deliver_loop(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while True:
                payload = self._outbox.get()
                if payload is None:
                    return
                for attempt in range(4):
                    try:
                        r = client.post(self.cfg.webhook_url, json=payload)
                        if r.status_code < 300:
                            self.sent += 1
                            if payload["state"] == "open":
                                with self.store.engine.begin() as conn:
                                    conn.execute(
                                        update(s.alerts)
                                        .where(s.alerts.c.id == payload["alert_id"])
                                        .values(delivered=True)
                                    )
                            break
                        log.warning("webhook answered %s", r.status_code)
                    except httpx.HTTPError as exc:
                        log.warning("webhook failed: %s", exc)
                    time.sleep(0.5 * 2**attempt)
                else:
                    self.failed += 1


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()
