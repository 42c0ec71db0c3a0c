"""The motcua-gateway command: migrate, config errors, user add (real processes, real files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_migrate_then_up_to_date(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'g.sqlite3'}"
    r = _cli("migrate", "--db", db, "--data-dir", str(tmp_path))
    assert r.returncode == 0 and "applied [1, 2, 3, 4]" in r.stdout, r.stderr
    r = _cli("migrate", "--db", db, "--data-dir", str(tmp_path))
    assert r.returncode == 0 and "up to date" in r.stdout


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text('[broker]\nurl = "http://broker"\n')
    r = _cli("run", "--config", str(cfg))
    assert r.returncode == 2
    assert "configuration error: [broker] url='http://broker'" in r.stderr


def test_user_add_writes_argon2_hash(tmp_path: Path) -> None:
    r = _cli(
        "user",
        "add",
        "chi",
        "--role",
        "operator",
        "--data-dir",
        str(tmp_path),
        env={"MOTCUA_NEW_PASSWORD": "mat-khau-dai"},
    )
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "users.json").read_text()
    assert '"chi"' in text and "$argon2id$" in text and "mat-khau-dai" not in text

    r = _cli("user", "remove", "chi", "--data-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert '"chi"' not in (tmp_path / "users.json").read_text()
    r = _cli("user", "remove", "chi", "--data-dir", str(tmp_path))
    assert r.returncode == 1 and "no user 'chi'" in r.stderr


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    from tests.support.mosquitto import free_port

    r = _cli(
        "run",
        "--db",
        f"postgresql+psycopg://motcua:pw@127.0.0.1:{free_port()}/motcua",
        "--data-dir",
        str(tmp_path),
    )
    assert r.returncode == 3
    assert r.stderr.startswith("database error: postgresql+psycopg://motcua:***@127.0.0.1:")
    assert "pw@" not in r.stderr and "Traceback" not in r.stderr


def _audit(db: Path) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT actor, action, office_code, target FROM audit_log ORDER BY id").fetchall()


def test_device_bind_checks_binds_and_audits(tmp_path: Path) -> None:
    """`motcua-gateway device bind`: the API's checks, the binding, the audit line; held events of the
    device are released only with --release-held, through the same rules as live events."""
    import sqlite3
    from datetime import UTC, datetime

    from tests.gateway.kiosk_sim import EventFactory

    path = tmp_path / "g.sqlite3"
    db = f"sqlite:///{path}"
    base = ("--db", db, "--data-dir", str(tmp_path))
    r = _cli("device", "bind", "--device", "k-new-1", "--office", "99999", "--counter", "1", *base)
    assert r.returncode == 1 and "office '99999' is not in the registry" in r.stderr
    r = _cli("device", "bind", "--device", "k-new-1", "--office", "03390", "--counter", "9", *base)
    assert r.returncode == 1 and "office 03390 has counters 1..3" in r.stderr
    r = _cli("device", "bind", "--device", "K NEW", "--office", "03390", "--counter", "1", *base)
    assert r.returncode == 2 and "lower-case letters" in r.stderr
    assert _audit(path) == []  # nothing refused was written
    # held events of the device (as ingest stores them while the device is unregistered): ticket 1
    # issued, and issued again (a restated step: stays held as conflicting_visit when released)
    now = datetime.now(UTC)
    f = EventFactory("k-new-1", "03390", 2)
    ev = f.visit(1, now.date(), now, 5.0, 60.0)[0]
    again = f.visit(1, now.date(), now, 5.0, 60.0)[0]
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO events (event_id, type, device_id, office_code, ts, clock_synced, seq, boot_id,"
            " mono_ms, received_at, data, held) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(e.event_id, e.type.value, e.device_id, e.office_code, e.ts.timestamp(), True, e.seq,
              e.boot_id, e.mono_ms, e.ts.timestamp(), e.data.model_dump_json(), "unregistered")
             for e in (ev, again)],
        )
    r = _cli("device", "bind", "--device", "k-new-1", "--office", "03390", "--counter", "2", *base)
    assert r.returncode == 0, r.stderr
    assert "bound to office 03390 counter 2 by cli:" in r.stdout
    with sqlite3.connect(path) as conn:
        dev = conn.execute("SELECT office_code, counter, registered, bound_by FROM devices "
                           "WHERE device_id = 'k-new-1'").fetchone()
        held = conn.execute("SELECT held FROM events WHERE event_id = ?", (ev.event_id,)).fetchone()
    assert dev[:3] == ("03390", 2, 1) and dev[3].startswith("cli:")
    assert held == ("unregistered",)  # binding alone releases nothing
    r = _cli("device", "bind", "--device", "k-new-1", "--office", "03390", "--counter", "2", "--release-held",
             *base)
    assert r.returncode == 0 and "held:conflicting_visit 1" in r.stdout and "released 1" in r.stdout, r.stdout
    with sqlite3.connect(path) as conn:
        held = conn.execute("SELECT held FROM events WHERE event_id = ?", (ev.event_id,)).fetchone()
        assert held == (None,)
        held = conn.execute("SELECT held FROM events WHERE event_id = ?", (again.event_id,)).fetchone()
        assert held == ("conflicting_visit",)
        assert conn.execute("SELECT count(*) FROM visits WHERE device_id = 'k-new-1'").fetchone() == (1,)
    actions = [(a[0].split(":")[0], a[1], a[2]) for a in _audit(path)]
    assert actions == [("cli", "bind_device", "03390"), ("cli", "bind_device", "03390"),
                       ("cli", "release_held", "03390")]
