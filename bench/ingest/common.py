"""Shared bench parts: a gateway subprocess, a Mosquitto, an operator token, event streams."""

from __future__ import annotations

import os
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from gateway.config import REGISTRY_DEFAULT
from hil.harness.gateway import gateway_command, process_config
from hil.harness.kiosk_proc import stop_process
from hil.harness.mosquitto import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]
TOKEN = "bench-operator-token-0123456789abcdef"
OFFICE = "03390"  # the bench's kiosks: bench_device(d) at counter d + 1 of this office


def bench_device(d: int) -> str:
    return f"kb{d:04d}-q1"


def bench_registry(path: Path, devices: int) -> Path:
    """The demo registry with the bench's kiosks bound, one per counter of :data:`OFFICE` (which gets
    ``devices`` counters): their events are screened and projected as a real fleet's, not held as
    an unregistered device's."""
    doc = tomllib.loads(REGISTRY_DEFAULT.read_text(encoding="utf-8"))
    for office in doc["offices"]:
        if office["code"] == OFFICE:
            office["counters"] = max(int(office.get("counters", 1)), devices)
    doc["devices"] = [
        *doc.get("devices", []),
        *({"device_id": bench_device(d), "office_code": OFFICE, "counter": d + 1} for d in range(devices)),
    ]
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    return path


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
        registry: Path | None = None,
    ) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config = workdir / "gateway.toml"
        sections: dict[str, Any] = {"registry": {"file": str(registry or "")}}
        sections["broker"] = {"shared_group": shared_group}
        if batch_size:
            sections["database"] = {"batch_size": batch_size}
        self.config.write_text(process_config(workdir / "data", self.port, broker_url, db_url, TOKEN,
                                              client_id=client_id, **sections) + extra)
        self.proc: subprocess.Popen | None = None
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}
        )

    def start(self) -> GatewayProcess:
        log = open(self.workdir / "gateway.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            gateway_command(self.config),
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
        stop_process(self.proc)


def percentile(values: list[float], q: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    return v[min(len(v) - 1, max(0, int(round(q / 100 * len(v) + 0.5)) - 1))]
