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
    assert r.returncode == 0 and "applied [1, 2]" in r.stdout, r.stderr
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
