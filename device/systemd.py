"""systemd integration (``Type=notify`` + ``WatchdogSec``) through the ``sdnotify`` package.

Invariants:

* Outside systemd (no ``NOTIFY_SOCKET``) nothing is sent and no thread is started.
* ``READY=1`` is sent once, when the kiosk's HTTP server is serving (the display can load), so
  ``systemctl start`` and units ordered after the kiosk wait for a kiosk that works.
* ``WATCHDOG=1`` is sent every third of ``WATCHDOG_USEC``, and only after the liveness probe passed:
  a GET of the kiosk's own ``/api/status`` on loopback, which goes through the HTTP event loop, the
  request thread pool and the queue engine's lock. A kiosk that is stopped (SIGSTOP), deadlocked or
  stuck stops pinging, and systemd kills and restarts it after ``WatchdogSec``. Until READY the pings
  only prove the process runs (startup under load may outlast ``WatchdogSec``).
* ``STATUS=`` carries one line for ``systemctl status``; ``STOPPING=1`` is sent on shutdown. A
  self-restart onto an update (same PID, ``execv``) is announced as ``RELOADING=1`` with the watchdog
  lengthened to ``RESTART_WATCHDOG_S``; the next ``READY=1`` puts ``WatchdogSec`` back. (Found by the
  virtual Pi: the 60 s watchdog killed the kiosk while it re-executed onto new code, and the update
  was rolled back.)
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import sdnotify

log = logging.getLogger("motcua.systemd")

PROBE_TIMEOUT_S = 5.0
RESTART_WATCHDOG_S = 600.0  # a self-restart onto new code: two interpreter starts on a slow Pi


def watchdog_period(env: Mapping[str, str], pid: int) -> float | None:
    """Seconds between pings (a third of WATCHDOG_USEC), or None when no watchdog is asked for us."""
    usec, for_pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec or (for_pid and for_pid != str(pid)):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC=%r", usec)
        return None
    return value / 3e6 if value > 0 else None


def http_probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> Callable[[], bool]:
    """A liveness probe: True when ``url`` answers 200 within ``timeout``."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL
                return resp.status == 200
        except OSError as exc:
            log.warning("liveness probe %s failed: %s", url, exc)
            return False

    return probe


class ServiceNotifier:
    """Tells systemd when the kiosk is ready, and keeps telling it that the kiosk is alive."""

    def __init__(self, ready: Callable[[], bool], probe: Callable[[], bool], status: str = "",
                 env: Mapping[str, str] | None = None, notifier: Any = None) -> None:
        env = os.environ if env is None else env
        self.enabled = bool(env.get("NOTIFY_SOCKET"))
        self.period = watchdog_period(env, os.getpid()) if self.enabled else None
        self.ready, self.probe, self.status = ready, probe, status
        self._n = notifier if notifier is not None else (sdnotify.SystemdNotifier() if self.enabled else None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent: list[str] = []  # what was sent, for tests and the log

    def _notify(self, state: str) -> None:
        if self._n is not None:
            self._n.notify(state)
            self.sent.append(state)

    def start(self) -> None:
        if not self.enabled:
            return
        self._thread = threading.Thread(target=self._run, name="systemd-notify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        step = min(0.2, self.period or 0.2)
        waited = 0.0
        while not self.ready():
            if self._stop.wait(step):
                return
            waited += step
            if self.period and waited >= self.period:  # starting, not yet serving: the process runs
                self._notify("WATCHDOG=1")
                waited = 0.0
        ready = "READY=1\nSTATUS=" + (self.status or "serving")
        if self.period:  # the unit's WatchdogSec again, after a restart that lengthened it
            ready += f"\nWATCHDOG_USEC={int(self.period * 3e6)}"
        self._notify(ready)
        log.info("systemd: READY=1 (watchdog every %s s)", self.period)
        while self.period and not self._stop.wait(self.period):
            if self.probe():
                self._notify("WATCHDOG=1")
            else:
                log.warning("kiosk liveness probe failed: no watchdog ping this period")

    def stop(self, restarting: bool = False) -> None:
        """STOPPING=1; or, when the kiosk re-executes itself (an update), RELOADING=1 with a longer
        watchdog for the restart (restored at the next READY=1), so systemd neither takes the
        restart for a stop nor kills the slow re-start as hung."""
        if self.enabled and not self._stop.is_set():
            self._stop.set()
            if restarting:
                self._notify(f"RELOADING=1\nSTATUS=restarting on a new release\n"
                             f"WATCHDOG_USEC={int(RESTART_WATCHDOG_S * 1e6)}")
            else:
                self._notify("STOPPING=1")
        if self._thread is not None:
            self._thread.join(PROBE_TIMEOUT_S + 1)


def for_server(server: Any, host: str, status: str) -> ServiceNotifier:
    """The notifier for a uvicorn server: ready when it serves, probed on its own /api/status."""

    def ready() -> bool:
        return bool(getattr(server, "started", False))

    def probe() -> bool:
        port = server.servers[0].sockets[0].getsockname()[1]  # the bound port (config may say 0)
        loop_host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        if ":" in loop_host:
            loop_host = f"[{loop_host}]"
        return http_probe(f"http://{loop_host}:{port}/api/status")()

    return ServiceNotifier(ready, probe, status)
