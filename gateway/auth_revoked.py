"""Revoked session ids (logout), kept in ``revoked_sessions.json`` beside ``users.json`` (normally in
``<data_dir>``), so that a logout outlives a restart of the gateway and holds in every process that
shares the folder.

Why a file: a session cookie is signed, not stored, so the only way to end one before it expires
is to remember its id until then. Kept in memory only, a logged-out cookie (copied from a shared
computer, say) was valid again after the next restart, for the rest of its ``session_ttl_s``, and
in any other gateway process all along. The file holds ``{session id: expiry epoch}``; expired ids
are dropped at every write, so it holds at most the logouts of one session lifetime. It is re-read
when it changes (inode, mtime, size), written whole to a temporary file and renamed (atomic).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)
REVOKED_FILE = "revoked_sessions.json"


class RevokedSessions:
    """Session ids refused until their expiry; persisted at ``path`` (None: memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._ids: dict[str, float] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def add(self, sid: str, until: float, now: float) -> None:
        with self._lock:
            self._reload()
            self._ids = {s: t for s, t in self._ids.items() if t > now} | {sid: until}
            if self.path is not None:
                try:
                    self._write(self.path)
                except OSError as e:  # still refused by this process; logged, as a logout never fails
                    log.error("could not write %s (this logout is kept in memory only): %s", self.path, e)

    def __contains__(self, sid: str) -> bool:
        with self._lock:
            self._reload()
            return sid in self._ids

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as e:
            log.error("unreadable %s (logouts before it are not remembered): %s", self.path, e)
            return
        if isinstance(data, dict):
            self._ids |= {s: float(t) for s, t in data.items() if isinstance(t, int | float)}
        self._stamp = stamp

    def _write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self._ids, f)
        os.replace(tmp, path)
        st = path.stat()
        self._stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
