"""A throw-away PostgreSQL server (Debian's postgresql 15 binaries) for tests and benches.

initdb/postgres refuse to run as root, so as root they run as the ``postgres`` user via runuser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from hil.harness.mosquitto import free_port

PG_BIN = Path(os.environ.get("MOTCUA_PG_BIN", "/usr/lib/postgresql/15/bin"))


def pg_available() -> str | None:
    """None if usable, else the reason it is not."""
    for b in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / b).exists():
            return f"PostgreSQL binary {PG_BIN / b} missing (apt-get install postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser: cannot start postgres as a non-root user"
    return None


class PostgresServer:
    def __init__(self, workdir: Path | None = None) -> None:
        self.port = free_port()
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="pg-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data = self.workdir / "data"
        self.sock = self.workdir / "sock"
        self.log = self.workdir / "pg.log"
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        full = (["runuser", "-u", self.user, "--"] if self.user else []) + list(cmd)
        return subprocess.run(full, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        self.sock.mkdir(exist_ok=True)
        if self.user:
            shutil.chown(self.workdir, self.user)
            shutil.chown(self.sock, self.user)
            os.chmod(self.workdir, 0o755)
        r = self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "motcua",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        if r.returncode:
            raise RuntimeError(f"initdb failed: {r.stderr}")
        opts = (
            f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        r = self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            opts,
            "-w",
            "-t",
            "120",
            "start",
        )
        if r.returncode:
            raise RuntimeError(
                f"pg_ctl start failed: {r.stderr} {self.log.read_text(errors='replace')[-2000:]}"
            )
        self._createdb("motcua")
        return self

    def _createdb(self, name: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            r = self._run(
                str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "motcua", name
            )
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if r.returncode:
            raise RuntimeError(f"createdb failed: {r.stderr}")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://motcua@127.0.0.1:{self.port}/motcua"

    def stop(self) -> None:
        if self.data.exists():
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
