"""A minimal simulated kiosk for gateway tests and benches: builds contract messages, publishes them."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.codec import encode
from contract.payloads import Event, EventType, Health, Status
from contract.topics import events_topic, health_topic, status_topic

BOOT = "boot-test-0001"


class EventFactory:
    """Builds valid events for one device with increasing ``seq``."""

    def __init__(self, device_id: str, office_code: str, counter: int = 1) -> None:
        self.device_id, self.office_code, self.counter = device_id, office_code, counter
        self.seq = 0

    def event(self, etype: EventType, data: dict[str, Any], ts: datetime | None = None) -> Event:
        self.seq += 1
        return Event(
            device_id=self.device_id,
            office_code=self.office_code,
            ts=ts or datetime.now(UTC),
            clock_synced=True,
            event_id=str(uuid.uuid4()),
            seq=self.seq,
            type=etype,
            boot_id=BOOT,
            mono_ms=self.seq * 1000,
            data=data,
        )

    def ticket(self, no: int, day: date) -> dict[str, Any]:
        return {
            "ticket_no": no,
            "label": f"{no:04d}",
            "counter": self.counter,
            "service_day": day.isoformat(),
        }

    def visit(
        self,
        no: int,
        day: date,
        issued: datetime,
        wait_s: float,
        service_s: float | None,
        officer: str | None = "officer-a",
        no_show: bool = False,
    ) -> list[Event]:
        """ticket.issued, ticket.called / no_show, service.completed with the given durations."""
        t = self.ticket(no, day)
        out = [self.event(EventType.TICKET_ISSUED, {**t, "waiting_ahead": 0}, issued)]
        if no_show:
            out.append(
                self.event(
                    EventType.TICKET_NO_SHOW, {**t, "wait_s": wait_s}, issued + timedelta(seconds=wait_s)
                )
            )
            return out
        called = issued + timedelta(seconds=wait_s)
        out.append(
            self.event(
                EventType.TICKET_CALLED,
                {**t, "wait_s": wait_s, "waiting_after": 0, "officer_id": officer},
                called,
            )
        )
        if service_s is not None:
            out.append(
                self.event(
                    EventType.SERVICE_COMPLETED,
                    {**t, "wait_s": wait_s, "service_s": service_s, "officer_id": officer},
                    called + timedelta(seconds=service_s),
                )
            )
        return out

    def rating(
        self,
        no: int | None,
        day: date,
        level: int,
        ts: datetime,
        scale: int = 3,
        officer: str | None = "officer-a",
    ) -> Event:
        labels = {1: "Không hài lòng", 2: "Hài lòng", 3: "Rất hài lòng"}
        return self.event(
            EventType.RATING_SUBMITTED,
            {
                "ticket_no": no,
                "service_day": day.isoformat(),
                "counter": self.counter,
                "level": level,
                "scale": scale,
                "level_label": labels.get(level, f"mức {level}"),
                "reason": "waited_too_long" if level == 1 else None,
                "officer_id": officer,
            },
            ts,
        )

    def sentiment(self, start: datetime, visits: int, score: float) -> Event:
        return self.event(
            EventType.SENTIMENT_WINDOW,
            {
                "counter": self.counter,
                "window_start": start.isoformat(),
                "window_end": (start + timedelta(minutes=30)).isoformat(),
                "visits": visits,
                "k": 5,
                "frames": visits * 20,
                "class_shares": {"happy": 0.5, "neutral": 0.5},
                "score": score,
            },
            start,
        )

    def health(self, **kw: Any) -> Health:
        base = {
            "device_id": self.device_id,
            "office_code": self.office_code,
            "ts": datetime.now(UTC),
            "clock_synced": True,
            "boot_id": BOOT,
            "uptime_s": 10.0,
            "cpu_temp_c": 50.0,
            "outbox_depth": 0,
            "sw_version": "1.0.0",
            "model_versions": {"expr": "fer-mx-1"},
            "interval_s": 1.0,
        }
        base.update(kw)
        return Health(**base)

    def status(self, state: str = "online", reason: str = "connected") -> Status:
        return Status(
            device_id=self.device_id,
            office_code=self.office_code,
            ts=datetime.now(UTC),
            clock_synced=True,
            state=state,
            reason=reason,
            sw_version="1.0.0",
        )


class Publisher:
    """A paho client that publishes QoS 1 with a cap on messages in flight (see PLATFORM-NOTES)."""

    def __init__(
        self,
        port: int,
        client_id: str | None = None,
        will: tuple[str, bytes] | None = None,
        max_inflight: int = 500,
        clean_session: bool = True,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"pub-{uuid.uuid4().hex[:8]}",
            clean_session=clean_session,
        )
        self.client.max_inflight_messages_set(max_inflight)
        self._sem = threading.BoundedSemaphore(max_inflight)
        self.client.on_publish = lambda *_a: self._sem.release()
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.connected = threading.Event()
        self.client.on_connect = lambda *_a: self.connected.set()
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        if not self.connected.wait(30):
            raise TimeoutError("publisher could not connect")

    def raw(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self._sem.acquire()
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._sem.release()
            raise RuntimeError(f"publish failed rc={info.rc}")

    def event(self, ev: Event) -> None:
        self.raw(events_topic(ev.office_code, ev.device_id), encode(ev))

    def health(self, h: Health) -> None:
        self.raw(health_topic(h.office_code, h.device_id), encode(h), qos=1)

    def status(self, st: Status) -> None:
        self.raw(status_topic(st.office_code, st.device_id), encode(st), retain=True)

    def flush(self, timeout: float = 60) -> None:
        """Wait until every publish has been acknowledged."""
        for _ in range(self._sem._initial_value):  # type: ignore[attr-defined]
            if not self._sem.acquire(timeout=timeout):
                raise TimeoutError("publishes not acknowledged")
        for _ in range(self._sem._initial_value):  # type: ignore[attr-defined]
            self._sem.release()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
