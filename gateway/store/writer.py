"""Apply a batch of decoded messages in one transaction (executemany; idempotent by event_id).

Order inside the transaction: screen (:mod:`gateway.store.screening`: refusals counted by reason,
figure events of unregistered devices held), raw events in with ``INSERT ... ON CONFLICT DO
NOTHING RETURNING`` so exactly the new ones are known (even with several gateway processes on one
PostgreSQL), fleet rows (status, health), then one projector per event type
(:mod:`gateway.store.projectors`) for the new, not held events, then the ratings of the visits
touched are decided again (:mod:`gateway.store.ratings`). Derived upserts are idempotent, so a
replay changes nothing; counters are added in the same transaction.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic_core import to_json
from sqlalchemy import case, func, select, update

from contract.codec import Decoded
from contract.payloads import Event, EventAdapter, Health, RatingSubmittedEvent, Status
from gateway.store import schema as s
from gateway.store.db import Store
from gateway.store.pgtypes import insert_events
from gateway.store.projectors import CONFLICTING_VISIT, Projection, VisitKey
from gateway.store.ratings import reconcile
from gateway.store.rollup_deltas import RollupDeltas, visit_keys
from gateway.store.screening import (
    HELD_UNREGISTERED,
    Screen,
    load_devices,
    load_office_counters,
    load_old_codes,
    load_windows,
)
from gateway.ticket_kinds import record_kinds


@dataclass(slots=True)
class Incoming:
    decoded: Decoded
    received_at: float
    # an event's row but ``held`` (:func:`event_row`), built by the receiving thread (gateway/ingest.py)
    # while the writer thread waits on the database; else built here
    row: tuple[Any, ...] | None = None


@dataclass
class BatchOutcome:
    accepted: int = 0
    duplicates: int = 0
    new_events: list[Event] = field(default_factory=list)
    offices_changed: set[str] = field(default_factory=set)
    devices_changed: dict[str, str] = field(default_factory=dict)  # device_id -> office_code
    health: list[Health] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    unregistered: set[str] = field(default_factory=set)
    rejected: Counter[str] = field(default_factory=Counter)  # gateway-side refusals by reason
    held: int = 0


@dataclass
class _Sorted:
    events: list[tuple[Event, float, str | None]] = field(default_factory=list)  # event, received, held
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # their rows (EVENT_COLS), same order
    status_final: dict[str, tuple[Status, float]] = field(default_factory=dict)
    health_final: dict[str, tuple[Health, float]] = field(default_factory=dict)
    revive: dict[str, tuple[str, float]] = field(default_factory=dict)  # health/events after last status


def _screen_for(conn: Any, messages: list[Any], tz: ZoneInfo, store: Store) -> Screen:
    devices = load_devices(conn, {m.device_id for m in messages})
    offices = load_office_counters(conn, {m.office_code for m in messages})
    old_codes = load_old_codes(conn, {d.office_code for d in devices.values() if d.registered})
    now = time.time()
    return Screen(store.integrity, datetime.fromtimestamp(now, tz).date(), now, devices, offices, old_codes,
                  load_windows(conn, messages))


def _sort(items: list[Incoming], screen: Screen, out: BatchOutcome) -> _Sorted:
    got = _Sorted()
    seen: set[str] = set()
    for it in items:
        m = it.decoded.message
        reason = screen.refuse_event(m) if isinstance(m, Event) else screen.refuse_message(
            m.device_id, m.office_code
        )
        if reason is not None:
            out.rejected[reason] += 1
            continue
        if screen.registered(m.device_id) is None:
            out.unregistered.add(m.device_id)
        if isinstance(m, Event):
            if m.event_id in seen:
                out.duplicates += 1
                continue
            seen.add(m.event_id)
            held = HELD_UNREGISTERED if screen.held(m) else None
            got.events.append((m, it.received_at, held))
            got.rows.append((*(it.row or event_row(m, it.received_at)), held))
            got.revive[m.device_id] = (m.office_code, it.received_at)
        elif isinstance(m, Status):
            got.status_final[m.device_id] = (m, it.received_at)
            got.revive.pop(m.device_id, None)
            out.statuses.append(m)
            out.devices_changed[m.device_id] = m.office_code
        elif isinstance(m, Health):
            got.health_final[m.device_id] = (m, it.received_at)
            got.revive[m.device_id] = (m.office_code, it.received_at)
            out.health.append(m)
            out.devices_changed[m.device_id] = m.office_code
    return got


def event_row(m: Event, received_at: float) -> tuple[Any, ...]:
    """The event's row in EVENT_COLS order but the last column (``held``, decided in the transaction);
    ``data`` as JSON text (pydantic-core's serialiser)."""
    return (
        m.event_id, m.type.value, m.device_id, m.office_code, m.ts.timestamp(), m.clock_synced, m.seq,
        m.boot_id, m.mono_ms, received_at, to_json(m.data).decode(),
    )


def apply_batch(
    store: Store, items: list[Incoming], counter_deltas: dict[str, int], tz: ZoneInfo, known_devices: set[str]
) -> BatchOutcome:
    """Store ``items`` in one transaction; ``counter_deltas`` (rejections) are added in it too.

    ``known_devices`` is not used: the registry is read inside the transaction, so that several
    gateway processes and a device bound a moment ago are seen alike."""
    del known_devices
    out = BatchOutcome()
    with store.writer_engine.begin() as conn:
        screen = _screen_for(conn, [it.decoded.message for it in items], tz, store)
        got = _sort(items, screen, out)
        _record_unregistered(store, conn, items, out.unregistered)
        rows = got.rows
        new_ids = insert_events(conn, store.dialect, rows)
        out.accepted = len(new_ids)
        out.duplicates += len(rows) - len(new_ids)
        out.new_events = [m for m, _r, _h in got.events if m.event_id in new_ids]
        out.held = sum(1 for m, _r, h in got.events if h is not None and m.event_id in new_ids)
        _write_status(store, conn, got)
        projectable = [m for m, _r, h in got.events if h is None and m.event_id in new_ids]
        deltas = Counter(counter_deltas)
        deltas.update(_project(store, conn, tz, projectable, out))
        _write_health(store, conn, got.health_final)
        deltas.update({f"rejected:{k}": v for k, v in out.rejected.items()})
        deltas.update(
            accepted=out.accepted,
            duplicates=out.duplicates,
            status=len(out.statuses),
            health=len(out.health),
            quarantined=out.held,
        )
        store.add_counters(conn, dict(deltas))
    return out


def _project(store: Store, conn: Any, tz: ZoneInfo, events: list[Event], out: BatchOutcome) -> dict[str, int]:
    """Run each event's projector, write the rows, decide the ratings of the visits touched, and add
    the change of their contribution to the rollups (gateway.store.rollup_deltas)."""
    p = Projection(conn, store.dialect, tz, store.integrity.min_service_s)
    rollup = RollupDeltas(conn, store.dialect, tz, store.integrity.min_k)
    rollup.before(visit_keys(events) | p.load_waiting(events), events)  # locks the counter-days first
    p.load_stated(events)
    for ev in events:
        p.project(ev)
    p.flush()
    record_kinds(conn, store.dialect, events, set(p.conflicts))  # kind and field (gateway/ticket_kinds.py)
    deltas: dict[str, int] = {}
    if p.conflicts:  # restated visit steps: kept, not projected, counted (gateway.store.projectors)
        e = s.events
        for i in range(0, len(p.conflicts), 500):
            ids = p.conflicts[i : i + 500]
            conn.execute(update(e).where(e.c.event_id.in_(ids)).values(held=CONFLICTING_VISIT))
        deltas[f"rejected:{CONFLICTING_VISIT}"] = len(p.conflicts)
    rated = [ev for ev in events if isinstance(ev, RatingSubmittedEvent) and ev.data.ticket_no is not None]
    keys: set[VisitKey] = {
        (ev.office_code, ev.data.counter, ev.data.service_day.isoformat(), ev.data.ticket_no) for ev in rated
    }
    out.offices_changed |= p.offices_changed
    out.devices_changed.update(p.devices_changed)
    new_ids = [ev.event_id for ev in rated]
    decided, flag_changes = reconcile(conn, store.dialect, store.integrity, p.decisive, keys, new_ids)
    deltas |= decided
    rollup.after(flag_changes, p.windows)  # rollups, same transaction
    return deltas


def _record_unregistered(store: Store, conn: Any, items: list[Incoming], unregistered: set[str]) -> None:
    """Devices seen on the wire but not in the registry: a row with ``registered = false``."""
    if not unregistered:
        return
    offices = {it.decoded.message.device_id: it.decoded.message.office_code for it in items}
    rows = [
        {"device_id": d, "office_code": offices[d], "counter": None, "registered": False,
         "created_at": items[0].received_at}
        for d in sorted(unregistered)
    ]
    conn.execute(store.insert(s.devices).on_conflict_do_nothing(), rows)


def _write_status(store: Store, conn: Any, got: _Sorted) -> None:
    """The last status of the batch decides, unless health or events came after it (then online)."""
    ds = s.device_status
    rows = [
        {"device_id": dev, "office_code": st.office_code, "state": st.state, "since": rcv,
         "reason": st.reason, "last_seen": rcv, "sw_version": st.sw_version}
        for dev, (st, rcv) in got.status_final.items()
        if dev not in got.revive
    ]
    if rows:
        stmt = store.insert(ds)
        stmt = stmt.on_conflict_do_update(
            index_elements=["device_id"],
            set_={
                "office_code": stmt.excluded.office_code,
                "since": case((ds.c.state == stmt.excluded.state, ds.c.since), else_=stmt.excluded.since),
                "state": stmt.excluded.state,
                "reason": stmt.excluded.reason,
                "last_seen": stmt.excluded.last_seen,
                "sw_version": stmt.excluded.sw_version,
            },
        )
        conn.execute(stmt, rows)
    if not got.revive:
        return
    rows = []
    for dev, (office, rcv) in got.revive.items():
        sw = got.health_final[dev][0].sw_version if dev in got.health_final else (
            got.status_final[dev][0].sw_version if dev in got.status_final else None
        )
        rows.append({"device_id": dev, "office_code": office, "state": "online", "since": rcv,
                     "reason": "connected", "last_seen": rcv, "sw_version": sw})
    stmt = store.insert(ds)
    offline = ds.c.state == "offline"
    stmt = stmt.on_conflict_do_update(
        index_elements=["device_id"],
        set_={
            "state": "online",
            "since": case((offline, stmt.excluded.since), else_=ds.c.since),
            "reason": case((offline, "connected"), else_=ds.c.reason),
            "last_seen": stmt.excluded.last_seen,
            "sw_version": func.coalesce(stmt.excluded.sw_version, ds.c.sw_version),
        },
    )
    conn.execute(stmt, rows)


def _write_health(store: Store, conn: Any, health_final: dict[str, tuple[Health, float]]) -> None:
    if not health_final:
        return
    rows = [
        {"device_id": dev, "office_code": h.office_code, "received_at": rcv, "ts": h.ts.timestamp(),
         "clock_synced": h.clock_synced, "cpu_temp_c": h.cpu_temp_c, "outbox_depth": h.outbox_depth,
         "interval_s": h.interval_s, "sw_version": h.sw_version, "last_error": h.last_error,
         "data": h.model_dump(mode="json")}
        for dev, (h, rcv) in health_final.items()
    ]
    stmt = store.insert(s.health_latest)
    stmt = stmt.on_conflict_do_update(
        index_elements=["device_id"], set_={c: getattr(stmt.excluded, c) for c in rows[0] if c != "device_id"}
    )
    conn.execute(stmt, rows)


# ------------------------------------------------------------------------------ release held events


def _stored_event(row: Any) -> Event:
    data = row.data if isinstance(row.data, dict) else json.loads(row.data)
    return EventAdapter.validate_python(
        {"event_id": row.event_id, "device_id": row.device_id, "office_code": row.office_code,
         "ts": datetime.fromtimestamp(row.ts, UTC), "clock_synced": row.clock_synced, "seq": row.seq,
         "type": row.type, "boot_id": row.boot_id, "mono_ms": row.mono_ms, "data": data}
    )


def release_held(store: Store, device_id: str, tz: ZoneInfo) -> dict[str, int]:
    """Project a bound device's held events through the same rules as live ones (its registered
    office and counter now apply: the others stay held with the refusal as the reason)."""
    e = s.events
    out = BatchOutcome()
    released: Counter[str] = Counter()
    with store.engine.begin() as conn:
        rows = conn.execute(
            select(e).where((e.c.device_id == device_id) & (e.c.held == HELD_UNREGISTERED)).order_by(e.c.seq)
        ).all()
        events = [_stored_event(r) for r in rows]
        screen = _screen_for(conn, events, tz, store)
        ok: list[Event] = []
        for ev in events:
            reason = screen.refuse_event(ev) or (HELD_UNREGISTERED if screen.held(ev) else None)
            if reason is None:
                ok.append(ev)
            released["released" if reason is None else f"held:{reason}"] += 1
            conn.execute(update(e).where(e.c.event_id == ev.event_id).values(held=reason))
        deltas = _project(store, conn, tz, ok, out)
        restated = deltas.get(f"rejected:{CONFLICTING_VISIT}", 0)  # restated steps: held again
        if restated:
            released["released"] -= restated
            released[f"held:{CONFLICTING_VISIT}"] += restated
        store.add_counters(conn, {**deltas, "released": released["released"]})
    return dict(released) | {"offices_changed": len(out.offices_changed)}
