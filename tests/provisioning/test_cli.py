"""The motcua-provision commands not covered elsewhere: update keygen/sign, mosquitto-conf, ca list,
gateway-cert, and flash's typed confirmation."""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest

from contract.bundle import verify_bundle
from provisioning.cli import main
from tests.provisioning.test_flash import BOOT_START, SECTOR, build_disk, make_bundle, read_fat


def run(capsys, *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    return rc, capsys.readouterr().out


def test_update_keygen_and_sign(tmp_path: Path, capsys) -> None:
    rc, text = run(capsys, "update", "keygen", "--out", str(tmp_path / "offline.key"))
    assert rc == 0 and "✔" in text
    pub = bytes.fromhex(text.splitlines()[1].strip())
    assert (tmp_path / "offline.key").stat().st_mode & 0o777 == 0o600
    rc, text = run(capsys, "update", "keygen", "--out", str(tmp_path / "offline.key"))
    assert rc == 1 and "refusing to overwrite" in text
    src = tmp_path / "rel"
    for rel in ("config/kiosk.toml", "models/expr.onnx", "packages/motcua_edge-0.2-py3-none-any.whl"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(rel.encode())
    rc, text = run(capsys, "update", "sign", "--key", str(tmp_path / "offline.key"), "--in", str(src),
                   "--version", "1.2.0", "--office", "03390", "--out", str(tmp_path / "b.tar"))
    assert rc == 0, text
    bundle = verify_bundle((tmp_path / "b.tar").read_bytes(), [pub])
    kinds = {f["path"]: f["kind"] for f in bundle.manifest["files"]}
    assert kinds == {"config/kiosk.toml": "config", "models/expr.onnx": "model",
                     "packages/motcua_edge-0.2-py3-none-any.whl": "package"}
    assert bundle.offices == ["03390"] and bundle.version == "1.2.0"
    rc, text = run(capsys, "update", "sign", "--key", str(tmp_path / "offline.key"), "--in", str(src),
                   "--version", "../bad", "--out", str(tmp_path / "c.tar"))
    assert rc == 1 and "bad version" in text


def test_ca_commands_and_mosquitto_conf(tmp_path: Path, capsys) -> None:
    ca = str(tmp_path / "ca")
    run(capsys, "ca", "init", "--dir", ca)
    run(capsys, "device", "new", "--dir", ca, "--office", "03390", "--counter", "1",
        "--out", str(tmp_path / "a"))
    rc, text = run(capsys, "ca", "list", "--dir", ca)
    assert rc == 0 and "k-03390-01" in text and "active" in text
    rc, text = run(capsys, "ca", "gateway-cert", "--dir", ca, "--out", str(tmp_path / "gw"))
    assert rc == 0 and (tmp_path / "gw/gateway.key").stat().st_mode & 0o777 == 0o600
    rc, text = run(capsys, "ca", "gateway-cert", "--dir", ca, "--out", str(tmp_path / "gw2"),
                   "--name", "k-03390-01")
    assert rc == 1 and "must contain a '.'" in text  # a device id can never be a service identity
    rc, text = run(capsys, "mosquitto-conf", "--dir", ca, "--out", str(tmp_path / "broker"),
                   "--acl", "registry")
    acl = (tmp_path / "broker/acl").read_text()
    assert "user k-03390-01" in acl and "topic write motcua/v1/03390/k-03390-01/events" in acl
    # pytest's tmp folder is 0700: the mosquitto user could not read it, and the command says so
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        assert rc == 0
    else:
        assert rc == 1 and "cannot enter" in text


def test_flash_asks_for_the_device_name(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    image = build_disk(tmp_path)
    bundle = make_bundle(tmp_path)
    target = tmp_path / "card.img"
    answers = iter(["sdb", "card.img"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    rc, text = run(capsys, "flash", "--image", str(image), "--device", str(target), "--bundle", str(bundle))
    assert rc == 1 and "cancelled" in text and not target.exists()
    rc, text = run(capsys, "flash", "--image", str(image), "--device", str(target), "--bundle", str(bundle))
    assert rc == 0 and "✔ HOÀN TẤT / DONE" in text and "written and verified" in text
    assert "/user-data" in read_fat(target, BOOT_START * SECTOR)
