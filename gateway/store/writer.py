"""Apply a batch of decoded messages in one transaction (executemany; idempotent by event_id).

Raw events go in with ``INSERT ... ON CONFLICT DO NOTHING RETURNING event_id`` so exactly the new
ones are known, even with several gateway processes on one PostgreSQL; only those feed the derived
tables, whose upserts are themselves idempotent (keys and COALESCE), so a replay changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic_core import to_json
from sqlalchemy import and_, case, func, select, update

from contract.codec import Decoded
from contract.payloads import Event, EventType, Health, Status
from gateway.store import schema as s
from gateway.store.db import Store

VISIT_COLS = (
    "device_id",
    "label",
    "issued_at",
    "called_at",
    "completed_at",
    "no_show_at",
    "wait_s",
    "service_s",
    "officer_id",
    "recalls",
)


@dataclass
class Incoming:
    decoded: Decoded
    received_at: float


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


def _epoch(dt: datetime) -> float:
    return dt.timestamp()


def apply_batch(
    store: Store, items: list[Incoming], counter_deltas: dict[str, int], tz: ZoneInfo, known_devices: set[str]
) -> BatchOutcome:
    """Store ``items`` in one transaction; ``counter_deltas`` (rejections) are added in it too."""
    out = BatchOutcome()
    ev_rows: list[tuple[Any, ...]] = []
    events_by_id: dict[str, Event] = {}
    status_final: dict[str, tuple[Status, float]] = {}
    health_final: dict[str, tuple[Health, float]] = {}
    revive: dict[str, tuple[str, float]] = {}  # device -> (office, received_at): health after last status
    seen_devices: dict[str, str] = {}

    for it in items:
        m = it.decoded.message
        seen_devices.setdefault(m.device_id, m.office_code)
        if isinstance(m, Event):
            if m.event_id in events_by_id:
                out.duplicates += 1
                continue
            events_by_id[m.event_id] = m
            ev_rows.append(  # in _EVENT_COLS order; data as JSON text (pydantic-core's serialiser)
                (
                    m.event_id,
                    m.type.value,
                    m.device_id,
                    m.office_code,
                    m.ts.timestamp(),
                    m.clock_synced,
                    m.seq,
                    m.boot_id,
                    m.mono_ms,
                    it.received_at,
                    to_json(m.data).decode(),
                )
            )
            revive[m.device_id] = (m.office_code, it.received_at)
        elif isinstance(m, Status):
            status_final[m.device_id] = (m, it.received_at)
            revive.pop(m.device_id, None)
            out.statuses.append(m)
            out.devices_changed[m.device_id] = m.office_code
        elif isinstance(m, Health):
            health_final[m.device_id] = (m, it.received_at)
            revive[m.device_id] = (m.office_code, it.received_at)
            out.health.append(m)
            out.devices_changed[m.device_id] = m.office_code

    with store.engine.begin() as conn:
        # devices seen on the wire but not in the registry: recorded as unregistered
        unknown = [d for d in seen_devices if d not in known_devices]
        if unknown:
            rows = [
                {
                    "device_id": d,
                    "office_code": seen_devices[d],
                    "counter": None,
                    "registered": False,
                    "created_at": items[0].received_at,
                }
                for d in unknown
            ]
            conn.execute(store.insert(s.devices).on_conflict_do_nothing(), rows)
            out.unregistered.update(unknown)

        new_ids: set[str] = set()
        if ev_rows and store.dialect == "sqlite":
            new_ids = _insert_events_sqlite(conn, ev_rows)
        elif ev_rows:
            new_ids = _insert_events_pg(conn, ev_rows)
        out.accepted = len(new_ids)
        out.duplicates += len(ev_rows) - len(new_ids)
        out.new_events = [events_by_id[i] for i in events_by_id if i in new_ids]

        # status: the last status message of the batch decides, unless health came after it
        now_rows = []
        for dev, (st, rcv) in status_final.items():
            if dev in revive:
                continue
            now_rows.append(
                {
                    "device_id": dev,
                    "office_code": st.office_code,
                    "state": st.state,
                    "since": rcv,
                    "reason": st.reason,
                    "last_seen": rcv,
                    "sw_version": st.sw_version,
                }
            )
        if now_rows:
            stmt = store.insert(s.device_status)
            ds = s.device_status
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
            conn.execute(stmt, now_rows)
        # health or events: the device is alive; an offline row turns online
        if revive:
            rows = []
            for dev, (office, rcv) in revive.items():
                sw = (
                    health_final[dev][0].sw_version
                    if dev in health_final
                    else (status_final[dev][0].sw_version if dev in status_final else None)
                )
                rows.append(
                    {
                        "device_id": dev,
                        "office_code": office,
                        "state": "online",
                        "since": rcv,
                        "reason": "connected",
                        "last_seen": rcv,
                        "sw_version": sw,
                    }
                )
            stmt = store.insert(s.device_status)
            ds = s.device_status
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
        # derived rows after the status rows exist (self-test and start-up reports update them)
        _derive(store, conn, out, tz)
        if health_final:
            rows = []
            for dev, (h, rcv) in health_final.items():
                rows.append(
                    {
                        "device_id": dev,
                        "office_code": h.office_code,
                        "received_at": rcv,
                        "ts": _epoch(h.ts),
                        "clock_synced": h.clock_synced,
                        "cpu_temp_c": h.cpu_temp_c,
                        "outbox_depth": h.outbox_depth,
                        "interval_s": h.interval_s,
                        "sw_version": h.sw_version,
                        "last_error": h.last_error,
                        "data": h.model_dump(mode="json"),
                    }
                )
            stmt = store.insert(s.health_latest)
            stmt = stmt.on_conflict_do_update(
                index_elements=["device_id"],
                set_={c: getattr(stmt.excluded, c) for c in rows[0] if c != "device_id"},
            )
            conn.execute(stmt, rows)
        deltas = dict(counter_deltas)
        deltas["accepted"] = deltas.get("accepted", 0) + out.accepted
        deltas["duplicates"] = deltas.get("duplicates", 0) + out.duplicates
        deltas["status"] = deltas.get("status", 0) + len(out.statuses)
        deltas["health"] = deltas.get("health", 0) + len(out.health)
        store.add_counters(conn, deltas)
    return out


def _derive(store: Store, conn: Any, out: BatchOutcome, tz: ZoneInfo) -> None:
    visits: dict[tuple[str, int, str, int], dict[str, Any]] = {}
    ratings: list[dict[str, Any]] = []
    windows: list[dict[str, Any]] = []
    for ev in out.new_events:
        d = ev.data
        ts = _epoch(ev.ts)
        t = ev.type
        if t in (
            EventType.TICKET_ISSUED,
            EventType.TICKET_CALLED,
            EventType.TICKET_RECALLED,
            EventType.TICKET_NO_SHOW,
            EventType.SERVICE_COMPLETED,
        ):
            key = (ev.office_code, d["counter"], d["service_day"], d["ticket_no"])
            row = visits.setdefault(key, dict.fromkeys(VISIT_COLS))
            row["device_id"] = row["device_id"] or ev.device_id
            row["label"] = d["label"]
            if t is EventType.TICKET_ISSUED:
                row["issued_at"] = ts
            elif t is EventType.TICKET_CALLED:
                row["called_at"] = ts
                row["wait_s"] = d["wait_s"] if d["wait_s"] is not None else row["wait_s"]
                row["officer_id"] = d.get("officer_id") or row["officer_id"]
            elif t is EventType.TICKET_RECALLED:
                row["recalls"] = max(row["recalls"] or 0, d["recall_count"])
            elif t is EventType.TICKET_NO_SHOW:
                row["no_show_at"] = ts
                row["wait_s"] = d["wait_s"] if d["wait_s"] is not None else row["wait_s"]
            else:
                row["completed_at"] = ts
                row["wait_s"] = d["wait_s"] if d["wait_s"] is not None else row["wait_s"]
                row["service_s"] = d["service_s"]
                row["officer_id"] = d.get("officer_id") or row["officer_id"]
            out.offices_changed.add(ev.office_code)
        elif t is EventType.RATING_SUBMITTED:
            ratings.append(
                {
                    "event_id": ev.event_id,
                    "office_code": ev.office_code,
                    "counter": d["counter"],
                    "device_id": ev.device_id,
                    "service_day": d["service_day"],
                    "ticket_no": d.get("ticket_no"),
                    "ts": ts,
                    "level": d["level"],
                    "scale": d["scale"],
                    "reason": d.get("reason"),
                    "officer_id": d.get("officer_id"),
                }
            )
            out.offices_changed.add(ev.office_code)
        elif t is EventType.SENTIMENT_WINDOW:
            ws = datetime.fromisoformat(d["window_start"])
            windows.append(
                {
                    "event_id": ev.event_id,
                    "office_code": ev.office_code,
                    "counter": d["counter"],
                    "device_id": ev.device_id,
                    "service_day": ws.astimezone(tz).date().isoformat(),
                    "window_start": ws.timestamp(),
                    "window_end": datetime.fromisoformat(d["window_end"]).timestamp(),
                    "visits": d["visits"],
                    "k": d["k"],
                    "frames": d["frames"],
                    "score": d["score"],
                    "class_shares": d["class_shares"],
                }
            )
            out.offices_changed.add(ev.office_code)
        elif t is EventType.QUEUE_RESET:
            v = s.visits
            conn.execute(
                update(v)
                .where(
                    and_(
                        v.c.device_id == ev.device_id,
                        v.c.service_day == d["service_day"],
                        v.c.called_at.is_(None),
                        v.c.no_show_at.is_(None),
                        v.c.completed_at.is_(None),
                        v.c.discarded_at.is_(None),
                    )
                )
                .values(discarded_at=ts)
            )
            for key, row in visits.items():  # same-batch tickets of that device and day
                if (
                    row["device_id"] == ev.device_id
                    and key[2] == d["service_day"]
                    and not (row["called_at"] or row["no_show_at"] or row["completed_at"])
                ):
                    row["discarded_at"] = ts
            out.offices_changed.add(ev.office_code)
        elif t in (EventType.CMD_RESULT, EventType.SELFTEST_REPORT, EventType.UPDATE_RESULT):
            _command_result(conn, ev)
            if t is EventType.SELFTEST_REPORT:
                conn.execute(
                    update(s.device_status)
                    .where(s.device_status.c.device_id == ev.device_id)
                    .values(
                        last_selftest={
                            "passed": d["passed"],
                            "at": ev.ts.isoformat(),
                            "components": d["components"],
                            "cmd_id": d.get("cmd_id"),
                        }
                    )
                )
                out.devices_changed[ev.device_id] = ev.office_code
        elif t is EventType.DEVICE_STARTED:
            conn.execute(
                update(s.device_status)
                .where(s.device_status.c.device_id == ev.device_id)
                .values(last_started={**d, "at": ev.ts.isoformat()})
            )
            out.devices_changed[ev.device_id] = ev.office_code
    if visits:
        rows = []
        for (office, counter, day, no), row in visits.items():
            rows.append(
                {
                    "office_code": office,
                    "counter": counter,
                    "service_day": day,
                    "ticket_no": no,
                    "discarded_at": None,
                    **row,
                }
            )
        _upsert_visits(conn, store.dialect, rows)
    if ratings:
        conn.execute(store.insert(s.ratings).on_conflict_do_nothing(), ratings)
    if windows:
        conn.execute(store.insert(s.sentiment_windows).on_conflict_do_nothing(), windows)


# The hot path of ingest goes straight to the DB-API's executemany (SQLAlchemy's per-row compilation
# and its multi-VALUES statements cost more than the database). SQLite: a pre-select of known ids is
# exact because a SQLite database has one gateway process and one writer thread. PostgreSQL (several
# processes): INSERT ... ON CONFLICT DO NOTHING RETURNING, so only the process that stored an event
# derives from it.
_EVENT_COLS = (
    "event_id",
    "type",
    "device_id",
    "office_code",
    "ts",
    "clock_synced",
    "seq",
    "boot_id",
    "mono_ms",
    "received_at",
    "data",
)
_EVENTS_INSERT_SQLITE = (
    f"INSERT INTO events ({', '.join(_EVENT_COLS)}) VALUES ({', '.join('?' * len(_EVENT_COLS))}) "
    "ON CONFLICT (event_id) DO NOTHING"
)
_VISIT_KEY = ("office_code", "counter", "service_day", "ticket_no")
_VISIT_ALL = (*_VISIT_KEY, *VISIT_COLS, "discarded_at")
_VISITS_UPSERT = (  # PostgreSQL: the VALUES list becomes an unnest() of arrays
    f"INSERT INTO visits ({', '.join(_VISIT_ALL)}) VALUES ({', '.join('?' * len(_VISIT_ALL))}) "
    f"ON CONFLICT ({', '.join(_VISIT_KEY)}) DO UPDATE SET "
    + ", ".join(
        f"{c} = COALESCE(excluded.{c}, visits.{c})" for c in (*VISIT_COLS, "discarded_at") if c != "recalls"
    )
    + ", recalls = CASE WHEN COALESCE(visits.recalls, 0) > COALESCE(excluded.recalls, 0) "
    "THEN visits.recalls ELSE excluded.recalls END"
)


def _insert_events_sqlite(conn: Any, rows: list[tuple[Any, ...]]) -> set[str]:
    ids = [r[0] for r in rows]
    existing: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = tuple(ids[i : i + 500])
        q = f"SELECT event_id FROM events WHERE event_id IN ({', '.join('?' * len(chunk))})"
        existing.update(r[0] for r in conn.exec_driver_sql(q, chunk))
    new = [r for r in rows if r[0] not in existing] if existing else rows
    if new:
        conn.exec_driver_sql(_EVENTS_INSERT_SQLITE, new)
    return {r[0] for r in new}


_PG_TYPES = {
    "event_id": "varchar",
    "type": "varchar",
    "device_id": "varchar",
    "office_code": "varchar",
    "ts": "float8",
    "clock_synced": "bool",
    "seq": "int8",
    "boot_id": "varchar",
    "mono_ms": "int8",
    "received_at": "float8",
    "data": "text",
    "counter": "int4",
    "service_day": "varchar",
    "ticket_no": "int4",
    "label": "varchar",
    "issued_at": "float8",
    "called_at": "float8",
    "completed_at": "float8",
    "no_show_at": "float8",
    "wait_s": "float8",
    "service_s": "float8",
    "officer_id": "varchar",
    "recalls": "int4",
    "discarded_at": "float8",
}


def _unnest(cols: tuple[str, ...]) -> str:
    """``SELECT ... FROM unnest(%s::t[], ...)``: a whole batch as one statement and one round trip."""
    arrays = ", ".join(f"%s::{_PG_TYPES[c]}[]" for c in cols)
    sel = ", ".join("data::json" if c == "data" else c for c in cols)
    return f"SELECT {sel} FROM unnest({arrays}) AS u({', '.join(cols)})"


def _columns(rows: list[tuple[Any, ...]], n: int) -> list[list[Any]]:
    return [[r[i] for r in rows] for i in range(n)]


def _insert_events_pg(conn: Any, rows: list[tuple[Any, ...]]) -> set[str]:
    sql = (
        f"INSERT INTO events ({', '.join(_EVENT_COLS)}) {_unnest(_EVENT_COLS)} "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )
    res = conn.exec_driver_sql(sql, tuple(_columns(rows, len(_EVENT_COLS))))
    return {r[0] for r in res}


def _upsert_visits(conn: Any, dialect: str, rows: list[dict[str, Any]]) -> None:
    tuples = [tuple(r[c] for c in _VISIT_ALL) for r in rows]
    if dialect == "postgresql":
        sql = _VISITS_UPSERT.replace(f"VALUES ({', '.join('?' * len(_VISIT_ALL))})", _unnest(_VISIT_ALL))
        conn.exec_driver_sql(sql, tuple(_columns(tuples, len(_VISIT_ALL))))
    else:
        conn.exec_driver_sql(_VISITS_UPSERT, tuples)


def _command_result(conn: Any, ev: Event) -> None:
    """Settle a command row with a ``cmd.result``, ``selftest.report`` or ``update.result`` carrying its id.

    The latest result wins, ordered by the device's ``seq`` (then ``ts``): a kiosk that reports
    ``applied`` and later ``rolled_back`` for the same cmd_id (restart trial failed) ends ``failed``
    with the rollback's message; a result older than the stored one (resend order) changes nothing.
    Exact duplicates (same event_id) never get here: the events table keeps one.
    """
    d = ev.data
    cmd_id = d.get("cmd_id")
    if not cmd_id:
        return
    if ev.type is EventType.CMD_RESULT:
        status = "ok" if d["ok"] else "failed"
    elif ev.type is EventType.SELFTEST_REPORT:
        status = "ok" if d["passed"] else "failed"
    else:
        status = "ok" if d["outcome"] == "applied" else "failed"
    c = s.commands
    cond = and_(c.c.cmd_id == cmd_id, c.c.device_id == ev.device_id)
    row = conn.execute(select(c.c.status, c.c.result).where(cond).with_for_update()).first()
    if row is None:
        return
    stamp = {"event_id": ev.event_id, "seq": ev.seq, "ts": ev.ts.timestamp()}
    if row.status != "sent" and not _newer(stamp, row.result):
        return
    conn.execute(
        update(c)
        .where(cond)
        .values(status=status, result={"type": ev.type.value, **d, "event": stamp}, result_at=time.time())
    )


def _newer(stamp: dict[str, Any], stored: Any) -> bool:
    """Is the event ``stamp`` later than the one that settled ``stored``? (A result stored before the
    event stamp existed counts as older.)"""
    prev = stored.get("event") if isinstance(stored, dict) else None
    if not isinstance(prev, dict) or not isinstance(prev.get("seq"), int):
        return True
    return (stamp["seq"], stamp["ts"]) > (prev["seq"], float(prev.get("ts") or 0.0))
