"""Per-client limit for the public booking page: no CAPTCHA (it shuts out the elderly), a budget.

Each client address may make ``per_client_per_hour`` counted actions in any sliding hour: a
booking, a cancel, or a look-up of a code that does not exist (guessing codes). Reading the page
and the free slots is not counted. The client is the TCP peer or, behind a trusted proxy, the
address it reports (``gateway.login_limit.client_address``), counted as the login limit counts it
(``gateway.login_limit.client_key``): IPv6 by its /64 so one household cannot rotate addresses, an
IPv4-mapped IPv6 address (a dual-stack listener) as its IPv4 address, not as the one /64 that every
IPv4 client would share. Memory is bounded: past ``MAX_TRACKED`` clients, empty windows
are dropped, and if that is not enough the oldest client's window goes.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from gateway.login_limit import client_key

WINDOW_S = 3600.0
MAX_TRACKED = 20_000


class ClientBudget:
    def __init__(self, per_hour: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_hour, self.clock = per_hour, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _window(self, key: str, now: float) -> deque[float]:
        q = self._hits.setdefault(key, deque())
        while q and q[0] <= now - WINDOW_S:
            q.popleft()
        return q

    def retry_after(self, address: str) -> int:
        """0 if the client may act now, else the seconds until it may."""
        with self._lock:
            return self._wait(client_key(address), self.clock())

    def spend(self, address: str) -> int:
        """Count one action and return 0, or return the seconds to wait and count nothing. One
        step under the lock: concurrent requests of one client cannot all pass the check first."""
        key, now = client_key(address), self.clock()
        with self._lock:
            wait = self._wait(key, now)
            if wait:
                return wait
            self._window(key, now).append(now)
            if len(self._hits) > MAX_TRACKED:
                self._trim(now)
            return 0

    def tracked(self) -> int:
        """How many clients are remembered (at most ``MAX_TRACKED`` after a trim)."""
        with self._lock:
            return len(self._hits)

    def _wait(self, key: str, now: float) -> int:
        if key not in self._hits:  # a check alone keeps nothing: only spending is remembered
            return 0
        q = self._window(key, now)
        if len(q) < self.per_hour:
            return 0
        return max(1, math.ceil(q[0] + WINDOW_S - now))

    def _trim(self, now: float) -> None:
        for k in [k for k, q in self._hits.items() if not q or q[-1] <= now - WINDOW_S]:
            del self._hits[k]
        while len(self._hits) > MAX_TRACKED:
            oldest = min(self._hits, key=lambda k: self._hits[k][-1])
            del self._hits[oldest]
