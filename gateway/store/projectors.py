"""One small projector per event type: typed events → derived rows (docs/architecture.md#projectors).

A :class:`Projection` gathers one batch's derived rows; :meth:`Projection.flush` writes them with
idempotent upserts (visits: COALESCE per column; ratings and windows: keyed by ``event_id``). Events
are typed end to end (``contract.payloads.AnyEvent``): a projector reads attributes, not dict keys.

====================  ==================================================================
event                 projector → rows
====================  ==================================================================
ticket.*              ``visits`` (one row per office, counter, service day, ticket)
service.completed     ``visits`` (completed_at, service_s, officer)
rating.submitted      ``ratings`` (status decided by :mod:`gateway.store.ratings`)
sentiment.window      ``sentiment_windows``
queue.reset           ``visits.discarded_at`` of that device's day's waiting tickets
cmd.result, ...       ``commands`` settled by the latest result (device seq, then ts)
selftest.report       ``device_status.last_selftest`` (and its command)
device.started        ``device_status.last_started``
====================  ==================================================================

A genuine kiosk states each step of a visit once (issued, called, no-show, completed; a recall may
repeat). A *new* event (another event_id) stating a step the visit already has, stored or earlier in
the batch, is a restatement: a second ``service.completed`` with another ``officer_id`` or
``service_s`` would move a staff figure, a reused ticket number would merge two citizens. It is not
projected: it stays stored with ``events.held = 'conflicting_visit'`` and is counted as
``rejected:conflicting_visit`` (the first received wins; exact resends never get here).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, select, update

from contract.payloads import (
    CommandResultEvent,
    DeviceStartedEvent,
    Event,
    QueueResetEvent,
    RatingSubmittedEvent,
    SelftestReportEvent,
    SentimentWindowEvent,
    ServiceCompletedEvent,
    TicketCalledEvent,
    TicketIssuedEvent,
    TicketNoShowEvent,
    TicketRecalledEvent,
    UpdateResultEvent,
)
from gateway.store import schema as s
from gateway.store.pgtypes import VISIT_COLS, insert_ratings, upsert_visits

VisitKey = tuple[str, int, str, int]  # office, counter, service day (ISO), ticket
CONFLICTING_VISIT = "conflicting_visit"


@dataclass
class Projection:
    conn: Any
    dialect: str
    tz: ZoneInfo
    min_service_s: float  # a visit served faster is flagged short_service (kept, out of staff figures)
    visits: dict[VisitKey, dict[str, Any]] = field(default_factory=dict)
    ratings: list[dict[str, Any]] = field(default_factory=list)
    windows: list[dict[str, Any]] = field(default_factory=list)
    offices_changed: set[str] = field(default_factory=set)
    devices_changed: dict[str, str] = field(default_factory=dict)
    stated: dict[VisitKey, set[str]] = field(default_factory=dict)  # steps a visit has (stored + batch)
    decisive: set[VisitKey] = field(default_factory=set)  # visits called, no-show or completed here
    conflicts: list[str] = field(default_factory=list)  # event_ids of restated steps, not projected
    waiting: dict[tuple[str, str], set[VisitKey]] = field(default_factory=dict)  # (device, day) → stored

    def load_waiting(self, events: list[Event]) -> set[VisitKey]:
        """The stored waiting visits the batch's queue resets may discard, read before anything is
        projected: a reset discards only these (and the batch's own), so the rollup deltas
        (gateway.store.rollup_deltas) know every visit the batch changes beforehand."""
        v = s.visits
        for ev in events:
            if isinstance(ev, QueueResetEvent):
                day = ev.data.service_day.isoformat()
                q = select(v.c.office_code, v.c.counter, v.c.service_day, v.c.ticket_no).where(
                    and_(v.c.device_id == ev.device_id, v.c.service_day == day, *_WAITING)
                )
                found = {tuple(x) for x in self.conn.execute(q)}
                self.waiting.setdefault((ev.device_id, day), set()).update(found)
        return set().union(*self.waiting.values()) if self.waiting else set()

    def load_stated(self, events: list[Event]) -> None:
        """The steps the stored visits of ``events`` already have (one read per office and day)."""
        keys = {_key(ev) for ev in events if type(ev) in STEP_COLUMN}
        if not keys:
            return
        v = s.visits
        cols = [v.c.office_code, v.c.counter, v.c.service_day, v.c.ticket_no, *(v.c[c] for c in STEPS)]
        for x in rows_by_key(self.conn, v, cols, keys):
            self.stated[(x.office_code, x.counter, x.service_day, x.ticket_no)] = {
                c for c in STEPS if getattr(x, c) is not None
            }

    def project(self, ev: Event) -> None:
        step = STEP_COLUMN.get(type(ev))
        if step is not None:
            have = self.stated.setdefault(_key(ev), set())
            if step in have:
                self.conflicts.append(ev.event_id)
                return
            have.add(step)
            if step != "issued_at":  # what decides the visit's ratings (gateway.store.ratings)
                self.decisive.add(_key(ev))
        PROJECTORS[type(ev)](self, ev)

    def visit(self, ev: Any) -> dict[str, Any]:
        row = self.visits.setdefault(_key(ev), dict.fromkeys(VISIT_COLS))
        row["device_id"] = row["device_id"] or ev.device_id
        row["label"] = ev.data.label
        # shared lines: the counter that called the ticket (the entrance's issue event names none)
        row["serving_counter"] = row["serving_counter"] or ev.data.serving_counter
        self.offices_changed.add(ev.office_code)
        return row

    def flush(self) -> None:
        if self.visits:
            rows = [
                {"office_code": k[0], "counter": k[1], "service_day": k[2], "ticket_no": k[3],
                 "discarded_at": None, **row, "flag": self._flag(row)}
                for k, row in self.visits.items()
            ]
            upsert_visits(self.conn, self.dialect, rows)
        insert_ratings(self.conn, self.dialect, self.ratings)
        if self.windows:
            stmt = _insert(self.dialect, s.sentiment_windows).on_conflict_do_nothing()
            self.conn.execute(stmt, self.windows)


    def _flag(self, row: dict[str, Any]) -> str | None:
        """Set once (the upsert keeps a stored flag): a service shorter than ``min_service_s``."""
        service = row["service_s"]
        return "short_service" if service is not None and service < self.min_service_s else None


def _key(ev: Any) -> VisitKey:
    d = ev.data
    return (ev.office_code, d.counter, d.service_day.isoformat(), d.ticket_no)


def rows_by_key(
    conn: Any, table: Any, cols: list[Any], keys: set[VisitKey], status: str | None = None
) -> list[Any]:
    """Rows of ``keys`` (and ``status``, for ratings), read per (office, service day) through the day
    index, then filtered here. SQL text on the DB-API (built per call, no SQLAlchemy compilation):
    this runs several times per batch on the hot path."""
    groups: dict[tuple[str, str], set[VisitKey]] = defaultdict(set)
    for k in keys:
        groups[(k[0], k[2])].add(k)
    pg = conn.dialect.name == "postgresql"
    names = ", ".join(c.name for c in cols)
    head = f"SELECT {names} FROM {table.name} WHERE service_day = %s AND office_code = %s"
    tail = " AND status = %s" if status is not None else ""
    out: list[Any] = []
    for (office, day), group in sorted(groups.items()):
        counters = sorted({k[1] for k in group})
        tickets = sorted({k[3] for k in group})
        for i in range(0, len(tickets), 500):
            chunk = tickets[i : i + 500]
            if pg:
                sql = head + " AND counter = ANY(%s) AND ticket_no = ANY(%s)" + tail
                params: tuple[Any, ...] = (day, office, counters, chunk)
            else:
                sql = (head + f" AND counter IN ({', '.join(['%s'] * len(counters))})"
                       f" AND ticket_no IN ({', '.join(['%s'] * len(chunk))})" + tail).replace("%s", "?")
                params = (day, office, *counters, *chunk)
            if status is not None:
                params = (*params, status)
            out.extend(x for x in conn.exec_driver_sql(sql, params)
                       if (office, x.counter, day, x.ticket_no) in group)
    return out


def _first_seq(row: dict[str, Any], seq: int) -> int:
    return seq if row["served_seq"] is None else min(row["served_seq"], seq)


def _insert(dialect: str, table: Any) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _keep(new: float | None, old: float | None) -> float | None:
    return new if new is not None else old


def ticket_issued(p: Projection, ev: TicketIssuedEvent) -> None:
    p.visit(ev)["issued_at"] = ev.ts.timestamp()


def ticket_called(p: Projection, ev: TicketCalledEvent) -> None:
    row = p.visit(ev)
    row["called_at"] = ev.ts.timestamp()
    row["wait_s"] = _keep(ev.data.wait_s, row["wait_s"])
    row["officer_id"] = ev.data.officer_id or row["officer_id"]
    row["served_seq"] = _first_seq(row, ev.seq)


def ticket_recalled(p: Projection, ev: TicketRecalledEvent) -> None:
    row = p.visit(ev)
    row["recalls"] = max(row["recalls"] or 0, ev.data.recall_count)


def ticket_no_show(p: Projection, ev: TicketNoShowEvent) -> None:
    row = p.visit(ev)
    row["no_show_at"] = ev.ts.timestamp()
    row["wait_s"] = _keep(ev.data.wait_s, row["wait_s"])


def service_completed(p: Projection, ev: ServiceCompletedEvent) -> None:
    row = p.visit(ev)
    row["completed_at"] = ev.ts.timestamp()
    row["wait_s"] = _keep(ev.data.wait_s, row["wait_s"])
    row["service_s"] = ev.data.service_s
    row["officer_id"] = ev.data.officer_id or row["officer_id"]
    row["served_seq"] = _first_seq(row, ev.seq)


def rating_submitted(p: Projection, ev: RatingSubmittedEvent) -> None:
    d = ev.data
    p.ratings.append(
        {
            "event_id": ev.event_id,
            "office_code": ev.office_code,
            "counter": d.counter,
            "device_id": ev.device_id,
            "service_day": d.service_day.isoformat(),
            "ticket_no": d.ticket_no,
            "ts": ev.ts.timestamp(),
            "level": d.level,
            "scale": d.scale,
            "reason": d.reason,
            "officer_id": d.officer_id,
            "seq": ev.seq,
            # a rating that names no ticket never counts; the others are decided by ratings.reconcile
            "status": "pending" if d.ticket_no is not None else "no_ticket",
            "flag": None,
        }
    )
    p.offices_changed.add(ev.office_code)


def sentiment_window(p: Projection, ev: SentimentWindowEvent) -> None:
    w = ev.data
    p.windows.append(
        {
            "event_id": ev.event_id,
            "office_code": ev.office_code,
            "counter": w.counter,
            "device_id": ev.device_id,
            "service_day": w.window_start.astimezone(p.tz).date().isoformat(),
            "window_start": w.window_start.timestamp(),
            "window_end": w.window_end.timestamp(),
            "visits": w.visits,
            "k": w.k,
            "frames": w.frames,
            "score": w.score,
            "class_shares": w.class_shares,
        }
    )
    p.offices_changed.add(ev.office_code)


def queue_reset(p: Projection, ev: QueueResetEvent) -> None:
    ts, day = ev.ts.timestamp(), ev.data.service_day.isoformat()
    v = s.visits
    keys = sorted(p.waiting.get((ev.device_id, day), ()))  # Projection.load_waiting
    if keys:
        one = and_(v.c.office_code == bindparam("o"), v.c.counter == bindparam("c"),
                   v.c.service_day == bindparam("d"), v.c.ticket_no == bindparam("t"), *_WAITING)
        p.conn.execute(update(v).where(one).values(discarded_at=ts),
                       [{"o": o, "c": c, "d": d, "t": t} for o, c, d, t in keys])
    for key, row in p.visits.items():  # same-batch tickets of that device and day
        if (
            row["device_id"] == ev.device_id
            and key[2] == day
            and not (row["called_at"] or row["no_show_at"] or row["completed_at"])
        ):
            row["discarded_at"] = ts
    p.offices_changed.add(ev.office_code)


def command_result(p: Projection, ev: CommandResultEvent | UpdateResultEvent | SelftestReportEvent) -> None:
    """Settle the command row by the latest result, ordered by the device's ``seq`` (then ``ts``): a
    kiosk that reports ``applied`` and later ``rolled_back`` for the same cmd_id ends ``failed``; an
    older result (resend order) changes nothing. Exact duplicates never get here."""
    d = ev.data
    cmd_id = getattr(d, "cmd_id", None)
    if not cmd_id:
        return
    if isinstance(ev, CommandResultEvent):
        ok = d.ok
    elif isinstance(ev, SelftestReportEvent):
        ok = d.passed
    else:
        ok = d.outcome == "applied"
    c = s.commands
    cond = and_(c.c.cmd_id == cmd_id, c.c.device_id == ev.device_id)
    row = p.conn.execute(select(c.c.status, c.c.result).where(cond).with_for_update()).first()
    if row is None:
        return
    stamp = {"event_id": ev.event_id, "seq": ev.seq, "ts": ev.ts.timestamp()}
    if row.status != "sent" and not _newer(stamp, row.result):
        return
    result = {"type": ev.type.value, **d.model_dump(mode="json"), "event": stamp}
    p.conn.execute(
        update(c).where(cond).values(status="ok" if ok else "failed", result=result, result_at=time.time())
    )


def _newer(stamp: dict[str, Any], stored: Any) -> bool:
    """Is ``stamp`` later than the event that settled ``stored``? (No stamp stored counts as older.)"""
    prev = stored.get("event") if isinstance(stored, dict) else None
    if not isinstance(prev, dict) or not isinstance(prev.get("seq"), int):
        return True
    return (stamp["seq"], stamp["ts"]) > (prev["seq"], float(prev.get("ts") or 0.0))


def selftest_report(p: Projection, ev: SelftestReportEvent) -> None:
    command_result(p, ev)
    d = ev.data
    report = {
        "passed": d.passed,
        "at": ev.ts.isoformat(),
        "components": [c.model_dump(mode="json") for c in d.components],
        "cmd_id": d.cmd_id,
    }
    ds = s.device_status
    p.conn.execute(update(ds).where(ds.c.device_id == ev.device_id).values(last_selftest=report))
    p.devices_changed[ev.device_id] = ev.office_code


def device_started(p: Projection, ev: DeviceStartedEvent) -> None:
    started = {**ev.data.model_dump(mode="json"), "at": ev.ts.isoformat()}
    ds = s.device_status
    p.conn.execute(update(ds).where(ds.c.device_id == ev.device_id).values(last_started=started))
    p.devices_changed[ev.device_id] = ev.office_code


_WAITING = tuple(s.visits.c[c].is_(None) for c in ("called_at", "no_show_at", "completed_at", "discarded_at"))

# The visit column each step sets: stated once per visit (see the module docstring).
STEP_COLUMN: dict[type[Event], str] = {
    TicketIssuedEvent: "issued_at",
    TicketCalledEvent: "called_at",
    TicketNoShowEvent: "no_show_at",
    ServiceCompletedEvent: "completed_at",
}
STEPS = tuple(STEP_COLUMN.values())

PROJECTORS: dict[type[Event], Callable[[Projection, Any], None]] = {
    TicketIssuedEvent: ticket_issued,
    TicketCalledEvent: ticket_called,
    TicketRecalledEvent: ticket_recalled,
    TicketNoShowEvent: ticket_no_show,
    ServiceCompletedEvent: service_completed,
    RatingSubmittedEvent: rating_submitted,
    SentimentWindowEvent: sentiment_window,
    QueueResetEvent: queue_reset,
    CommandResultEvent: command_result,
    UpdateResultEvent: command_result,
    SelftestReportEvent: selftest_report,
    DeviceStartedEvent: device_started,
}
