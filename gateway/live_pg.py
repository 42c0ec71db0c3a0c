"""Live updates across gateway processes sharing one PostgreSQL: ``NOTIFY``/``LISTEN``.

With a shared subscription each process ingests part of the traffic, so each process's live hub
alone would only see its own share. Every live message a process publishes is also sent with
``pg_notify('motcua_live', ...)``; a listener thread in every process relays the others' messages
to its own hub (messages carry their origin, so nobody relays its own).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from contract.worker import Worker
from gateway.store import Store

log = logging.getLogger("motcua.gateway.live")

CHANNEL = "motcua_live"
MAX_PAYLOAD = 7900  # PostgreSQL's NOTIFY payload limit is 8000 bytes


class PgLiveBridge(Worker):
    def __init__(self, store: Store, hub: Any) -> None:
        self.store = store
        self.hub = hub
        self.origin = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        url = make_url(store.url).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        Worker.__init__(self, "live-pg-listen", self._listen, join_timeout_s=10)
        self.listening = threading.Event()
        self.relayed = 0

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps({"origin": self.origin, "message": message}, ensure_ascii=False)
        if len(payload.encode()) > MAX_PAYLOAD:
            payload = json.dumps(
                {"origin": self.origin, "message": {k: v for k, v in message.items() if k != "kpi_today"}}
            )  # receivers refetch
        with self.store.engine.begin() as conn:
            conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=0.5):
                            self._relay(n.payload)
            except psycopg.Error as exc:
                self.listening.clear()
                log.warning("live LISTEN connection failed (%s); retrying", exc)
                self._stop.wait(2.0)

    def _relay(self, payload: str) -> None:
        try:
            doc = json.loads(payload)
        except ValueError:
            return
        if doc.get("origin") == self.origin or not isinstance(doc.get("message"), dict):
            return
        self.relayed += 1
        self.hub.publish(doc["message"])
