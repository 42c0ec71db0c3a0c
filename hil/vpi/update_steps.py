"""Signed code updates on the virtual Pi: a good kiosk wheel applied and running, a broken one
rolled back, both outcomes read from the gateway's ``/api/v1/updates/{id}`` (what an operator sees)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hil.vpi.machine import GATEWAY_GUEST_PORT, GATEWAY_IP, guest_http

OUTCOME_TIMEOUT_S = 1500  # pip install + health check under emulation


def _roll_out(sc: Any, src: Path, version: str) -> dict:
    from hil.vpi.run import DEVICE, OFFICE, wait
    from provisioning.signing import sign_bundle

    gw = sc.procs["gateway"]
    bundle_id, bundle = sign_bundle(sc.update_key, src, version, offices=[OFFICE])
    assert gw.admin.post("/api/v1/updates", content=bundle).status_code == 201
    r = gw.admin.post(f"/api/v1/updates/{bundle_id}/rollout",
                      json={"offices": [OFFICE], "base_url": f"http://{GATEWAY_IP}:{GATEWAY_GUEST_PORT}"})
    assert r.status_code == 202, r.text

    def row() -> dict | None:
        detail = gw.ops.get(f"/api/v1/updates/{bundle_id}").json()
        mine = [d for d in detail["rollouts"][0]["devices"] if d["device_id"] == DEVICE]
        return mine[0] if mine and mine[0]["outcome"] else None

    return wait(row, OUTCOME_TIMEOUT_S, f"outcome of {version} in /api/v1/updates/{bundle_id}", 3) | {
        "bundle_id": bundle_id}


def _guest_version(sc: Any) -> str:
    from hil.vpi.run import KIOSK_HTTP

    out = sc.vm.run(guest_http("GET", f"{KIOSK_HTTP}/api/status"), timeout=120, check=False).strip()
    status, _, body = out.partition(" ")
    return json.loads(body).get("sw_version", "") if status == "200" else ""


def code_update_steps(sc: Any) -> None:
    from hil.harness.wheels import kiosk_wheel
    from hil.vpi.run import wait
    from provisioning.signing import public_raw

    gw = sc.procs["gateway"]
    w = sc.work / "updates"

    def prepare() -> str:
        assert gw.admin.post("/api/v1/updates/keys",
                             json={"public_key": public_raw(sc.update_key).hex()}).status_code == 201
        for name, version, broken in (("good", "0.1.1", None), ("bad", "0.1.2", "broken build 0.1.2")):
            whl = kiosk_wheel(version, w, broken=broken)
            (w / name / "packages").mkdir(parents=True)
            (w / name / "packages" / whl.name).write_bytes(whl.read_bytes())
        return "wheels 0.1.1 (good) and 0.1.2 (fails its check) signed with the offline key"

    def good() -> str:
        t0 = time.monotonic()
        row = _roll_out(sc, w / "good", "0.1.1")
        assert row["outcome"] == "applied", row
        wait(lambda: _guest_version(sc) == "0.1.1", 900, "kiosk running 0.1.1", 3)
        venv = sc.vm.run("ls -d /var/lib/motcua/current/venv && readlink /var/lib/motcua/current").split()
        sc.verdict.figures["code update applied + restarted"] = f"{time.monotonic() - t0:.0f} s"
        return f"{row['bundle_id']}: applied, running 0.1.1 from {venv[-1]}/venv; {row['message'][:80]}"

    def bad() -> str:
        row = _roll_out(sc, w / "bad", "0.1.2")
        assert row["outcome"] == "rolled_back", row
        assert "broken build 0.1.2" in row["message"], row
        assert _guest_version(sc) == "0.1.1"
        return f"{row['bundle_id']}: rolled_back ({row['message'][:90]}); still 0.1.1"

    if sc.verdict.run("update: prepare signed bundles", prepare) and sc.verdict.run(
            "update: code 0.1.1 applied", good):
        sc.verdict.run("update: broken 0.1.2 rolled back", bad)
