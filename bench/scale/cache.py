"""The bench's filled databases, cached under build/bench-scale/ (gitignored): fill once, reuse.

SQLite: ``province-year.sqlite3`` beside a marker ``province-year.sqlite3.json`` written only after
the fill finished (a fill cut short is started again). PostgreSQL: a server data folder kept under
``pg/`` and started again on the next run (tests/gateway/pg.py's settings), marker ``pg.json``.
"""

from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path

from bench.scale.fill import fill
from hil.harness.pg import PG_BIN, PostgresServer

ROOT = Path(__file__).resolve().parents[2] / "build" / "bench-scale"
FIRST, LAST, PER_DAY = date(2025, 12, 1), date(2026, 11, 30), 110


class CachedPostgres(PostgresServer):
    """A PostgreSQL server whose data folder outlives the run."""

    def start(self) -> CachedPostgres:
        if not (self.data / "PG_VERSION").exists():
            super().start()
            return self
        self.sock.mkdir(exist_ok=True)
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        r = self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts,
                      "-w", "-t", "120", "start")
        if r.returncode:
            raise RuntimeError(f"pg_ctl start failed: {r.stderr}")
        return self


def sqlite_db() -> tuple[str, dict]:
    ROOT.mkdir(parents=True, exist_ok=True)
    path = ROOT / "province-year.sqlite3"
    marker = path.with_suffix(".sqlite3.json")
    url = f"sqlite:///{path}"
    if not marker.exists():
        for p in (path, path.with_suffix(".sqlite3-wal"), path.with_suffix(".sqlite3-shm")):
            p.unlink(missing_ok=True)
        print(f"filling {path} (once) through the real writer ...", flush=True)
        marker.write_text(json.dumps(fill(url, FIRST, LAST, PER_DAY)))
    return url, json.loads(marker.read_text())


def postgres_db() -> tuple[PostgresServer, dict]:
    ROOT.mkdir(parents=True, exist_ok=True)
    marker = ROOT / "pg.json"
    pg = CachedPostgres(ROOT / "pg")
    if not marker.exists() and (pg.data / "PG_VERSION").exists():
        pg.start()
        pg.stop()
        import shutil

        shutil.rmtree(pg.data)  # an unfinished fill: start again
    pg.start()
    if not marker.exists():
        print(f"filling PostgreSQL at {pg.workdir} (once) through the real writer ...", flush=True)
        marker.write_text(json.dumps(fill(pg.url, FIRST, LAST, PER_DAY)))
    return pg, json.loads(marker.read_text())


def migrate(url: str) -> dict:
    """Bring a cached database filled by an older schema up to date (e.g. v8's month rollups built
    from its day rollups), timed: the gateway started by the bench would otherwise do it at start."""
    from gateway.store import Store

    store = Store(url)
    t0 = time.perf_counter()
    applied = store.migrate()
    store.close()
    return {"applied": applied, "migrate_s": round(time.perf_counter() - t0, 1), "load": os.getloadavg()}


def main() -> None:  # python -m bench.scale.cache sqlite|postgresql [migrate]: fill (or migrate) only
    import sys

    migrating = sys.argv[2:] == ["migrate"]
    if sys.argv[1] == "sqlite":
        url, info = sqlite_db()
        print(migrate(url) if migrating else info)
    else:
        pg, info = postgres_db()
        print(migrate(pg.url) if migrating else info)
        pg.stop()


if __name__ == "__main__":
    main()
