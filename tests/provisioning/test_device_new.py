"""`motcua-provision device new` / `register --flush` against a real gateway, and the bundle's content."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from PIL import Image

from device.config import load_config
from provisioning.cli import main
from tests.gateway.conftest import ADMIN_TOKEN, RunningGateway
from tests.support.mosquitto import free_port


def run(capsys, *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    return rc, capsys.readouterr().out


def registered(gw: RunningGateway) -> dict[str, dict]:
    return {d["device_id"]: d for d in gw.ops.get("/api/v1/devices").json()}


def test_device_new_registers_and_writes_a_valid_bundle(gateway, tmp_path: Path, capsys) -> None:
    ca = str(tmp_path / "ca")
    assert run(capsys, "ca", "init", "--dir", ca)[0] == 0
    out = tmp_path / "k1"
    rc, text = run(capsys, "device", "new", "--dir", ca, "--office", "03390", "--counter", "2",
                   "--wifi-ssid", "UBND Bình Lư", "--wifi-psk", "mat-khau-wifi", "--gateway", gateway.base,
                   "--token", ADMIN_TOKEN, "--broker", "mqtts://mqtt.laichau.example:8883",
                   "--update-key", "ab" * 32, "--ntp", "10.0.0.1", "--out", str(out))
    assert rc == 0, text
    assert "[5/5]" in text and "✔ HOÀN TẤT / DONE" in text
    dev = registered(gateway)["k-03390-02"]
    assert dev["office_code"] == "03390" and dev["counter"] == 2 and dev["registered"]

    boot = out / "boot"
    cfg = load_config(boot / "motcua" / "kiosk.toml")  # the kiosk's own validator accepts it
    assert (cfg.device.id, cfg.device.office_code, cfg.device.counter) == ("k-03390-02", "03390", 2)
    assert cfg.broker.url == "mqtts://mqtt.laichau.example:8883" and cfg.broker.tls
    assert cfg.updates.trusted_keys == ["ab" * 32]
    cert = x509.load_pem_x509_certificate(Path(cfg.broker.cert_file).read_bytes())
    key = serialization.load_pem_private_key(Path(cfg.broker.key_file).read_bytes(), None)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "k-03390-02"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "03390"
    assert cert.public_key() == key.public_key()
    assert (boot / "motcua" / "device.key").stat().st_mode & 0o077 == 0

    ud_text = (boot / "user-data").read_text()
    assert ud_text.startswith("#cloud-config\n")
    ud = yaml.safe_load(ud_text)
    assert ud["hostname"] == "k-03390-02" and ud["ntp"]["ntp_client"] == "systemd-timesyncd"
    assert "10.0.0.1" in ud["ntp"]["servers"]
    cmds = " ".join(c[2] for c in ud["runcmd"])
    assert ("install -o motcua -g motcua -m 0600 /boot/firmware/motcua/device.key /etc/motcua/device.key"
            in cmds)
    assert "shred -u /boot/firmware/motcua/device.key" in cmds
    assert "systemctl enable --now motcua-kiosk.service" in cmds
    assert 'GROUP="gpio", MODE="0660"\' > /etc/udev/rules.d/60-motcua-gpio.rules' in cmds
    assert any(u.get("name") == "motcua" for u in ud["users"] if isinstance(u, dict))
    net = yaml.safe_load((boot / "network-config").read_text())["network"]
    assert net["wifis"]["wlan0"]["access-points"]["UBND Bình Lư"]["password"] == "mat-khau-wifi"
    assert yaml.safe_load((boot / "meta-data").read_text())["instance-id"] == "motcua-k-03390-02-g1"
    unit = (boot / "motcua" / "motcua-kiosk.service").read_text()
    assert "ExecStart=/opt/motcua/venv/bin/motcua-kiosk run --config /etc/motcua/kiosk.toml" in unit
    assert "Type=notify" in unit and "WatchdogSec=" in unit
    assert all((boot / "motcua" / f).is_file() for f in ("journald-motcua.conf", "install-kiosk.sh"))

    label = np.array(Image.open(out / "label-k-03390-02.png").convert("L"))
    decoded, _, _ = cv2.QRCodeDetector().detectAndDecode(label)
    assert json.loads(decoded) == {"motcua": 1, "device_id": "k-03390-02", "office": "03390", "counter": 2}


def test_offline_registration_is_queued_then_flushed(gateway, tmp_path: Path, capsys) -> None:
    ca = str(tmp_path / "ca")
    run(capsys, "ca", "init", "--dir", ca)
    dead = f"http://127.0.0.1:{free_port()}"
    rc, text = run(capsys, "device", "new", "--dir", ca, "--office", "03405", "--counter", "1",
                   "--gateway", dead, "--token", ADMIN_TOKEN, "--out", str(tmp_path / "k1"))
    assert rc == 0 and "registration queued" in text and "register --flush" in text
    rc, text = run(capsys, "device", "new", "--dir", ca, "--office", "99999", "--counter", "1",
                   "--gateway", dead, "--token", ADMIN_TOKEN, "--out", str(tmp_path / "k2"))
    assert rc == 0
    assert "k-03405-01" not in registered(gateway)
    rc, text = run(capsys, "register", "--dir", ca)
    assert "k-03405-01" in text and "k-99999-01" in text

    rc, text = run(capsys, "register", "--flush", "--dir", ca, "--gateway", dead, "--token", ADMIN_TOKEN)
    assert rc == 0 and "2 còn chờ / still queued" in text  # still offline: nothing lost
    rc, text = run(capsys, "register", "--flush", "--dir", ca, "--gateway", gateway.base,
                   "--token", ADMIN_TOKEN)
    assert rc == 1 and "1 đã đăng ký / registered" in text and "1 bị từ chối / rejected" in text
    assert "k-03405-01" in registered(gateway)
    assert (tmp_path / "ca" / "outbox.jsonl").read_text() == ""
    rejected = (tmp_path / "ca" / "outbox.rejected.jsonl").read_text()
    assert "k-99999-01" in rejected and "422" in rejected


def test_reprovisioning_a_counter_revokes_the_old_identity(tmp_path: Path, capsys) -> None:
    ca = str(tmp_path / "ca")
    run(capsys, "ca", "init", "--dir", ca)
    run(capsys, "device", "new", "--dir", ca, "--office", "03390", "--counter", "1",
        "--out", str(tmp_path / "a"))
    first = x509.load_pem_x509_certificate((tmp_path / "a/boot/motcua/device.crt").read_bytes())
    rc, text = run(capsys, "device", "new", "--dir", ca, "--office", "03390", "--counter", "1",
                   "--out", str(tmp_path / "b"))
    assert rc == 0 and "thu hồi chứng chỉ cũ / revoked old" in text
    second = x509.load_pem_x509_certificate((tmp_path / "b/boot/motcua/device.crt").read_bytes())
    assert second.serial_number != first.serial_number
    crl = x509.load_pem_x509_crl((tmp_path / "ca" / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(first.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(second.serial_number) is None
    ca_cert = x509.load_pem_x509_certificate((tmp_path / "ca" / "ca.crt").read_bytes())
    assert crl.is_signature_valid(ca_cert.public_key())
    assert "g2" in (tmp_path / "b/boot/meta-data").read_text()  # cloud-init runs again on the new card
    rc, text = run(capsys, "ca", "revoke", "k-03390-01", "--dir", ca)
    assert rc == 0
    rc, text = run(capsys, "ca", "revoke", "k-03390-01", "--dir", ca)
    assert rc == 1 and "already revoked" in text
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600


def test_bad_input_gets_a_clear_verdict(tmp_path: Path, capsys) -> None:
    ca = str(tmp_path / "ca")
    run(capsys, "ca", "init", "--dir", ca)
    rc, text = run(capsys, "device", "new", "--dir", ca, "--office", "03390", "--counter", "1",
                   "--wifi-ssid", "x", "--wifi-psk", "short", "--out", str(tmp_path / "o"))
    assert rc == 1 and "✘ THẤT BẠI / FAILED" in text and "8-63" in text
    rc, text = run(capsys, "device", "new", "--dir", str(tmp_path / "nope"), "--office", "03390",
                   "--counter", "1", "--out", str(tmp_path / "o"))
    assert rc == 1 and "no CA" in text
    rc, text = run(capsys, "ca", "init", "--dir", ca)
    assert rc == 1 and "already exists" in text
