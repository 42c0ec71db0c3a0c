"""Shared bench parts: a gateway subprocess, a Mosquitto, an operator token, event streams."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.auth import sha256_hex
from hil.harness.mosquitto import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]
TOKEN = "bench-operator-token-0123456789abcdef"


class GatewayProcess:
    """``motcua-gateway run`` in a child process with its own config; ``.client`` has operator rights."""

    def __init__(
        self,
        workdir: Path,
        broker_url: str,
        db_url: str = "",
        extra: str = "",
        client_id: str = "bench-gateway",
        shared_group: str = "",
        batch_size: int = 0,
    ) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config = workdir / "gateway.toml"
        self.config.write_text(f"""
data_dir = "{workdir / "data"}"
[web]
port = {self.port}
[broker]
url = "{broker_url}"
client_id = "{client_id}"
shared_group = "{shared_group}"
[database]
url = "{db_url}"
{f"batch_size = {batch_size}" if batch_size else ""}
[auth]
secret_key = "{"b" * 40}"
[[auth.api_tokens]]
name = "bench"
role = "operator"
token_sha256 = "{sha256_hex(TOKEN)}"
{extra}
""")
        self.proc: subprocess.Popen | None = None
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}
        )

    def start(self) -> GatewayProcess:
        log = open(self.workdir / "gateway.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "--log-level",
                "WARNING",
                "run",
                "--config",
                str(self.config),
            ],
            cwd=REPO,
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_port(self.port, timeout=120)
        deadline = time.monotonic() + 60
        while not self.client.get("/healthz").json().get("mqtt"):
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not connect to the broker")
            time.sleep(0.1)
        return self

    def stats(self) -> dict[str, Any]:
        return self.client.get("/api/v1/stats/ingest").json()

    def stop(self) -> None:
        self.client.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def percentile(values: list[float], q: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    return v[min(len(v) - 1, max(0, int(round(q / 100 * len(v) + 0.5)) - 1))]
