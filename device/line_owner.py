"""The entrance kiosk's side of shared lines (``[line] role = "entrance"``, device/config_line.py).

Invariants, and why:

* **One writer.** Every shared line lives in the entrance kiosk's ``kiosk.db``: numbers per field and
  day (device/numbering.py), tickets, calls and their events. Counters never write a line; they send
  requests. Each request is one SQLite transaction (``BEGIN IMMEDIATE``, the store's lock), so two
  counters' ``next`` are serialised and a waiting ticket can be called once, by one counter.
* **Exactly once per request.** A request carries the counter's ``request_id``; its answer is stored
  in ``line_requests`` in the same transaction as the call and its events. A request sent again (the
  counter's answer was lost, or the counter was killed after sending it) gets the stored answer, not
  a second ticket. The request's hash is stored beside it: the same ``request_id`` with another body
  (another counter, operation or field) is refused (409), never given the first request's answer.
* **One visit key.** Every event of a shared-line ticket is emitted here, with ``counter`` = this
  kiosk's own ``[device] counter`` (the line's number at the gateway) and ``serving_counter`` = the
  counter that called, served or rated it, so the gateway's visit key (office, counter, day, ticket)
  and its rating rule (same device as the visit) hold unchanged.
* **Current ticket per counter.** ``tickets.called_counter`` names who called a ticket; ``next`` from
  counter 3 completes counter 3's current ticket only.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import deque
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.payloads import MAX_COUNTER, EventType, RatingSubmitted
from device.calling import choose_next
from device.config_queue import FIELD_CODE, calling_of
from device.queue import Outcome, _duration

RATING_REFUSED = "line_rating_refused"
KEEP_REQUESTS_DAYS = 7


class LineRequest(BaseModel):
    """What a counter asks the entrance kiosk (``POST /api/line/request`` on the LAN listener)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    request_id: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    counter: int = Field(strict=True, ge=1, le=MAX_COUNTER)
    op: Literal["next", "recall", "no_show", "rate"]
    fields: list[Annotated[str, Field(pattern=FIELD_CODE)]] = Field(default_factory=list, max_length=20)
    officer_id: str | None = Field(default=None, max_length=200)
    rating: dict[str, Any] | None = None  # op "rate": the counter's rating.submitted data


class LineOwner:
    """Serves counters' requests on the entrance kiosk (under the kiosk's lock: display and voice)."""

    def __init__(self, kiosk: Any) -> None:
        self.kiosk = kiosk
        self.recent: deque[dict[str, Any]] = deque(maxlen=6)  # the hall display: latest calls

    @property
    def engine(self) -> Any:
        return self.kiosk.engine

    def handle(self, req: LineRequest) -> tuple[int, dict[str, Any]]:
        """(HTTP status, answer). 200 with the stored answer for a request seen before."""
        unknown = [f for f in req.fields if f not in calling_of(self.kiosk.cfg).fields]
        if unknown or (req.op != "rate" and not req.fields):
            return 422, {"ok": False, "message": f"Lĩnh vực không có ở máy cấp số (unknown fields {unknown})"}
        k, answer = self.kiosk, {}
        if req.op != "rate":
            k.entrance.saw_request(req.counter, req.fields)  # where a field goes (device/entrance.py)

        sha = hashlib.sha256(req.model_dump_json().encode()).hexdigest()

        def op(cur: sqlite3.Cursor, out: Outcome) -> None:
            row = cur.execute("SELECT response, request_sha FROM line_requests WHERE request_id=?",
                              (req.request_id,)).fetchone()
            if row is not None and row[1] not in (None, sha):
                answer.update(ok=False, conflict=True, message="request_id đã dùng cho yêu cầu khác "
                              "(request_id reused with another request)")
            elif row is not None:
                answer.update(json.loads(row[0]) | {"replayed": True})
            else:
                answer.update(getattr(self, "_" + req.op)(cur, req, out))
                row = (req.request_id, req.counter, json.dumps(answer), k.clock.wall().isoformat(), sha)
                cur.execute("INSERT INTO line_requests(request_id, counter, response, created_ts, "
                            "request_sha) VALUES(?,?,?,?,?)", row)

        with k.lock:
            out = self.engine._run(req.op, op)
            if not out.ok:  # storage: nothing committed; the counter keeps its request and retries
                return 503, {"ok": False, "message": out.message}
            if answer.get("conflict"):
                return 409, answer
            if out.called_label and not answer.get("replayed"):  # the hall: display and voice
                self.recent.appendleft({"label": out.called_label, "counter": req.counter})
                k.audio.announce(out.called_label, req.counter)
                k.display.called = out.called_label
                k.after(out)
            elif out.event_ids:  # a counter's other outcomes are not the hall's news
                k.publisher.kick.set()
        return 200, answer

    # ------------------------------------------------------------------ operations (inside the transaction)

    def _current(self, cur: sqlite3.Cursor, counter: int) -> Any:
        e = self.engine
        return e._row(cur.execute(f"SELECT {e._COLS} FROM tickets WHERE state='called' AND called_counter=? "
                                  "ORDER BY id DESC LIMIT 1", (counter,)).fetchone())

    def _data(self, t: Any, req: LineRequest) -> dict[str, Any]:
        return self.engine._ticket_data(t) | {"serving_counter": req.counter}

    @staticmethod
    def _brief(t: Any) -> dict[str, Any]:
        return {"ticket_no": t.ticket_no, "label": t.label, "service_day": t.service_day, "kind": t.kind,
                "service_field": t.service_field, "slot": t.slot}

    def _next(self, cur: sqlite3.Cursor, req: LineRequest, out: Outcome) -> dict[str, Any]:
        e, now, boot = self.engine, self.kiosk.clock.monotonic(), self.kiosk.clock.boot_id
        answer: dict[str, Any] = {"ok": True, "completed": None, "called": None}
        current = self._current(cur, req.counter)
        if current is not None:
            cur.execute("UPDATE tickets SET state='completed', ended_mono=?, ended_boot=? WHERE id=?",
                        (now, boot, current.id))
            e._emit(cur, EventType.SERVICE_COMPLETED, self._data(current, req) | {
                "wait_s": _duration(current.issued_mono, current.issued_boot, current.called_mono or now,
                                    current.called_boot or boot),
                "service_s": _duration(current.called_mono, current.called_boot, now, boot),
                "officer_id": req.officer_id}, out)
            answer["completed"] = self._brief(current)
        now_local = self.kiosk.clock.wall().astimezone(self.kiosk.cfg.device.tz)
        chosen = choose_next(cur, calling_of(self.kiosk.cfg), now_local, e.store, tuple(req.fields))
        if chosen is None:
            answer["message"] = out.message = "Không còn người chờ (no one waiting)"
            answer["waiting"] = 0
            return answer
        t = e._row(cur.execute(f"SELECT {e._COLS} FROM tickets WHERE id=?", (chosen,)).fetchone())
        cur.execute("UPDATE tickets SET state='called', called_mono=?, called_boot=?, called_counter=? "
                    "WHERE id=?", (now, boot, req.counter, t.id))
        waiting = self._waiting(cur, req.fields)
        e._emit(cur, EventType.TICKET_CALLED, self._data(t, req) | {
            "wait_s": _duration(t.issued_mono, t.issued_boot, now, boot), "waiting_after": waiting,
            "officer_id": req.officer_id}, out)
        out.called_label, out.ticket_no, out.label = t.label, t.ticket_no, t.label
        answer["message"] = out.message = f"Mời số {t.label} đến quầy số {req.counter}"
        answer["called"], answer["waiting"] = self._brief(t), waiting
        return answer

    @staticmethod
    def _waiting(cur: sqlite3.Cursor, fields: list[str]) -> int:
        marks = ",".join("?" * len(fields))
        return int(cur.execute(f"SELECT count(*) FROM tickets WHERE state='waiting' AND service_field IN "
                               f"({marks})", tuple(fields)).fetchone()[0])

    def _recall(self, cur: sqlite3.Cursor, req: LineRequest, out: Outcome) -> dict[str, Any]:
        t = self._current(cur, req.counter)
        if t is None:
            return {"ok": False, "message": "Chưa gọi số nào (nothing called)"}
        cur.execute("UPDATE tickets SET recall_count=recall_count+1 WHERE id=?", (t.id,))
        self.engine._emit(cur, EventType.TICKET_RECALLED, self._data(t, req) | {
            "recall_count": t.recall_count + 1}, out)
        out.called_label, out.ticket_no, out.label = t.label, t.ticket_no, t.label
        message = out.message = f"Mời số {t.label} đến quầy số {req.counter}"
        return {"ok": True, "message": message, "called": self._brief(t)}

    def _no_show(self, cur: sqlite3.Cursor, req: LineRequest, out: Outcome) -> dict[str, Any]:
        t, clock = self._current(cur, req.counter), self.kiosk.clock
        if t is None:
            return {"ok": False, "message": "Chưa gọi số nào (nothing called)"}
        now, boot = clock.monotonic(), clock.boot_id
        cur.execute("UPDATE tickets SET state='no_show', ended_mono=?, ended_boot=? WHERE id=?",
                    (now, boot, t.id))
        wait = _duration(t.issued_mono, t.issued_boot, t.called_mono or now, t.called_boot or boot)
        self.engine._emit(cur, EventType.TICKET_NO_SHOW, self._data(t, req) | {"wait_s": wait}, out)
        message = out.message = f"Số {t.label} vắng mặt (no-show)"
        return {"ok": True, "message": message, "no_show": self._brief(t)}

    def _rate(self, cur: sqlite3.Cursor, req: LineRequest, out: Outcome) -> dict[str, Any]:
        """A rating made on a counter's buttons, for a visit that counter completed, once."""
        r = req.rating or {}
        row = cur.execute("SELECT state, called_counter FROM tickets WHERE service_day=? AND ticket_no=?",
                          (r.get("service_day"), r.get("ticket_no"))).fetchone()
        rated_key = f"line.rated.{r.get('service_day')}.{r.get('ticket_no')}"
        data = {key: r.get(key) for key in ("ticket_no", "service_day", "level", "scale", "level_label",
                                            "reason", "officer_id")}
        data |= {"counter": self.kiosk.cfg.device.counter, "serving_counter": req.counter}
        try:
            RatingSubmitted.model_validate_json(json.dumps(data))  # as the wire would carry it
        except ValidationError:
            row = None
        if row is None or row[0] != "completed" or row[1] != req.counter or self.engine.store.get_meta(
                rated_key, None, cur):
            self.engine.count_refusal(cur, RATING_REFUSED)
            return {"ok": False, "message": "Lượt phục vụ không hợp lệ hoặc đã được đánh giá (refused)"}
        self.engine.store.set_meta(cur, rated_key, "1")
        self.engine._emit(cur, EventType.RATING_SUBMITTED, data, out)
        return {"ok": True, "message": "rated"}

    def purge(self, keep_days: int = KEEP_REQUESTS_DAYS) -> int:
        """At start: forget answers older than ``keep_days`` (a counter's request is resolved within
        seconds of the entrance or the counter coming back; the table would otherwise only grow)."""
        cutoff = (self.kiosk.clock.wall() - timedelta(days=keep_days)).isoformat()
        with self.kiosk.store.tx() as cur:
            return cur.execute("DELETE FROM line_requests WHERE created_ts < ?", (cutoff,)).rowcount

    def status(self) -> dict[str, Any]:
        """For the hall display and /api/status: per field its label, waiting count and counters
        (device/entrance.py), and the latest calls (label → counter)."""
        return {"role": "entrance", **self.kiosk.entrance.status(), "calls": list(self.recent)}
