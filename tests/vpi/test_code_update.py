"""A signed bundle carrying kiosk code (a wheel): installed into the inactive slot's venv, switched
to, the kiosk restarts on the new code and confirms; a bundle whose code fails its check is rolled
back automatically. Real gateway, Mosquitto and kiosk process; outcomes read from the gateway's
/api/v1/updates/{id}, as an operator sees them."""

from __future__ import annotations

from pathlib import Path

from provisioning.signing import sign_bundle
from tests.device.kiosk_proc import KioskProc, write_config
from tests.gateway.conftest import RunningGateway, wait_for
from tests.vpi.wheels import kiosk_wheel

OFFICE, DEVICE = "03390", "k-03390-02"


def roll_out(gw: RunningGateway, key, src: Path, version: str) -> dict:
    bundle_id, bundle = sign_bundle(key, src, version, offices=[OFFICE])
    return gw.roll_out(bundle_id, bundle, OFFICE, DEVICE, timeout=600)


def test_code_update_applies_then_broken_code_rolls_back(gateway, mosquitto, tmp_path: Path) -> None:
    gw = gateway
    key, pub = gw.trust_new_update_key(tmp_path / "offline.key")
    gw.register_device(DEVICE, OFFICE, 2)
    good = kiosk_wheel("0.1.1", tmp_path / "w")
    bad = kiosk_wheel("0.1.2", tmp_path / "w", broken="broken build 0.1.2")
    for name, whl in (("good", good), ("bad", bad)):
        (tmp_path / name / "packages").mkdir(parents=True)
        (tmp_path / name / "packages" / whl.name).write_bytes(whl.read_bytes())

    cfg = write_config(tmp_path / "kiosk.toml", device_id=DEVICE, office=OFFICE, device={"counter": 2},
                       updates={"trusted_keys": [pub]})
    data_dir = tmp_path / "kdata"
    kiosk = KioskProc(cfg, mosquitto.url, data_dir).start()
    try:
        wait_for(lambda: kiosk.status()["broker_connected"], timeout=90, what="kiosk connected")
        assert kiosk.status()["sw_version"] == "0.1.0"

        row = roll_out(gw, key, tmp_path / "good", "0.1.1")
        assert row["outcome"] == "applied" and "kiosk code" in row["message"], row
        slot = (data_dir / "current").resolve()
        assert (slot / "venv" / "bin" / "python").exists()

        def on_new_code() -> bool:
            try:
                return kiosk.status()["sw_version"] == "0.1.1"
            except Exception:  # restarting
                return False

        wait_for(on_new_code, timeout=300, what="kiosk restarted on 0.1.1")
        wait_for(lambda: not (data_dir / "update-pending.json").exists(), timeout=300,
                 what="restart trial confirmed")
        assert kiosk.press("ticket")["ok"]

        row = roll_out(gw, key, tmp_path / "bad", "0.1.2")
        assert row["outcome"] == "rolled_back", row
        assert "broken build 0.1.2" in row["message"], row
        assert (data_dir / "current").resolve() == slot  # back on the 0.1.1 slot
        assert kiosk.status()["sw_version"] == "0.1.1"
        assert kiosk.press("ticket")["ok"]
    finally:
        kiosk.terminate()
