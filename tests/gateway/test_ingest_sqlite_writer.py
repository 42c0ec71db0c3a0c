"""The SQLite ingest writer's own connection: faster, exactly as durable.

The writer keeps one connection with a large page cache and checkpoints every ~16 MiB of WAL
(gateway/store/db.py). Durability must not move: ``synchronous=FULL`` in WAL mode on every
connection, and a batch that ``apply_batch`` returned (after which the gateway acknowledges it)
is in the database after the process is killed before any checkpoint.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from gateway.store import Store
from gateway.store.db import WRITER_CACHE_KIB, WRITER_CHECKPOINT_PAGES

REPO = Path(__file__).resolve().parents[2]


def _pragmas(engine) -> dict[str, object]:
    with engine.connect() as conn:
        return {
            p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
            for p in ("journal_mode", "synchronous", "cache_size", "wal_autocheckpoint")
        }


def test_writer_connection_keeps_full_durability(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    try:
        store.migrate()
        w = _pragmas(store.writer_engine)
        assert w == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "cache_size": -WRITER_CACHE_KIB,
            "wal_autocheckpoint": WRITER_CHECKPOINT_PAGES,
        }
        r = _pragmas(store.engine)
        assert (r["journal_mode"], r["synchronous"]) == ("wal", 2)
    finally:
        store.close()


def test_applied_batch_survives_a_kill_before_any_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "g.sqlite3"
    child = textwrap.dedent(f"""
        import os, signal, time
        from zoneinfo import ZoneInfo
        from bench.ingest.procs import events
        from contract.codec import decode
        from gateway.store import Store
        from gateway.store.writer import Incoming, apply_batch
        store = Store("sqlite:///{db}")
        store.migrate()
        items = [Incoming(decode(t, p), time.time()) for t, p in events(1500, 7)]
        out = apply_batch(store, items, {{}}, ZoneInfo("Asia/Ho_Chi_Minh"), set())
        print(out.accepted, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # as a crash right after the ack: no close, no checkpoint
    """)
    r = subprocess.run([sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == -9, r.stderr
    assert int(r.stdout.strip()) == 1500
    assert Path(f"{db}-wal").stat().st_size > 0  # the batch was still in the WAL only
    store = Store(f"sqlite:///{db}")
    try:
        assert store.event_count() == 1500
    finally:
        store.close()
