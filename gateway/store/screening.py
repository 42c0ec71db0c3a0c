"""Gateway-side checks on decoded messages, before anything is stored (docs/gateway.md#integrity).

The contract refuses what cannot be true anywhere; these checks need the receiver's state:

* ``foreign_office``: a registered device speaking under another office's topic (an old, merged
  unit code its office's unit took over is its own);
* ``foreign_counter``: a registered device (bound to a counter) sending figures for another counter;
* ``unknown_counter``: a counter (or a shared line's ``serving_counter``) outside the office's
  registered range;
* ``clock_out_of_window``: an event stamped more than ``max_clock_ahead_s`` ahead of the gateway's
  clock or older than ``max_event_age_days``; ``day_out_of_window``: a service day outside it;
* ``k_below_minimum``: a sentiment window whose ``k`` is below the gateway's own minimum;
  ``visits_implausible``: more visits than one counter can serve in the window's duration;
  ``window_overlap``: a window overlapping in time one already stored (or earlier in the batch) for
  the same office and counter, from any device: the same visits would be counted twice (a resend
  with the same ``event_id`` is a duplicate, not an overlap); a window that starts or ends outside
  the clock window above is ``clock_out_of_window``.

Each refusal is counted as ``rejected:<reason>``. Events that would move a figure and come from a
device not in the registry are *held* (stored, counted as ``quarantined``, visible on the fleet
page) instead of projected, until an operator binds the device (:func:`gateway.store.release`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from contract.payloads import (
    TICKET_EVENT_TYPES,
    Event,
    EventType,
    QueueResetEvent,
    SentimentWindowEvent,
)
from gateway.config import IntegritySettings
from gateway.store import schema as s

# Events that move a figure (KPIs, map, staff): held when their device is not registered. Fleet
# events (device.started, selftest.report, cmd.result, update.result) move none and are kept live.
FIGURE_EVENTS = frozenset({*TICKET_EVENT_TYPES, EventType.RATING_SUBMITTED, EventType.SENTIMENT_WINDOW,
                           EventType.QUEUE_RESET})
HELD_UNREGISTERED = "unregistered"


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    office_code: str
    counter: int | None
    registered: bool


def load_devices(conn: Any, device_ids: set[str]) -> dict[str, DeviceEntry]:
    """Registry rows of ``device_ids``, read in the batch's transaction (all gateway processes agree)."""
    d = s.devices
    out: dict[str, DeviceEntry] = {}
    ids = sorted(device_ids)
    for i in range(0, len(ids), 500):
        q = select(d.c.device_id, d.c.office_code, d.c.counter, d.c.registered).where(
            d.c.device_id.in_(ids[i : i + 500])
        )
        for r in conn.execute(q):
            out[r.device_id] = DeviceEntry(r.office_code, r.counter, bool(r.registered))
    return out


def load_office_counters(conn: Any, codes: set[str]) -> dict[str, int]:
    o = s.offices
    rows = conn.execute(select(o.c.code, o.c.counters).where(o.c.code.in_(sorted(codes))))
    return {r.code: int(r.counters) for r in rows}


Span = tuple[float, float, str]  # window start, end, event_id


def load_windows(conn: Any, messages: list[Any]) -> dict[tuple[str, int], list[Span]]:
    """Stored sentiment windows of the (office, counter) pairs of the batch's windows, over their span."""
    ws = [m for m in messages if isinstance(m, SentimentWindowEvent)]
    if not ws:
        return {}
    w = s.sentiment_windows
    pairs = {(m.office_code, m.data.counter) for m in ws}
    q = select(w.c.office_code, w.c.counter, w.c.window_start, w.c.window_end, w.c.event_id).where(
        w.c.office_code.in_(sorted({p[0] for p in pairs}))
        & (w.c.window_end > min(m.data.window_start.timestamp() for m in ws))
        & (w.c.window_start < max(m.data.window_end.timestamp() for m in ws))
    )
    out: dict[tuple[str, int], list[Span]] = {}
    for r in conn.execute(q):
        if (r.office_code, r.counter) in pairs:
            out.setdefault((r.office_code, r.counter), []).append((r.window_start, r.window_end, r.event_id))
    return out


def load_old_codes(conn: Any, offices: set[str]) -> dict[str, set[str]]:
    """office → the old (merged) unit codes its unit took over: a kiosk bound to the office may still
    publish under one of them (its history adds up under the new unit)."""
    o, m = s.offices, s.unit_mapping
    q = (
        select(o.c.code, m.c.old_code)
        .select_from(o.join(m, m.c.new_code == o.c.unit_code))
        .where(o.c.code.in_(sorted(offices)) & m.c.old_code.is_not(None))
    )
    out: dict[str, set[str]] = {}
    for code, old in conn.execute(q):
        out.setdefault(code, set()).add(old)
    return out


class Screen:
    """Decides, for one batch, whether each message is refused (a reason), held, or projected."""

    def __init__(
        self,
        rules: IntegritySettings,
        today: date,
        now: float,
        devices: dict[str, DeviceEntry],
        office_counters: dict[str, int],
        old_codes: dict[str, set[str]],
        windows: dict[tuple[str, int], list[Span]] | None = None,
    ) -> None:
        self.rules, self.now = rules, now
        self.devices, self.office_counters, self.old_codes = devices, office_counters, old_codes
        self.windows = windows if windows is not None else {}  # grows with the batch's accepted windows
        self.first_day = today - timedelta(days=rules.max_event_age_days + 1)
        self.last_day = today + timedelta(days=1)
        self.first_ts = now - rules.max_event_age_days * 86400
        self.last_ts = now + rules.max_clock_ahead_s

    def registered(self, device_id: str) -> DeviceEntry | None:
        entry = self.devices.get(device_id)
        return entry if entry is not None and entry.registered else None

    def refuse_message(self, device_id: str, office_code: str) -> str | None:
        """Any message kind: a registered device must speak for its own office."""
        entry = self.registered(device_id)
        if (
            entry is not None
            and entry.office_code != office_code
            and office_code not in self.old_codes.get(entry.office_code, ())
        ):
            return "foreign_office"
        return None

    def refuse_event(self, ev: Event) -> str | None:
        reason = self.refuse_message(ev.device_id, ev.office_code)
        if reason is not None:
            return reason
        if not self.first_ts <= ev.ts.timestamp() <= self.last_ts:
            return "clock_out_of_window"
        if ev.type not in FIGURE_EVENTS:
            return None
        day = ev.data.service_day if not isinstance(ev, SentimentWindowEvent) else None
        if day is not None and not self.first_day <= day <= self.last_day:
            return "day_out_of_window"
        if isinstance(ev, QueueResetEvent):
            return None
        return self._refuse_counter(ev) or (
            self._refuse_window(ev) if isinstance(ev, SentimentWindowEvent) else None
        )

    def _refuse_counter(self, ev: Event) -> str | None:
        counter = ev.data.counter
        n = self.office_counters.get(ev.office_code)
        serving = getattr(ev.data, "serving_counter", None)  # shared lines: the calling counter
        if n is not None and (counter > n or (serving is not None and serving > n)):
            return "unknown_counter"
        entry = self.registered(ev.device_id)
        if entry is not None and entry.counter is not None and counter != entry.counter:
            return "foreign_counter"
        return None

    def _refuse_window(self, ev: SentimentWindowEvent) -> str | None:
        w = ev.data
        start, end = w.window_start.timestamp(), w.window_end.timestamp()
        if not (self.first_ts <= start and end <= self.last_ts):
            return "clock_out_of_window"
        if w.k < self.rules.min_k or w.visits < self.rules.min_k:
            return "k_below_minimum"
        hours = (w.window_end - w.window_start).total_seconds() / 3600
        if w.visits > max(self.rules.min_k, math.ceil(hours * self.rules.window_max_visits_per_hour)):
            return "visits_implausible"
        spans = self.windows.setdefault((ev.office_code, w.counter), [])
        if any(eid != ev.event_id and s0 < end and start < e0 for s0, e0, eid in spans):
            return "window_overlap"
        if not self.held(ev):  # held windows are not stored as windows: they overlap nothing
            spans.append((start, end, ev.event_id))
        return None

    def held(self, ev: Event) -> bool:
        """Held (quarantined) rather than projected: a figure event from an unregistered device."""
        return ev.type in FIGURE_EVENTS and self.registered(ev.device_id) is None
