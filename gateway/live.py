"""In-process fan-out of live updates (ingest thread → SSE clients on the event loop).

Messages are small dicts: ``{"kind": "office", "office_code": ...}`` when an office's figures
changed, ``{"kind": "device", "device_id": ..., "state": ...}`` when a device's status or health
changed. Slow subscribers lose the oldest updates (they are hints to refetch), never block ingest.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

QUEUE_SIZE = 256


class LiveHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = set()
        self.published = 0
        self.dropped = 0

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, message: dict[str, Any]) -> None:
        """Thread-safe; callable from the MQTT thread or the event loop."""
        self.published += 1
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            try:
                loop.call_soon_threadsafe(self._put, queue, message)
            except RuntimeError:  # loop closed
                with self._lock:
                    self._subscribers.discard((loop, queue))

    def _put(self, queue: asyncio.Queue[dict[str, Any]], message: dict[str, Any]) -> None:
        if queue.full():
            queue.get_nowait()
            self.dropped += 1
        queue.put_nowait(message)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Yield messages until the consumer stops iterating (e.g. the SSE client disconnects)."""
        entry = (asyncio.get_running_loop(), asyncio.Queue[dict[str, Any]](QUEUE_SIZE))
        with self._lock:
            self._subscribers.add(entry)
        try:
            while True:
                yield await entry[1].get()
        finally:
            with self._lock:
                self._subscribers.discard(entry)
