"""Login attempt limits that stop guessing without letting a stranger lock the real user out.

Three windows over the last ``window_s`` seconds, and one slow lane:

- per (client, user): ``max_failures`` failed attempts block that client for that user until the
  oldest one leaves the window (``RateLimited`` with the seconds to wait);
- per client: ``client_max_failures`` failed attempts (any user names) block that client;
- per user, from all clients together: past ``user_slow_after`` failures the user is "under attack".
  Attempts for that user from a client that has itself failed recently then go through a slow
  lane: one every ``slow_interval_s`` seconds for that user, whatever the number of clients (a
  global ceiling on the guess rate), waiting at most ``slow_max_wait_s`` (else ``RateLimited``).
  A client with no recent failure is never slowed or blocked by other clients' failures, so the
  real user, on their own machine, still signs in with the right password.

Invariants:

- An attempt is counted as a failure *before* the (slow) password check and forgiven on success
  (``succeeded``), so that many guesses sent at once cannot all pass the limits while none has
  failed yet.
- The client is the TCP peer, or the address a trusted proxy put in ``X-Forwarded-For``
  (``client_address``); a header from anyone else is ignored, so it cannot be used to dodge limits.
- Memory is bounded: when more than ``MAX_TRACKED`` keys are held, windows with nothing left in
  them are dropped; user names are cut to ``NAME_KEY_LEN`` characters (no account has a longer
  name), so a guess cannot make the gateway keep a megabyte-long key.
- An IPv6 client is counted by its /64 (one household or one VM gets a whole /64, so per-address
  counting would let it pick a fresh address for every guess).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

MAX_TRACKED = 10_000  # keys per table kept before stale ones are dropped
NAME_KEY_LEN = 64  # longest user name the config accepts
IPV6_PREFIX = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimited(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class LoginLimits:
    max_failures: int = 5
    window_s: int = 300
    client_max_failures: int = 20
    user_slow_after: int = 10
    slow_interval_s: float = 2.0
    slow_max_wait_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """One admitted attempt: who, from where, when, and how long to wait before checking it."""

    user: str
    client: str
    at: float
    delay_s: float


class LoginLimiter:
    """Thread-safe; ``begin`` before the password check, ``succeeded`` after a right one."""

    def __init__(self, limits: LoginLimits, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._pairs: dict[tuple[str, str], deque[float]] = {}
        self._clients: dict[str, deque[float]] = {}
        self._users: dict[str, deque[float]] = {}
        self._slow_next: dict[str, float] = {}
        self.limited = 0
        self.slowed = 0

    def begin(self, username: str, client: str) -> Attempt:
        """Admit an attempt (counted as failed until ``succeeded``) or raise ``RateLimited``."""
        user = username.lower()[:NAME_KEY_LEN]
        client = client_key(client)
        now = self._clock()
        with self._lock:
            self._bound(now)
            pair = self._window(self._pairs, (client, user), now)
            per_client = self._window(self._clients, client, now)
            per_user = self._window(self._users, user, now)
            lim = self.limits
            for window, cap in ((pair, lim.max_failures), (per_client, lim.client_max_failures)):
                if len(window) >= cap:
                    self.limited += 1
                    raise RateLimited(max(1, math.ceil(window[0] + lim.window_s - now)))
            delay = 0.0
            if len(per_user) >= lim.user_slow_after and (pair or per_client):
                slot = max(now, self._slow_next.get(user, 0.0))
                delay = slot - now
                if delay > lim.slow_max_wait_s:
                    self.limited += 1
                    raise RateLimited(max(1, math.ceil(delay)))
                self._slow_next[user] = slot + lim.slow_interval_s
                self.slowed += 1
            for window in (pair, per_client, per_user):
                window.append(now)
        return Attempt(user, client, now, delay)

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: this client's failures for the user and the attempt are forgiven."""
        with self._lock:
            self._pairs.pop((attempt.client, attempt.user), None)
            for table, key in ((self._clients, attempt.client), (self._users, attempt.user)):
                window = table.get(key)
                if window is not None and attempt.at in window:
                    window.remove(attempt.at)

    def tracked(self) -> int:
        with self._lock:
            return len(self._pairs)

    def _window(self, table: dict, key: object, now: float) -> deque[float]:
        window = table.setdefault(key, deque())
        while window and window[0] <= now - self.limits.window_s:
            window.popleft()
        return window

    def _bound(self, now: float) -> None:
        horizon = now - self.limits.window_s
        for table in (self._pairs, self._clients, self._users):
            if len(table) > MAX_TRACKED:
                for key in [k for k, w in table.items() if not w or w[-1] <= horizon]:
                    del table[key]
        if len(self._slow_next) > MAX_TRACKED:
            self._slow_next = {u: t for u, t in self._slow_next.items() if t > now}


def client_key(client: str) -> str:
    """The address as counted: IPv4 as is, IPv6 as its /64, anything else (e.g. "unknown") as is."""
    try:
        addr = ipaddress.ip_address(client)
    except ValueError:
        return client[:NAME_KEY_LEN]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, IPV6_PREFIX), strict=False))
    return str(addr)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["127.0.0.1", "10.0.0.0/8"]`` → networks; raises ``ValueError`` naming the bad entry."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v, strict=False))
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address or network") from None
    return tuple(out)


def client_address(peer: str | None, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The client to count attempts against.

    The TCP peer, unless it is a trusted proxy: then the right-most ``X-Forwarded-For`` address that
    is not itself a trusted proxy (proxies append on the right; what a client wrote is on the left).
    A malformed entry there means the proxy chain cannot be read: the peer is used.
    """
    if peer is None:
        return "unknown"
    if not _in(peer, trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            addr = ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not any(addr in net for net in trusted):
            return str(addr)
    return peer


def _in(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(addr in net for net in trusted)
