"""Builds contract envelopes (events, status, health) for this device."""

from __future__ import annotations

import uuid
from typing import Any

from contract.codec import encode
from contract.payloads import Event, EventType, Status
from device import __version__ as SW_VERSION
from device.clock import Clock


class EventBuilder:
    """Turns (type, data) into the encoded, validated ``Event`` payload stored in the outbox."""

    def __init__(self, device_id: str, office_code: str, clock: Clock) -> None:
        self.device_id, self.office_code, self.clock = device_id, office_code, clock

    def envelope(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "office_code": self.office_code,
            "ts": self.clock.wall(),
            "clock_synced": self.clock.clock_synced(),
        }

    def builder(self, etype: EventType, data: dict[str, Any]):
        """A payload builder for :meth:`device.store.Store.append_event` (called with the seq)."""

        def build(seq: int) -> tuple[str, bytes]:
            event_id = str(uuid.uuid4())
            ev = Event(
                **self.envelope(),
                event_id=event_id,
                seq=seq,
                type=etype,
                boot_id=self.clock.boot_id,
                mono_ms=int(self.clock.monotonic() * 1000),
                data=data,
            )
            return event_id, encode(ev)

        return build

    def status(self, state: str, reason: str) -> bytes:
        return encode(Status(**self.envelope(), state=state, reason=reason, sw_version=SW_VERSION))
