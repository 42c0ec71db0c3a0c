"""The real kiosk (`motcua-kiosk run --simulate`) with a `device new` bundle, over mutual TLS to a
Mosquitto configured by `mosquitto-conf`; then its certificate is revoked and the broker refuses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from hil.harness.kiosk_proc import stop_process
from provisioning.ca import GATEWAY_CN, open_ca
from provisioning.cli import main
from provisioning.mosquitto_conf import write_broker_config
from tests.provisioning.conftest import TlsClient
from tests.support.mosquitto import Mosquitto, free_port

REPO = Path(__file__).resolve().parents[2]


def _poll(cond, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_real_kiosk_with_provisioned_identity(world_dir: Path, tmp_path: Path, capsys) -> None:
    ca_dir = tmp_path / "ca"
    port = free_port()
    assert main(["ca", "init", "--dir", str(ca_dir)]) == 0
    out = tmp_path / "kiosk"
    assert main(["device", "new", "--dir", str(ca_dir), "--office", "03390", "--counter", "3",
                 "--broker", f"mqtts://127.0.0.1:{port}", "--out", str(out)]) == 0
    ca = open_ca(ca_dir)
    files = write_broker_config(ca, world_dir / "broker", port=port, bind="127.0.0.1")
    broker = Mosquitto(port=port, workdir=world_dir / "run", listener_conf=files.listener_conf).start()
    gw_key, gw_cert = ca.issue_service(GATEWAY_CN)
    (world_dir / "gw.key").write_bytes(gw_key)
    (world_dir / "gw.crt").write_bytes(gw_cert)
    os.chmod(world_dir / "gw.key", 0o600)
    gw = TlsClient(port, files.cafile, world_dir / "gw.crt", world_dir / "gw.key")
    kiosk = None
    try:
        assert gw.connect()
        gw.subscribe("motcua/v1/#")
        log = open(tmp_path / "kiosk.log", "wb")  # noqa: SIM115 - closed below
        kiosk = subprocess.Popen(
            [sys.executable, "-m", "device.cli", "run", "--config", str(out / "boot/motcua/kiosk.toml"),
             "--simulate", "--data-dir", str(tmp_path / "kdata"), "--http-port", str(free_port())],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

        def seen(kind: str, pred=lambda m: True) -> list[dict]:
            with gw.cond:
                items = list(gw.received)
            return [json.loads(p) for t, p in items
                    if t == f"motcua/v1/03390/k-03390-03/{kind}" and pred(json.loads(p))]

        assert _poll(lambda: seen("status", lambda m: m["state"] == "online") and seen("events")
                     and seen("health"), 120), (tmp_path / "kiosk.log").read_text()[-3000:]
        assert seen("events")[0]["type"] == "device.started"

        # Revoke: regenerate the broker files (CRL), restart the broker; the kiosk keeps retrying.
        assert main(["ca", "revoke", "k-03390-03", "--dir", str(ca_dir)]) == 0
        write_broker_config(open_ca(ca_dir), world_dir / "broker", port=port, bind="127.0.0.1")
        gw.close()
        broker.stop()
        log_before = len(broker.log_text())
        broker.start()
        gw = TlsClient(port, files.cafile, world_dir / "gw.crt", world_dir / "gw.key")
        assert gw.connect()
        gw.subscribe("motcua/v1/03390/k-03390-03/health")
        # The same certificate connected before; only the CRL changed. Mosquitto logs the handshake
        # failure without the reason.
        refused = lambda: "certificate verify failed" in broker.log_text()[log_before:]  # noqa: E731
        assert _poll(refused, 120), broker.log_text()[-3000:]
        assert "as k-03390-03" not in broker.log_text()[log_before:], "the revoked kiosk got connected"
        assert kiosk.poll() is None  # the kiosk itself keeps running (offline outbox), it is just refused
    finally:
        stop_process(kiosk)
        gw.close()
        broker.stop()
