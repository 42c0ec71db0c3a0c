"""One loop in a daemon thread with a stop event: the shape the kiosk's and the gateway's background
parts share (QR camera, feed producer and pushers, hub puller, PostgreSQL live bridge).

A class derives from :class:`Worker`, calls ``Worker.__init__(self, name, target)`` in its own
``__init__`` and loops ``while not self._stop.is_set()``, sleeping with ``self._stop.wait(s)`` so that
``stop()`` ends the sleep at once. ``stop()`` joins for at most ``join_timeout_s``: a loop stuck in a
call that ignores the event (a network read) is left to die with the process, being a daemon."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Worker:
    def __init__(self, name: str, target: Callable[[], None], join_timeout_s: float = 30.0) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker = (name, target, join_timeout_s)

    def start(self) -> None:
        name, target, _ = self._worker
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._worker[2])
