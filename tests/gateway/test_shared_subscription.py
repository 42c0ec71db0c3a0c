"""Scale-out: two gateway processes share the ingest ($share/<group>/..., MQTT v5) on one PostgreSQL."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from hil.harness.gateway import gateway_command, process_config
from tests.gateway.conftest import OPERATOR_TOKEN, wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher
from tests.support.mosquitto import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]


def _config(tmp: Path, name: str, broker_url: str, db_url: str) -> tuple[Path, int]:
    port = free_port()
    cfg = tmp / f"{name}.toml"
    cfg.write_text(process_config(tmp / name, port, broker_url, db_url, OPERATOR_TOKEN,
                                  client_id=f"gw-{name}", broker={"shared_group": "motcua-gw"}))
    return cfg, port


def test_two_processes_share_ingest_on_postgres(mosquitto, postgres, tmp_path) -> None:
    procs = []
    clients = []
    try:
        for name in ("one", "two"):
            cfg, port = _config(tmp_path, name, mosquitto.url, postgres.url)
            log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115
            procs.append(
                subprocess.Popen(
                    gateway_command(cfg),
                    cwd=REPO,
                    stdout=log,
                    stderr=log,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            )
            wait_port(port, timeout=120)
            clients.append(
                httpx.Client(
                    base_url=f"http://127.0.0.1:{port}",
                    timeout=30,
                    headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
                )
            )
        for c in clients:
            wait_for(lambda c=c: c.get("/healthz").json()["mqtt"], what="gateway connected")
        # both subscribed: Mosquitto splits the group's messages between them
        pub = Publisher(mosquitto.port)
        n_visits = 0
        events = []
        day = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
        for device, office, counter in (
            ("k03390-q1", "03390", 1),
            ("k03390-q2", "03390", 2),
            ("k03405-q1", "03405", 1),
        ):
            f = EventFactory(device, office, counter)
            for no in range(1, 201):
                events += f.visit(no, day, datetime.now(UTC) - timedelta(minutes=30), 100.0 + no, 60.0)
                n_visits += 1
        for ev in events:
            pub.event(ev)
        pub.flush()
        for ev in events[:300]:  # a replay, split across the two processes as well
            pub.event(ev)
        pub.flush()
        pub.close()
        stats = wait_for(
            lambda: (
                (s := clients[0].get("/api/v1/stats/ingest").json())["accepted"] + s["duplicates"]
                >= len(events) + 300
                and s
            ),
            timeout=120,
            what="all stored",
        )
        assert stats["stored_events"] == len(events)
        assert stats["accepted"] == len(events)
        assert stats["duplicates"] == 300
        per_process = [c.get("/api/v1/stats/ingest").json()["process"]["process"] for c in clients]
        got = [p.get("accepted", 0) + p.get("duplicates", 0) for p in per_process]
        assert sum(got) == len(events) + 300
        assert all(g > 0 for g in got), f"one process got nothing: {got}"
        offices = {o["code"]: o for o in httpx.get(f"{clients[1].base_url}/api/v1/offices").json()}
        assert offices["03390"]["kpi_today"]["visits"] + offices["03405"]["kpi_today"]["visits"] == n_visits
    finally:
        for c in clients:
            c.close()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
