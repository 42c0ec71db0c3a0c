"""Per-client limit for the public booking page: no CAPTCHA (it shuts out the elderly), a budget.

Each client address may make ``per_client_per_hour`` counted actions in any sliding hour: a
booking, a cancel, or a look-up of a code that does not exist (guessing codes). Reading the page
and the free slots is not counted. The client is the TCP peer or, behind a trusted proxy, the
address it reports (``gateway.login_limit.client_address``); IPv6 is counted by its /64 so one
household cannot rotate addresses. Memory is bounded: past ``MAX_TRACKED`` clients, empty windows
are dropped, and if that is not enough the oldest client's window goes.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 3600.0
MAX_TRACKED = 20_000


def client_key(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


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
        key, now = client_key(address), self.clock()
        with self._lock:
            q = self._window(key, now)
            if len(q) < self.per_hour:
                return 0
            return max(1, math.ceil(q[0] + WINDOW_S - now))

    def spend(self, address: str) -> None:
        key, now = client_key(address), self.clock()
        with self._lock:
            self._window(key, now).append(now)
            if len(self._hits) > MAX_TRACKED:
                self._trim(now)

    def _trim(self, now: float) -> None:
        for k in [k for k, q in self._hits.items() if not q or q[-1] <= now - WINDOW_S]:
            del self._hits[k]
        while len(self._hits) > MAX_TRACKED:
            oldest = min(self._hits, key=lambda k: self._hits[k][-1])
            del self._hits[oldest]
