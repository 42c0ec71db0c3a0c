"""Per-visit expression distributions and k-anonymous windows, in memory only.

A visit's distribution is the mean of its frames' softmax outputs. A window's ``class_shares`` is
the mean of its visits' distributions (each visit weighs the same, however long it lasted). A window
closes every ``window_s`` seconds of the monotonic clock; it is published only if it holds at least
``k`` visits, otherwise its visits are carried into the next window (whose ``window_start`` then
stays at the first carried window's start). Nothing per visit is ever returned or published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from device.vision.classify import CLASSES

POSITIVE = {"happy": 1.0, "surprise": 0.5}
NEGATIVE = ("angry", "disgust", "fear", "sad")


def satisfaction_score(shares: dict[str, float]) -> float:
    """score = happy + 0.5*surprise - (angry + disgust + fear + sad); neutral counts 0. In [-1, 1]."""
    s = sum(w * shares.get(c, 0.0) for c, w in POSITIVE.items()) - sum(shares.get(c, 0.0) for c in NEGATIVE)
    return max(-1.0, min(1.0, round(s, 4)))


@dataclass
class _Visit:
    ticket_no: int
    prob_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(CLASSES), np.float64))
    frames: int = 0


class WindowAggregator:
    """Not thread-safe by itself: VisionService calls it under its lock."""

    def __init__(self, counter: int, k: int, window_s: float, now_mono: float, now_wall: datetime) -> None:
        self.counter, self.k, self.window_s = counter, k, window_s
        self._window_mono = now_mono
        self._window_wall = now_wall
        self._visit: _Visit | None = None
        self._done: list[np.ndarray] = []  # per-visit mean distributions, pending publication
        self._frames = 0
        self.published = 0
        self.carried = 0  # windows closed with fewer than k visits

    @property
    def in_visit(self) -> bool:
        return self._visit is not None

    @property
    def pending_visits(self) -> int:
        return len(self._done)

    def visit_started(self, ticket_no: int) -> None:
        if self._visit is not None:
            self.visit_ended(self._visit.ticket_no)
        self._visit = _Visit(ticket_no)

    def visit_ended(self, ticket_no: int | None = None) -> bool:
        """Close the current visit (if ``ticket_no`` matches or is None). Returns True if closed."""
        v = self._visit
        if v is None or (ticket_no is not None and v.ticket_no != ticket_no):
            return False
        self._visit = None
        if v.frames:  # a visit without a usable face adds no data and does not count toward k
            self._done.append(v.prob_sum / v.frames)
            self._frames += v.frames
        return True

    def discard_visit(self, ticket_no: int | None = None) -> None:
        """Drop the current visit's data (all of it, or only if it is ``ticket_no``'s)."""
        if self._visit is not None and (ticket_no is None or self._visit.ticket_no == ticket_no):
            self._visit = None

    def add_frame(self, probs: np.ndarray) -> None:
        if self._visit is None:
            return
        self._visit.prob_sum += np.asarray(probs, np.float64)
        self._visit.frames += 1

    def due(self, now_mono: float) -> bool:
        return now_mono - self._window_mono >= self.window_s

    def close_window(self, now_mono: float, now_wall: datetime) -> dict[str, Any] | None:
        """Close the window; return SentimentWindow data if >= k visits, else carry them over."""
        self._window_mono = now_mono
        if not self._done:
            self._window_wall = now_wall  # nothing to carry: the next window starts now
            return None
        if len(self._done) < self.k:
            self.carried += 1
            return None
        mean = np.mean(np.stack(self._done), axis=0)
        mean = mean / mean.sum()
        shares = {c: round(float(p), 4) for c, p in zip(CLASSES, mean, strict=True)}
        data = {
            "counter": self.counter,
            "window_start": self._window_wall.isoformat(),
            "window_end": now_wall.isoformat(),
            "visits": len(self._done),
            "k": self.k,
            "frames": self._frames,
            "class_shares": shares,
            "score": satisfaction_score(shares),
        }
        self._done, self._frames = [], 0
        self._window_wall = now_wall
        self.published += 1
        return data
