"""A counter kiosk's side of shared lines (``[line] role = "counter"``, device/config_line.py).

The counter owns no line: its ``next``, ``recall`` and ``no_show`` are requests to the entrance
kiosk's LAN listener (device/line_owner.py), which decides in one transaction and answers.

Invariants, and why:

* **A request is written down before it is sent** (``meta line.pending``, with a fresh
  ``request_id``), and cleared in the transaction that records its answer. A press while a request is
  pending (no answer: the entrance was unreachable, the answer was lost, or this kiosk was killed
  after sending) sends *that* request again, never a new one; the entrance answers a request it has
  seen with the stored answer. So a call reaches exactly one counter and a lost answer never calls a
  second citizen. At start a pending request is resolved by itself (the citizen called just before a
  crash is shown and called again by this counter).
* **Ratings are forwarded, durably.** The rating buttons and their prompt work as on any counter
  (device/rating_desk.py); the ``rating.submitted`` the prompt produces goes to ``line_outbox`` in
  the same transaction (instead of this kiosk's MQTT outbox) and is forwarded, oldest first, until the
  entrance has it; the entrance emits it, so the rating and its visit come from the same device.
* **Uplink cut**: only the LAN is used here; events reach the gateway later from the entrance's outbox.
* **Standard library HTTP**, with proxies off: the kiosk image carries only the ``kiosk`` extra (no
  HTTP client library; the virtual Pi found a kiosk that could not start on an import of one), and the
  office token must go to the entrance on the LAN, never to a proxy from the environment.
"""

from __future__ import annotations

import http.client
import json
import logging
import sqlite3
import threading
import urllib.error
import urllib.request
import uuid
from typing import Any

from contract.payloads import EventType
from device.config_line import line_of
from device.queue import Outcome, QueueEngine

log = logging.getLogger("motcua.line")
_LAN = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
TRANSPORT_ERRORS = (OSError, http.client.HTTPException)  # refused, reset, timeout, bad answer
UNREACHABLE = "line_unreachable"
NOT_HERE = "line_ticket_at_entrance"
MSG_UNREACHABLE = ("Không kết nối được máy cấp số ở cửa vào, vui lòng bấm lại "
                   "(entrance kiosk unreachable; the same request is sent again)")
MSG_NOT_HERE = "Vui lòng lấy số ở máy cấp số tại cửa vào (tickets are issued at the entrance)"
PENDING, SERVING = "line.pending", "line.serving"


class Unreachable(Exception):
    """No answer from the entrance kiosk (network, timeout, or its storage refused: 5xx)."""


class CounterEngine(QueueEngine):
    """The queue engine of a counter on shared lines: ratings go to ``line_outbox``; the display's
    current ticket is the one the entrance last gave this counter."""

    line_waiting: int | None = None  # the entrance's count for this counter's fields (device/line_client.py)

    def _emit(self, cur: sqlite3.Cursor, etype: EventType, data: dict[str, Any], out: Outcome) -> None:
        if etype is not EventType.RATING_SUBMITTED:
            return super()._emit(cur, etype, data, out)
        cur.execute("INSERT INTO line_outbox(request_id, body) VALUES(?, ?)",
                    (uuid.uuid4().hex, json.dumps(data)))

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        serving = json.loads(self.store.get_meta(SERVING, "") or "null")
        with self.store.read() as db:
            unsent = int(db.execute("SELECT count(*) FROM line_outbox").fetchone()[0])
        line = line_of(self.cfg)
        return snap | {
            "serving": serving["label"] if serving else None,
            "serving_ticket_no": serving["ticket_no"] if serving else None,
            "waiting": self.line_waiting if self.line_waiting is not None else int(
                self.store.get_meta("line.waiting", "0") or 0),
            "next_labels": [],
            "line": {"role": "counter", "entrance": line.entrance_url, "fields": list(line.fields),
                     "pending": bool(self.store.get_meta(PENDING, "")), "ratings_unsent": unsent},
        }


class LineClient:
    def __init__(self, kiosk: Any) -> None:
        self.kiosk = kiosk
        self._stop = threading.Event()
        self.kick = threading.Event()

    @property
    def line(self) -> Any:
        return line_of(self.kiosk.cfg)

    def _post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        line = self.line
        try:
            status, raw = entrance_call(line.entrance_url, "/api/line/request", line.token, line.timeout_s,
                                        body)
        except TRANSPORT_ERRORS as exc:
            raise Unreachable(str(exc)) from None
        if status >= 500 or status in (401, 403):  # kept and resent: storage, or token
            raise Unreachable(f"HTTP {status}" + (" (token refused)" if status < 500 else ""))
        try:
            answer = json.loads(raw)
        except ValueError:
            raise Unreachable(f"HTTP {status}: not JSON") from None
        return status, answer if isinstance(answer, dict) else {}

    def _body(self, pending: dict[str, Any]) -> dict[str, Any]:
        cfg = self.kiosk.cfg
        return {"request_id": pending["request_id"], "counter": cfg.device.counter, "op": pending["op"],
                "fields": list(self.line.fields), "officer_id": cfg.device.officer_id}

    def press(self, op: str) -> Outcome:
        """``next``/``recall``/``no_show`` (under the kiosk's lock). A pending request goes first."""
        engine = self.kiosk.engine
        raw = engine.store.get_meta(PENDING, "")
        pending = json.loads(raw) if raw else {"request_id": uuid.uuid4().hex, "op": op}
        if not raw:
            saved = engine._run(op, lambda cur, out: engine.store.set_meta(cur, PENDING, json.dumps(pending)))
            if not saved.ok:
                return saved
        try:
            status, answer = self._post(self._body(pending))
        except Unreachable as exc:
            self.kiosk.errors.note("line", f"entrance kiosk unreachable: {exc}"[:200])
            return Outcome(False, pending["op"], MSG_UNREACHABLE, kind=UNREACHABLE)
        self.kiosk.errors.note("line", None)
        op = pending["op"]
        return engine._run(op, lambda cur, out: self._apply(cur, out, op, status, answer))

    def _apply(self, cur: sqlite3.Cursor, out: Outcome, op: str, status: int, answer: dict[str, Any]) -> None:
        """Record the entrance's answer; clears the pending request in the same transaction."""
        store = self.kiosk.engine.store
        store.set_meta(cur, PENDING, "")
        out.ok = bool(answer.get("ok")) and status == 200
        refused = f"Máy cấp số từ chối yêu cầu (entrance refused: HTTP {status})"
        out.message = str(answer.get("message") or refused)[:200]
        if not out.ok:
            return
        called, completed = answer.get("called"), answer.get("completed")
        if op == "next":
            store.set_meta(cur, SERVING, json.dumps(called) if called else "")
            store.set_meta(cur, "line.waiting", str(int(answer.get("waiting", 0))))
            if completed:  # this counter's rating buttons now rate that visit
                prompt = {"ticket_id": 0, "ticket_no": completed["ticket_no"], "label": completed["label"],
                          "service_day": completed["service_day"], "mono": self.kiosk.clock.monotonic(),
                          "boot": self.kiosk.clock.boot_id, "rated": False}
                store.set_meta(cur, "prompt", json.dumps(prompt))
                out.prompt_label, out.completed_no = completed["label"], completed["ticket_no"]
            elif called:
                self.kiosk.engine._close_prompt(cur)
        elif op == "no_show":
            store.set_meta(cur, SERVING, "")
        if called:
            out.called_label, out.label, out.ticket_no = called["label"], called["label"], called["ticket_no"]
            out.service_day, out.ticket_kind, out.service_field = (
                called["service_day"], called.get("kind"), called.get("service_field"))

    # ------------------------------------------------------------------ background: resume, ratings

    def start(self) -> None:
        threading.Thread(target=self._loop, name="line-client", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.kick.set()

    def _loop(self) -> None:
        self._resume()
        while not self._stop.is_set():
            self.kick.wait(1.0)
            self.kick.clear()
            if self._stop.is_set():
                return
            if self.kiosk.engine.store.get_meta(PENDING, ""):
                self._resume()
            self._forward_ratings()
            self._poll_waiting()

    def _resume(self) -> None:
        """A request left pending (kill -9, power cut, lost answer) is resolved: same request id."""
        k = self.kiosk
        with k.lock:  # read under the lock: a press may resolve it meanwhile (then nothing is sent)
            raw = k.engine.store.get_meta(PENDING, "")
            if not raw:
                return
            out = self.press(json.loads(raw)["op"])
            if out.kind == UNREACHABLE:
                return
            if out.called_label:
                k.audio.announce(out.called_label, k.cfg.device.counter)
                k.display.called = out.called_label
            k.after(out)

    def _poll_waiting(self) -> None:
        """How many wait in this counter's fields, for its display (kept in memory, never written)."""
        line = self.line
        try:
            status, raw = entrance_call(line.entrance_url, "/api/line/status", line.token, line.timeout_s)
            fields = json.loads(raw)["fields"] if status == 200 else None
        except (*TRANSPORT_ERRORS, ValueError, KeyError, TypeError):
            fields = None
        self.kiosk.engine.line_waiting = (
            None if fields is None else sum(int(f["waiting"]) for f in fields if f["code"] in line.fields))

    def _forward_ratings(self) -> None:
        store = self.kiosk.engine.store
        with store.read() as db:
            rows = db.execute("SELECT id, request_id, body FROM line_outbox ORDER BY id LIMIT 50").fetchall()
        for rid, request_id, body in rows:
            req = {"request_id": request_id, "counter": self.kiosk.cfg.device.counter, "op": "rate",
                   "fields": [], "rating": json.loads(body)}
            try:
                status, answer = self._post(req)
            except Unreachable:
                return  # kept; tried again in a second
            if status != 200 or not answer.get("ok"):
                log.warning("entrance refused a rating: %s", answer.get("message"))
                store.bump("refused.line_rating_refused")
            with store.tx() as cur:
                cur.execute("DELETE FROM line_outbox WHERE id=?", (rid,))


def entrance_call(base_url: str, path: str, token: str, timeout_s: float,
                  body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    """One request to the entrance's line API: POST ``body`` as JSON, or GET without one; returns
    (HTTP status, body). Transport failures raise (``TRANSPORT_ERRORS``); an HTTP error is a status."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    req = urllib.request.Request(base_url.rstrip("/") + path, data=data, headers=headers,
                                 method="GET" if body is None else "POST")
    try:
        with _LAN.open(req, timeout=timeout_s) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
