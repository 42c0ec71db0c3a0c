"""A short version of bench/load: 300 simulated kiosks in 2 processes, nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.gateway.conftest import wait_for

REPO = Path(__file__).resolve().parents[2]


def test_many_kiosks_nothing_lost(mosquitto, gateway_factory, tmp_path: Path) -> None:
    gw = gateway_factory(mosquitto.url)
    procs = []
    for p in range(2):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.load.sim",
                    str(mosquitto.port),
                    str(p * 150),
                    "150",
                    "12",
                    "3",
                    "900",
                    "4",
                    str(tmp_path / f"sim{p}.json"),
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for sp in procs:
            assert sp.wait(300) == 0
    finally:
        for sp in procs:
            if sp.poll() is None:
                sp.kill()
                sp.wait()
    sent = {"events": 0, "health": 0, "status": 0}
    for p in range(2):
        for k, v in json.loads((tmp_path / f"sim{p}.json").read_text()).items():
            sent[k] += v
    assert sent["events"] > 500 and sent["status"] == 300
    stats = wait_for(
        lambda: (s := gw.stats())["stored_events"] >= sent["events"] and s,
        timeout=120,
        what="all events stored",
    )
    assert stats["stored_events"] == sent["events"] == stats["accepted"]
    assert stats["duplicates"] == 0 and stats["rejected"] == {}
    fleet = gw.ops.get("/api/v1/fleet").json()
    sims = [d for d in fleet if d["device_id"].startswith("kl")]
    assert len(sims) == 300 and all(d["state"] == "online" and not d["registered"] for d in sims)
