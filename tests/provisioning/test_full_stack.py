"""Everything real at once: a provisioned kiosk process and the gateway, both on mutual TLS to a
Mosquitto configured by `mosquitto-conf`; the device registers through `device new`, an operator
uploads a signed bundle and rolls it out by office; the kiosk applies it and the gateway shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hil.harness.kiosk_proc import stop_process
from hil.harness.wait import wait_for
from provisioning.ca import open_ca
from provisioning.cli import main
from provisioning.mosquitto_conf import write_broker_config
from provisioning.signing import generate_key, load_key, public_raw, sign_bundle
from tests.gateway.conftest import ADMIN_TOKEN, RunningGateway, gateway_settings
from tests.support.mosquitto import Mosquitto, free_port

REPO = Path(__file__).resolve().parents[2]


def _wait(cond, timeout: float = 120.0):
    """``cond``'s value once truthy, or None after ``timeout`` (the caller then shows the logs)."""
    try:
        return wait_for(cond, timeout, interval=0.2)
    except AssertionError:
        return None


def test_provisioned_kiosk_receives_and_reports_a_signed_update(world_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    ca_dir = tmp_path / "ca"
    assert main(["ca", "init", "--dir", str(ca_dir)]) == 0
    ca = open_ca(ca_dir)
    files = write_broker_config(ca, world_dir / "broker", port=port, bind="127.0.0.1")
    broker = Mosquitto(port=port, workdir=world_dir / "run", listener_conf=files.listener_conf).start()
    gw_dir = tmp_path / "gwid"
    assert main(["ca", "gateway-cert", "--dir", str(ca_dir), "--out", str(gw_dir)]) == 0
    generate_key(tmp_path / "offline.key")
    key = load_key(tmp_path / "offline.key")
    pub = public_raw(key).hex()
    gw = kiosk = None
    try:
        gw = RunningGateway(gateway_settings(
            tmp_path, f"mqtts://127.0.0.1:{port}",
            broker={"ca_file": str(gw_dir / "ca.crt"), "cert_file": str(gw_dir / "gateway.crt"),
                    "key_file": str(gw_dir / "gateway.key")})).start()
        out = tmp_path / "k"
        assert main(["device", "new", "--dir", str(ca_dir), "--office", "03390", "--counter", "3",
                     "--device-id", "k-03390-03", "--broker", f"mqtts://127.0.0.1:{port}",
                     "--gateway", gw.base, "--token", ADMIN_TOKEN, "--update-key", pub,
                     "--out", str(out)]) == 0
        # registry ACL (the default): the operator regenerates the ACL and reloads the broker
        write_broker_config(open_ca(ca_dir), world_dir / "broker", port=port, bind="127.0.0.1")
        assert "user k-03390-03" in files.acl.read_text()
        broker.reload()
        log = open(tmp_path / "kiosk.log", "wb")  # noqa: SIM115 - the process owns it
        data_dir = tmp_path / "kdata"
        kiosk = subprocess.Popen(
            [sys.executable, "-m", "device.cli", "run", "--config", str(out / "boot/motcua/kiosk.toml"),
             "--simulate", "--data-dir", str(data_dir), "--http-port", str(free_port())],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

        def online():
            rows = {d["device_id"]: d for d in gw.ops.get("/api/v1/fleet").json()}
            return rows.get("k-03390-03", {}).get("state") == "online"

        assert _wait(online), (tmp_path / "kiosk.log").read_text()[-3000:] + broker.log_text()[-2000:]

        src = tmp_path / "rel"
        (src / "config").mkdir(parents=True)
        (src / "config/office.toml").write_text("[office]\nname = \"UBND xã Bình Lư\"\n")
        bundle_id, bundle = sign_bundle(key, src, "1.0.1", offices=["03390"])
        assert gw.admin.post("/api/v1/updates/keys", json={"public_key": pub}).status_code == 201
        assert gw.admin.post("/api/v1/updates", content=bundle).status_code == 201
        r = gw.admin.post(f"/api/v1/updates/{bundle_id}/rollout", json={"offices": ["03390"]})
        assert r.status_code == 202, r.text

        def outcome():
            d = gw.ops.get(f"/api/v1/updates/{bundle_id}").json()
            mine = [x for x in d["rollouts"][0]["devices"] if x["device_id"] == "k-03390-03"]
            return mine[0] if mine and mine[0]["outcome"] else None

        got = _wait(outcome)
        assert got, (tmp_path / "kiosk.log").read_text()[-3000:]
        assert got["outcome"] == "applied" and got["status"] == "ok", got
        assert (data_dir / "current/config/office.toml").read_text().endswith("Bình Lư\"\n")
    finally:
        stop_process(kiosk)
        if gw is not None:
            gw.stop()
        broker.stop()
