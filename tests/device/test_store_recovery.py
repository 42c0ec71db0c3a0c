"""The kiosk's own store at start (issue 8): a zero-length, corrupt or WAL-truncated database is
detected, moved aside for forensics and reported; ticket numbers and seq are never reused."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from tests.device.helpers import make_engine, outbox_events
from tests.device.kiosk_proc import KioskProc, Watcher, write_config


def _issue(q, n: int) -> list[int]:
    return [q.issue().ticket_no for _ in range(n)]


def _snapshot_open_db(src: Path, dst: Path) -> None:
    """Copy kiosk.db, its WAL and the high-water file while the store is open: a power cut's state."""
    dst.mkdir()
    for f in src.iterdir():
        if f.name.startswith("kiosk"):
            shutil.copy2(f, dst / f.name)


def test_zero_length_database_is_moved_aside_and_numbering_continues(tmp_path):
    q, store, clock = make_engine(tmp_path)
    assert _issue(q, 4) == [1, 2, 3, 4]
    store.close()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"kiosk.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "kiosk.db").write_bytes(b"")  # what a power cut on some SD cards leaves
    q2, store2, _ = make_engine(tmp_path, clock)
    rec = store2.recovery
    assert rec is not None and "empty" in rec.problem and rec.moved_to.startswith("kiosk.db.corrupt-")
    assert (tmp_path / rec.moved_to).exists() and (tmp_path / rec.moved_to).stat().st_size == 0
    assert "unknown number of unsent events lost" in rec.message()
    assert q2.issue().ticket_no == 5  # not 0001 again
    assert outbox_events(store2)[-1]["seq"] > 4  # seq continues too


def test_truncated_wal_loses_transactions_but_never_a_number(tmp_path):
    q, store, clock = make_engine(tmp_path)
    _issue(q, 3)
    cut = tmp_path / "cut"
    _snapshot_open_db(tmp_path, cut)  # kiosk.db + kiosk.db-wal as a power cut leaves them
    wal = cut / "kiosk.db-wal"
    assert wal.stat().st_size > 4096, "the tickets are still in the WAL"
    with open(wal, "r+b") as f:
        f.truncate(wal.stat().st_size // 3)  # the last commits are gone
    q2, store2, _ = make_engine(cut, clock)
    assert store2.recovery is None  # SQLite reads the valid prefix of the WAL: a consistent database
    got = q2.issue()
    assert got.ok and got.ticket_no == 4, "a number from the lost transactions was issued again"
    seqs = [e["seq"] for e in outbox_events(store2)]
    assert seqs[-1] > 3 and len(seqs) == len(set(seqs))


def test_overwritten_header_is_not_a_database(tmp_path):
    q, store, clock = make_engine(tmp_path)
    _issue(q, 2)
    store.close()
    with open(tmp_path / "kiosk.db", "r+b") as f:
        f.write(random.Random(1).randbytes(100))
    q2, store2, _ = make_engine(tmp_path, clock)
    assert store2.recovery is not None and "not a database" in store2.recovery.problem
    assert q2.issue().ticket_no == 3


def test_random_corruption_is_caught_or_harmless(tmp_path):
    """Random bytes over the data pages: the kiosk either detects and moves the database aside, or
    the damage missed every record (free space) and everything still works; never a crash, never a
    number reused."""
    caught = 0
    for seed in range(12):
        d = tmp_path / f"s{seed}"
        d.mkdir()
        q, store, clock = make_engine(d)
        _issue(q, 40)
        q.next()
        store.close()
        db = d / "kiosk.db"
        rng = random.Random(seed)
        size = db.stat().st_size
        with open(db, "r+b") as f:
            for _ in range(8):
                f.seek(rng.randrange(4096, size - 64))  # keep page 1 (the header): the cases above
                f.write(rng.randbytes(rng.randint(4, 64)))
        q2, store2, _ = make_engine(d, clock)
        caught += store2.recovery is not None
        out = q2.issue()
        assert out.ok and out.ticket_no == 41, (seed, out)
        assert q2.next().ok and q2.snapshot()["waiting"] >= 0
        store2.close()
    print(f"\nrandom corruption: {caught}/12 detected and moved aside, the rest missed every record")
    assert caught >= 6, f"only {caught}/12 corruptions detected"


def test_runtime_corruption_is_a_refusal_not_a_crash(tmp_path):
    q, store, clock = make_engine(tmp_path)
    _issue(q, 40)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(tmp_path / "kiosk.db", "r+b") as f:  # damaged under the running kiosk
        for page in range(2, 5):
            f.seek(page * 4096)
            f.write(b"\xff" * 4096)
    store._db.execute("PRAGMA cache_size=0")  # no cached pages: the next read sees the damage
    outs = [q.issue(), q.next()]
    assert any(not o.ok for o in outs)
    bad = [o for o in outs if not o.ok]
    assert all(o.kind == "storage_error" and "Lỗi lưu trữ" in o.message for o in bad)
    assert store.corrupt  # the kiosk restarts on this, and the start-up check moves the file aside
    store.close()
    q2, store2, _ = make_engine(tmp_path, clock)
    assert store2.recovery is not None and not store2.corrupt
    assert q2.issue().ticket_no == 41


@pytest.mark.parametrize("damage", ["zero_length", "random_bytes", "truncated_wal"])
def test_kiosk_process_on_a_damaged_database(tmp_path, mosquitto, damage):
    """Real kiosk processes: four tickets while offline (so their events are unsent), the database is
    damaged, the kiosk restarts: it serves (no 500, no traceback), continues at 0005, and a damaged
    file is moved aside and reported in /api/status and in device.started once connected."""
    w = Watcher(mosquitto.port)
    cfg = write_config(tmp_path / "k.toml", device_id=f"kiosk-{damage.replace('_', '-')}")
    data = tmp_path / "d"
    k = KioskProc(cfg, "mqtt://127.0.0.1:1", data).start()  # no broker: events stay in the outbox
    try:
        assert [k.press("ticket")["ticket_no"] for _ in range(4)] == [1, 2, 3, 4]
    finally:
        if damage == "truncated_wal":
            k.kill9()  # the commits are in the WAL
        else:
            k.terminate()  # checkpointed into kiosk.db
    db, wal = data / "kiosk.db", data / "kiosk.db-wal"
    if damage == "zero_length":
        db.write_bytes(b"")
    elif damage == "random_bytes":
        rng = random.Random(7)
        with open(db, "r+b") as f:
            for page in (1, 2, 3):
                f.seek(page * 4096)
                f.write(rng.randbytes(4096))
    else:
        with open(wal, "r+b") as f:
            f.truncate(wal.stat().st_size // 2)
    k = KioskProc(cfg, mosquitto.url, data).start()
    try:
        out = k.press("ticket")
        assert out["status"] == 200 and out["ok"] and out["ticket_no"] == 5, out
        st = k.status()
        moved = sorted(p.name for p in data.glob("kiosk.db.corrupt-*"))
        if damage == "truncated_wal":  # SQLite keeps the valid prefix: consistent, nothing to move
            assert moved == []
        else:
            assert moved and moved[0].startswith("kiosk.db.corrupt-2")
            assert "moved aside to kiosk.db.corrupt-" in st["last_error"]
            w.wait_for(
                lambda: any(e["type"] == "device.started" and e["data"].get("store_recovery")
                            for e in w.events()),
                60,
                "device.started with store_recovery",
            )
            started = [e for e in w.events() if e["type"] == "device.started"][-1]
            lost = "unknown number of" if damage == "zero_length" else "5"
            assert f"{lost} unsent events lost" in started["data"]["store_recovery"], started["data"]
        w.wait_for(lambda: any(e["type"] == "ticket.issued" for e in w.events()), 60, "ticket event")
        by_id = {e["event_id"]: e for e in w.events()}
        seqs = [e["seq"] for e in by_id.values()]
        assert len(seqs) == len(set(seqs))  # a seq is never used by two events
        new_ticket = next(e for e in by_id.values() if e["type"] == "ticket.issued")
        assert new_ticket["data"]["ticket_no"] == 5 and new_ticket["seq"] > 5  # after the 5 lost events
    finally:
        k.terminate()
        w.close()
    assert "Traceback" not in k.log.read_text()
