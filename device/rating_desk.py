"""The rating half of the queue engine: the prompt that ties a rating to exactly one visit, the
lowest level's reason, and the rating presses refused and counted.

A mixin of :class:`device.queue.QueueEngine` (read that module's docstring for the prompt's rules): it
uses the engine's ``store``, ``cfg``, ``clock``, ``_run`` (one SQLite transaction per press),
``_emit`` (an outbox event in that transaction) and ``count_refusal``. Kept apart so that each
module holds one job: numbering and calling there, rating here."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from contract.payloads import EventType

if TYPE_CHECKING:
    from device.queue import Outcome

RATING_NO_PROMPT, RATING_DUPLICATE = "rating_no_prompt", "rating_duplicate"


class RatingDesk:
    store: Any
    cfg: Any
    clock: Any


    def _last_prompt(self, cur: sqlite3.Cursor) -> dict[str, Any] | None:
        """The latest prompt of this boot still within ``prompt_timeout_s`` (rated or not)."""
        raw = self.store.get_meta("prompt", None, cur)
        if not raw:
            return None
        p = json.loads(raw)
        if (
            p.get("boot") != self.clock.boot_id
            or self.clock.monotonic() - p["mono"] > self.cfg.rating.prompt_timeout_s
        ):
            return None
        return p

    def _open_prompt(self, cur: sqlite3.Cursor) -> dict[str, Any] | None:
        p = self._last_prompt(cur)
        return None if p is None or p.get("rated") else p

    def _close_prompt(self, cur: sqlite3.Cursor) -> None:
        self.store.set_meta(cur, "prompt", "")

    def prompt(self) -> dict[str, Any] | None:
        """The visit the rating buttons currently rate, if the prompt is open."""
        with self.store.read() as cur:
            return self._open_prompt(cur)

    def _ignore_rating(self, cur: sqlite3.Cursor, out: Outcome) -> None:
        """A rating press with no open prompt: counted, changes nothing else (never completes a visit)."""
        last = self._last_prompt(cur)
        out.ok = False
        if last is not None and last.get("rated"):
            out.kind = RATING_DUPLICATE
            out.ticket_no, out.label = last["ticket_no"], last["label"]
            out.message = f"Lượt phục vụ số {last['label']} đã được đánh giá (already rated)"
        else:
            out.kind = RATING_NO_PROMPT
            out.message = "Chưa có lượt phục vụ nào chờ đánh giá (no rating prompt open)"
        self.count_refusal(cur, out.kind)

    def rate(self, level: int) -> Outcome:
        """Rate the visit whose prompt is open (opened when the officer completed it); else ignored."""
        scale = self.cfg.rating.scale

        def op(cur: sqlite3.Cursor, out: Outcome) -> None:
            if not 1 <= level <= scale:
                out.ok, out.message = False, f"Mức đánh giá không hợp lệ (level {level})"
                return
            prompt = self._open_prompt(cur)
            if prompt is None:
                self._ignore_rating(cur, out)
                return
            self._finalize_pending(cur, out)  # an earlier visit's level-1 rating still waiting for a reason
            self.store.set_meta(cur, "prompt", json.dumps(prompt | {"rated": True}))
            data = {
                "ticket_no": prompt["ticket_no"],
                "service_day": prompt["service_day"],
                "counter": self.cfg.device.counter,
                "level": level,
                "scale": scale,
                "level_label": self.cfg.rating.label(level),
                "reason": None,
                "officer_id": self.cfg.device.officer_id,
            }
            out.ticket_no, out.label, out.service_day = (
                prompt["ticket_no"],
                prompt["label"],
                prompt["service_day"],
            )
            if level == 1 and self.cfg.rating.reasons:
                cur.execute(
                    "INSERT INTO pending_rating(data, created_mono, boot) VALUES(?,?,?)",
                    (json.dumps(data), self.clock.monotonic(), self.clock.boot_id),
                )
                out.needs_reason = True
                out.message = "Xin cho biết lý do chưa hài lòng"
            else:
                self._emit(cur, EventType.RATING_SUBMITTED, data, out)
                out.message = "Cảm ơn quý khách đã đánh giá!"

        return self._run(f"rate_{level}", op)

    def _finalize_pending(self, cur: sqlite3.Cursor, out: Outcome, reason: str | None = None) -> int:
        rows = cur.execute("SELECT id, data FROM pending_rating ORDER BY id").fetchall()
        for rid, raw in rows:
            data = json.loads(raw) | {"reason": reason}
            self._emit(cur, EventType.RATING_SUBMITTED, data, out)
            cur.execute("DELETE FROM pending_rating WHERE id=?", (rid,))
        return len(rows)

    def choose_reason(self, code: str) -> Outcome:
        def op(cur: sqlite3.Cursor, out: Outcome) -> None:
            if code not in self.cfg.rating.reasons:
                out.ok, out.message = False, f"Lý do không hợp lệ (unknown reason {code!r})"
                return
            if self._finalize_pending(cur, out, code) == 0:
                out.ok, out.message = False, "Không có đánh giá đang chờ lý do (no rating pending)"
                return
            out.message = "Cảm ơn quý khách đã góp ý!"

        return self._run("reason", op)

    def pending_reason(self) -> dict[str, Any] | None:
        with self.store.read() as cur:
            row = cur.execute(
                "SELECT data, created_mono, boot FROM pending_rating ORDER BY id DESC LIMIT 1"
            ).fetchone()
        if not row:
            return None
        return json.loads(row[0]) | {"created_mono": row[1], "boot": row[2]}

    def expire_pending(self, force: bool = False) -> Outcome | None:
        """Send lowest-level ratings whose reason choice timed out (or all, at start: ``force``)."""
        p = self.pending_reason()
        if p is None:
            return None
        if (
            not force
            and p["boot"] == self.clock.boot_id
            and self.clock.monotonic() - p["created_mono"] < self.cfg.rating.reason_timeout_s
        ):
            return None
        return self._run("reason_timeout", lambda cur, out: self._finalize_pending(cur, out))
