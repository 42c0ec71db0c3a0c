"""Queue engine: ticket numbering, calling, recall, no-show, completion, ratings.

Numbering: ``ticket_no`` counts per counter per *service day*. The service day is the local date
(config ``[device] timezone``, default Asia/Ho_Chi_Minh) but never goes backwards: it is
``max(local date now, highest service day already used)``. A wall clock stepped back a day (NTP fix,
no RTC) keeps numbering where it was, so a number is never issued twice; a clock stepped forward
starts the new day at 1. The day's next number is committed in the same transaction as the ticket
and its event, before the ticket is printed.

Ratings: a rating belongs to exactly one visit, the one whose prompt is open. The prompt opens when
the officer's ``next`` completes the visit (``service.completed``), names its ticket, and closes when
it is rated, after ``[rating] prompt_timeout_s``, when another visit is completed (its prompt replaces
this one), when a new visit is called by a ``next`` that completed nothing, or on ``reset_day``. A
rating press with no open prompt changes nothing: it never completes or rates the visit being served;
it is counted (``refused.rating_no_prompt``, or ``refused.rating_duplicate`` when that visit was
already rated). Presses faster than a person are dropped earlier, in the button layer.

Durations (``wait_s`` issued→called, ``service_s`` called→completed) come from the monotonic clock
and are ``null`` when the device rebooted in between (different boot id).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from contract.payloads import EventType
from device.calling import choose_next
from device.clock import Clock
from device.config import KioskConfig
from device.config_line import line_of
from device.config_queue import calling_of, policy_text
from device.events import EventBuilder
from device.numbering import take_number
from device.rating_desk import RatingDesk
from device.store import OutboxFull, Store, StoreError, StoreFull

MAX_DURATION_S = 7 * 86400

# Outcome.kind: what kind of refusal or ignored press this was (decided here, never by message text).
OUTBOX_FULL, STORAGE_FULL, STORAGE_ERROR = "outbox_full", "storage_full", "storage_error"
STORAGE_KINDS = frozenset({OUTBOX_FULL, STORAGE_FULL, STORAGE_ERROR})
REFUSED_PREFIX = "refused."  # meta keys of the kiosk's refusal counters (health ``refused``)

MSG_OUTBOX_FULL = "Tạm ngừng cấp số: bộ nhớ đầy, vui lòng báo cán bộ (outbox full)"
MSG_DISK_FULL = "Tạm ngừng: lỗi lưu trữ, vui lòng báo cán bộ (storage full)"
LINE_FULL = "line_full"
MSG_LINE_FULL = "Đã hết số hôm nay cho lĩnh vực này, vui lòng báo cán bộ (field's numbers used up)"


@dataclass
class Outcome:
    """What a button press did, for the display, the voice and the HTTP sim API."""

    ok: bool
    action: str
    message: str = ""
    ticket_no: int | None = None
    label: str | None = None
    service_day: str | None = None
    waiting_ahead: int | None = None
    event_ids: list[str] = field(default_factory=list)
    called_label: str | None = None
    needs_reason: bool = False
    print_file: str | None = None
    kind: str | None = None  # why a press was refused or ignored (see the *_KINDS constants)
    prompt_label: str | None = None  # a rating prompt opened for this label (display + voice)
    completed_no: int | None = None  # the ticket this press completed (``next``)
    ticket_kind: str | None = None  # walk_in, priority or appointment (the ticket issued or called)
    service_field: str | None = None
    slot: str | None = None  # appointment tickets: the booked slot (HH:MM)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Ticket:
    id: int
    service_day: str
    ticket_no: int
    label: str
    state: str
    issued_mono: float
    issued_boot: str
    called_mono: float | None
    called_boot: str | None
    recall_count: int
    kind: str = "walk_in"
    service_field: str | None = None
    slot: str | None = None


def _duration(start: float | None, start_boot: str | None, end: float, end_boot: str) -> float | None:
    if start is None or start_boot != end_boot:
        return None
    d = end - start
    if d < 0 or d > MAX_DURATION_S:
        return None
    return round(d, 3)


class QueueEngine(RatingDesk):
    """All queue operations; each is one durable transaction that also appends its events."""

    def __init__(self, cfg: KioskConfig, store: Store, clock: Clock, builder: EventBuilder) -> None:
        self.cfg, self.store, self.clock, self.builder = cfg, store, clock, builder
        self.refused = 0

    # ------------------------------------------------------------------ helpers

    def local_date(self) -> date:
        return self.clock.wall().astimezone(self.cfg.device.tz).date()

    def _service_day(self, cur: sqlite3.Cursor) -> str:
        today = self.local_date().isoformat()
        highest = self.store.get_meta("highest_day", None, cur)
        if highest is None or today > highest:
            self.store.set_meta(cur, "highest_day", today)
            return today
        return highest

    def _emit(self, cur: sqlite3.Cursor, etype: EventType, data: dict[str, Any], out: Outcome) -> None:
        res = self.store.append_event(cur, etype, self.builder.builder(etype, data))
        if res is not None:
            out.event_ids.append(res[0])

    def _ticket_data(self, t: _Ticket) -> dict[str, Any]:
        return {
            "ticket_no": t.ticket_no,
            "label": t.label,
            "counter": self.cfg.device.counter,
            "service_day": t.service_day,
            "kind": t.kind,
            "service_field": t.service_field,
            "slot": t.slot,
        }

    @staticmethod
    def _row(r: tuple | None) -> _Ticket | None:
        return _Ticket(*r) if r else None

    _COLS = (
        "id, service_day, ticket_no, label, state, issued_mono, issued_boot, called_mono, called_boot, "
        "recall_count, kind, service_field, slot"
    )

    def _current(self, cur: sqlite3.Cursor) -> _Ticket | None:
        return self._row(
            cur.execute(
                f"SELECT {self._COLS} FROM tickets WHERE state='called' "
                "ORDER BY id DESC LIMIT 1"
            ).fetchone()
        )

    def _waiting_count(self, cur: sqlite3.Cursor | sqlite3.Connection, field: str | None = None) -> int:
        """Tickets waiting (in ``field``'s line when the kiosk keeps lines per field)."""
        if field is None or line_of(self.cfg).role != "entrance":
            return int(cur.execute("SELECT count(*) FROM tickets WHERE state='waiting'").fetchone()[0])
        return int(cur.execute("SELECT count(*) FROM tickets WHERE state='waiting' AND service_field=?",
                               (field,)).fetchone()[0])

    def _run(self, action: str, fn) -> Outcome:
        out = Outcome(ok=True, action=action)
        try:
            with self.store.tx() as cur:
                fn(cur, out)
        except OutboxFull:
            self.refused += 1
            return Outcome(ok=False, action=action, message=MSG_OUTBOX_FULL, kind=OUTBOX_FULL)
        except StoreFull:
            self.refused += 1
            return Outcome(ok=False, action=action, message=MSG_DISK_FULL, kind=STORAGE_FULL)
        except StoreError as exc:
            self.refused += 1
            message = f"Lỗi lưu trữ, vui lòng báo cán bộ (storage error: {exc})"[:200]
            return Outcome(ok=False, action=action, message=message, kind=STORAGE_ERROR)
        return out

    def count_refusal(self, cur: sqlite3.Cursor, kind: str) -> None:
        """Count an ignored press or refused command durably (health ``refused``)."""
        self.store.increment(cur, REFUSED_PREFIX + kind)

    def refusals(self) -> dict[str, int]:
        return self.store.counters(REFUSED_PREFIX)

    # ------------------------------------------------------------------ citizen: take a ticket

    def issue(
        self,
        kind: str = "walk_in",
        service_field: str | None = None,
        slot: str | None = None,
        appointment_code: str | None = None,
        also: Callable[[sqlite3.Cursor, str], None] | None = None,
    ) -> Outcome:
        """Issue a ticket of ``kind``; ``also(cur, day)`` runs in the same transaction (appointments
        mark their booking redeemed there, so a redeemed code and its ticket commit together)."""

        def op(cur: sqlite3.Cursor, out: Outcome) -> None:
            day = self._service_day(cur)
            if also is not None:
                also(cur, day)
            no = take_number(self.store, self.cfg, cur, day, service_field)  # never reused (highwater)
            if no is None:
                out.ok, out.kind, out.message = False, LINE_FULL, MSG_LINE_FULL
                return
            label = calling_of(self.cfg).prefix(kind) + self.cfg.queue.label(no)
            ahead = self._waiting_count(cur, service_field)
            cur.execute(
                "INSERT INTO tickets(service_day, ticket_no, label, state, issued_mono, issued_boot, "
                "issued_ts, kind, service_field, slot, appointment_code) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                (day, no, label, "waiting", self.clock.monotonic(), self.clock.boot_id,
                 self.clock.wall().isoformat(), kind, service_field, slot, appointment_code),
            )
            data = {
                "ticket_no": no,
                "label": label,
                "counter": self.cfg.device.counter,
                "service_day": day,
                "waiting_ahead": ahead,
                "kind": kind,
                "service_field": service_field,
                "slot": slot,
            }
            self._emit(cur, EventType.TICKET_ISSUED, data, out)
            out.ticket_no, out.label, out.service_day, out.waiting_ahead = no, label, day, ahead
            out.ticket_kind, out.service_field, out.slot = kind, service_field, slot
            out.message = f"Số của bạn: {label}"

        return self._run("ticket" if kind == "walk_in" else kind, op)

    # ------------------------------------------------------------------ officer buttons

    def _complete(self, cur: sqlite3.Cursor, t: _Ticket, out: Outcome) -> None:
        now, boot = self.clock.monotonic(), self.clock.boot_id
        cur.execute(
            "UPDATE tickets SET state='completed', ended_mono=?, ended_boot=? WHERE id=?", (now, boot, t.id)
        )
        data = self._ticket_data(t) | {
            "wait_s": _duration(t.issued_mono, t.issued_boot, t.called_mono or now, t.called_boot or boot),
            "service_s": _duration(t.called_mono, t.called_boot, now, boot),
            "officer_id": self.cfg.device.officer_id,
        }
        self._emit(cur, EventType.SERVICE_COMPLETED, data, out)
        # Open the rating prompt for this visit (and only this one): it replaces an older prompt.
        prompt = {
            "ticket_id": t.id,
            "ticket_no": t.ticket_no,
            "label": t.label,
            "service_day": t.service_day,
            "mono": now,
            "boot": boot,
            "rated": False,
        }
        self.store.set_meta(cur, "prompt", json.dumps(prompt))
        out.prompt_label, out.completed_no = t.label, t.ticket_no

    def next(self) -> Outcome:
        def op(cur: sqlite3.Cursor, out: Outcome) -> None:
            current = self._current(cur)
            if current is not None:
                self._complete(cur, current, out)
            now_local = self.clock.wall().astimezone(self.cfg.device.tz)
            chosen = choose_next(cur, calling_of(self.cfg), now_local, self.store)
            t = self._row(
                cur.execute(f"SELECT {self._COLS} FROM tickets WHERE id=?", (chosen,)).fetchone()
                if chosen is not None
                else None
            )
            if t is None:
                out.message = "Không còn người chờ (no one waiting)"
                return
            if current is None:
                self._close_prompt(cur)  # a new visit is called: an older visit's prompt ends
            now, boot = self.clock.monotonic(), self.clock.boot_id
            cur.execute(
                "UPDATE tickets SET state='called', called_mono=?, called_boot=? WHERE id=?",
                (now, boot, t.id),
            )
            data = self._ticket_data(t) | {
                "wait_s": _duration(t.issued_mono, t.issued_boot, now, boot),
                "waiting_after": self._waiting_count(cur),
                "officer_id": self.cfg.device.officer_id,
            }
            self._emit(cur, EventType.TICKET_CALLED, data, out)
            self._announce(t, out)

        return self._run("next", op)

    def _announce(self, t: _Ticket, out: Outcome) -> None:
        """The outcome of a call or recall: the ticket called and what the voice and display say."""
        out.ticket_no, out.label, out.service_day = t.ticket_no, t.label, t.service_day
        out.called_label = t.label
        out.ticket_kind, out.service_field, out.slot = t.kind, t.service_field, t.slot
        out.message = f"Mời số {t.label} đến quầy số {self.cfg.device.counter}"

    def recall(self) -> Outcome:
        def op(cur: sqlite3.Cursor, out: Outcome) -> None:
            t = self._current(cur)
            if t is None:
                out.ok, out.message = False, "Chưa gọi số nào (nothing called)"
                return
            cur.execute("UPDATE tickets SET recall_count=recall_count+1 WHERE id=?", (t.id,))
            self._emit(
                cur,
                EventType.TICKET_RECALLED,
                self._ticket_data(t) | {"recall_count": t.recall_count + 1},
                out,
            )
            self._announce(t, out)

        return self._run("recall", op)

    def no_show(self) -> Outcome:
        def op(cur: sqlite3.Cursor, out: Outcome) -> None:
            t = self._current(cur)
            if t is None:
                out.ok, out.message = False, "Chưa gọi số nào (nothing called)"
                return
            now, boot = self.clock.monotonic(), self.clock.boot_id
            cur.execute(
                "UPDATE tickets SET state='no_show', ended_mono=?, ended_boot=? WHERE id=?", (now, boot, t.id)
            )
            data = self._ticket_data(t) | {
                "wait_s": _duration(t.issued_mono, t.issued_boot, t.called_mono or now, t.called_boot or boot)
            }
            self._emit(cur, EventType.TICKET_NO_SHOW, data, out)
            out.ticket_no, out.label, out.service_day = t.ticket_no, t.label, t.service_day
            out.message = f"Số {t.label} vắng mặt (no-show)"

        return self._run("no_show", op)

    # ------------------------------------------------------------------ commands

    def reset_day(self, reason: str) -> Outcome:
        """Discard the waiting list (numbering continues: numbers are never reused in a day)."""

        def op(cur: sqlite3.Cursor, out: Outcome) -> None:
            day = self._service_day(cur)
            n = cur.execute(
                "UPDATE tickets SET state='discarded' WHERE state IN ('waiting','called')"
            ).rowcount
            self._close_prompt(cur)
            self._emit(
                cur,
                EventType.QUEUE_RESET,
                {"service_day": day, "discarded_waiting": n, "reason": reason[:200]},
                out,
            )
            out.service_day, out.message = day, f"Đã xoá hàng chờ hôm nay: {n} số (queue reset)"

        return self._run("reset_day", op)

    def emit(self, etype: EventType, data: dict[str, Any]) -> Outcome:
        """Append a non-queue event (device.started, cmd.result, selftest.report...)."""
        return self._run(etype.value, lambda cur, out: self._emit(cur, etype, data, out))

    # ------------------------------------------------------------------ display

    def snapshot(self) -> dict[str, Any]:
        with self.store.read() as db:
            cur = self._current(db)
            waiting = self._waiting_count(db)
            nxt = db.execute("SELECT label FROM tickets WHERE state='waiting' ORDER BY id LIMIT 3").fetchall()
            by_kind = dict(
                db.execute("SELECT kind, count(*) FROM tickets WHERE state='waiting' GROUP BY kind")
            )
            appointments = dict(db.execute(
                "SELECT state, count(*) FROM appointments WHERE service_day=? GROUP BY state",
                (self.local_date().isoformat(),),
            ))
        prompt = self.prompt()
        pending = self.pending_reason()
        return {
            "serving": cur.label if cur else None,
            "serving_ticket_no": cur.ticket_no if cur else None,
            "waiting": waiting,
            "waiting_by_kind": by_kind,
            "appointments": {"booked": 0, "redeemed": 0, "no_show": 0} | appointments,
            "calling_policy": policy_text(calling_of(self.cfg)),
            "priority_groups": list(calling_of(self.cfg).priority.groups),
            "next_labels": [r[0] for r in nxt],
            "rating_prompt": (
                {"label": prompt["label"], "ticket_no": prompt["ticket_no"]} if prompt else None
            ),
            "reason_pending": pending is not None,
            "service_day": self.store.get_meta("highest_day") or self.local_date().isoformat(),
        }
