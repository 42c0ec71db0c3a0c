"""Signed updates end to end with real parts: the gateway (upload, rollout), a real Mosquitto and the real
kiosk (`python -m device.cli run --simulate` subprocess). A bundle's config changes what the kiosk does;
a bundle whose model fails its check is rolled back by the kiosk itself; an invalid bundle config is
refused before activation; the kiosk keeps serving citizens afterwards."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import httpx

from provisioning.signing import sign_bundle
from tests.device.kiosk_proc import KioskProc, Watcher, write_config
from tests.gateway.conftest import RunningGateway, wait_for

REPO = Path(__file__).resolve().parents[2]
OFFICE, DEVICE = "03390", "k-03390-03"


def _bundle(key, root: Path, version: str, files: dict[str, bytes]) -> tuple[str, bytes]:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return sign_bundle(key, root, version, offices=[OFFICE])


def _roll_out(gw: RunningGateway, bundle_id: str, bundle: bytes) -> dict:
    """Upload, roll out to the office, wait for the kiosk's outcome; returns its device row."""
    return gw.roll_out(bundle_id, bundle, OFFICE, DEVICE, timeout=300)


def _ticket_event(watcher: Watcher, label: str) -> None:
    watcher.wait_for(lambda: any(e["type"] == "ticket.issued" and e["data"].get("label") == label
                                 for e in watcher.events()), timeout=90, what=f"ticket.issued {label}")


def test_bundle_config_takes_effect_bad_model_rolls_back_bad_config_refused(
        gateway, mosquitto, tmp_path: Path) -> None:
    gw = gateway
    key, pub_hex = gw.trust_new_update_key(tmp_path / "offline.key")
    gw.register_device(DEVICE, OFFICE, 3)

    cfg = write_config(tmp_path / "kiosk.toml", device_id=DEVICE, office=OFFICE,
                       device={"counter": 3}, updates={"trusted_keys": [pub_hex]})
    data_dir = tmp_path / "kdata"
    watcher = Watcher(mosquitto.port)
    kiosk = KioskProc(cfg, mosquitto.url, data_dir).start()
    try:
        wait_for(lambda: kiosk.status()["broker_connected"], timeout=90, what="kiosk connected")
        assert kiosk.press("ticket")["label"] == "0001"
        before = [lv["label"] for lv in kiosk.status()["rating_levels"]]
        assert before[0] == "Rất hài lòng"

        # 1. A bundle config: [queue] label_prefix and [rating] labels change; applied and live.
        overlay = ('[queue]\nlabel_prefix = "B"\n\n[rating]\n'
                   'labels = ["Chưa hài lòng", "Hài lòng", "Rất hài lòng (v1.1)"]\n')
        bid1, b1 = _bundle(key, tmp_path / "v1", "1.1.0", {"config/kiosk.toml": overlay.encode()})
        row = _roll_out(gw, bid1, b1)
        assert row["outcome"] == "applied" and row["status"] == "ok", row
        assert "config reloaded" in row["message"]
        assert kiosk.press("ticket")["label"] == "B0002"
        _ticket_event(watcher, "B0002")
        assert [lv["label"] for lv in kiosk.status()["rating_levels"]][0] == "Rất hài lòng (v1.1)"

        # 2. Models whose file does not match the release's models/manifest.json: the kiosk switches,
        #    its health check (a child process loading the models) fails, it rolls back by itself.
        models = {f"models/{n}": (REPO / "models" / n).read_bytes()
                  for n in ("manifest.json", "face_blazeface_short.onnx")}
        models["models/expression_minixception.onnx"] = b"not the model the manifest names"
        bid2, b2 = _bundle(key, tmp_path / "v2", "1.2.0", models)
        row = _roll_out(gw, bid2, b2)
        assert row["outcome"] == "rolled_back" and row["status"] == "failed", row
        assert "model check failed" in row["message"] and "sha256" in row["message"], row
        assert json.loads((data_dir / "current/release.json").read_text())["bundle_id"] == bid1

        # 3. A bundle config the kiosk's parser rejects: refused before activation.
        bid3, b3 = _bundle(key, tmp_path / "v3", "1.3.0", {"config/kiosk.toml": b"[rating]\nscale = 4\n"})
        row = _roll_out(gw, bid3, b3)
        assert row["outcome"] == "refused", row
        assert "[rating] scale: must be 3 or 5, got 4" in row["message"], row
        assert json.loads((data_dir / "current/release.json").read_text())["bundle_id"] == bid1

        # After both failures the kiosk still serves on the v1.1 release: press → event.
        assert kiosk.press("ticket")["label"] == "B0003"
        _ticket_event(watcher, "B0003")
        types = [e["type"] for e in watcher.events()]
        assert types.count("update.result") >= 3

        # A restart keeps the applied release in effect (the effective config is read at start).
        assert kiosk.terminate() == 0
        kiosk.start()
        assert kiosk.press("ticket")["label"] == "B0004"
        _ticket_event(watcher, "B0004")
    finally:
        kiosk.terminate()
        watcher.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def _with_doc_string(onnx_bytes: bytes, doc: str) -> bytes:
    """The same graph and weights with ModelProto.doc_string (field 6) set: a new, valid model file."""
    raw = doc.encode()
    assert len(raw) < 128
    return onnx_bytes + bytes([0x32, len(raw)]) + raw


def test_model_bundle_is_loaded_by_the_running_vision_pipeline(gateway, mosquitto, tmp_path: Path) -> None:
    gw = gateway
    key, pub_hex = gw.trust_new_update_key(tmp_path / "offline.key")
    gw.register_device(DEVICE, OFFICE, 3)
    frames = REPO / "tests/vision/data"
    camera = {"enabled": True, "source": f"folder:{frames}", "fps": 2, "watchdog_s": 60}
    cfg = write_config(tmp_path / "kiosk.toml", device_id=DEVICE, office=OFFICE, device={"counter": 3},
                       camera=camera, updates={"trusted_keys": [pub_hex]})
    original = (REPO / "models/expression_minixception.onnx").read_bytes()
    new_model = _with_doc_string(original, "re-release 2.0")
    new_sha = hashlib.sha256(new_model).hexdigest()
    manifest = json.loads((REPO / "models/manifest.json").read_text())
    old_sha = manifest["models"]["expression_minixception"]["sha256"]
    manifest["models"]["expression_minixception"]["sha256"] = new_sha
    files = {"models/manifest.json": json.dumps(manifest, indent=1).encode(),
             "models/expression_minixception.onnx": new_model,
             "models/face_blazeface_short.onnx": (REPO / "models/face_blazeface_short.onnx").read_bytes()}
    bid, data = _bundle(key, tmp_path / "v2", "2.0.0", files)

    watcher = Watcher(mosquitto.port)
    data_dir = tmp_path / "kdata"
    kiosk = KioskProc(cfg, mosquitto.url, data_dir).start()

    def health_with(sha12: str) -> dict | None:
        for h in reversed(watcher.of_kind("health")):
            if h.get("model_versions", {}).get("expression_minixception") == sha12:
                return h
        return None

    try:
        watcher.wait_for(lambda: health_with(old_sha[:12]), timeout=120, what="health with built-in model")
        row = _roll_out(gw, bid, data)
        assert row["outcome"] == "applied", row
        assert "vision restarted with models in" in row["message"] and "releases/A/models" in row["message"]
        watcher.wait_for(lambda: health_with(new_sha[:12]), timeout=120, what="health with the new model")

        # "on" is reached only once the pipeline has loaded (from releases/A/models) and frames flow.
        assert kiosk.press("ticket")["ok"] and kiosk.press("next")["ok"]

        def camera_on() -> bool:
            h = watcher.of_kind("health")[-1]
            return h["model_versions"].get("expression_minixception") == new_sha[:12] and h["camera"] == "on"

        watcher.wait_for(camera_on, timeout=120, what="vision running on the release's models")
        assert kiosk.press("next")["ok"] and kiosk.press("rate_3")["ok"]  # next completes: rating prompt
    finally:
        kiosk.terminate()
        watcher.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_bundle_changing_start_only_sections_restarts_the_kiosk(gateway, mosquitto, tmp_path: Path) -> None:
    """[buttons] is read only at start: after `applied` the kiosk re-executes itself (same PID) and
    comes back on the new release (a new device.started with the new config hash)."""
    gw = gateway
    key, pub_hex = gw.trust_new_update_key(tmp_path / "offline.key")
    gw.register_device(DEVICE, OFFICE, 3)
    cfg = write_config(tmp_path / "kiosk.toml", device_id=DEVICE, office=OFFICE, device={"counter": 3},
                       updates={"trusted_keys": [pub_hex]})
    watcher = Watcher(mosquitto.port)
    data_dir = tmp_path / "kdata"
    kiosk = KioskProc(cfg, mosquitto.url, data_dir).start()

    def started() -> list[dict]:
        return [e["data"] for e in watcher.events() if e["type"] == "device.started"]

    try:
        watcher.wait_for(lambda: started(), timeout=90, what="device.started")
        pid, first = kiosk.proc.pid, started()[0]["config_sha256"]
        overlay = b'[buttons]\ndebounce_ms = 80\n[queue]\nlabel_prefix = "R"\n'
        bid, data = _bundle(key, tmp_path / "v1", "1.1.0", {"config/kiosk.toml": overlay})
        row = _roll_out(gw, bid, data)
        assert row["outcome"] == "applied", row
        assert "restarting the kiosk to apply: buttons" in row["message"], row
        watcher.wait_for(lambda: len(started()) >= 2, timeout=120, what="device.started after the restart")
        again = started()[-1]
        assert again["restart"] == "process" and again["config_sha256"] != first
        assert kiosk.proc.pid == pid and kiosk.proc.poll() is None

        def ticket() -> dict | None:
            try:
                return kiosk.press("ticket")
            except httpx.HTTPError:
                return None  # the display server is coming back up

        assert wait_for(ticket, timeout=120, what="kiosk serving again")["label"] == "R0001"
        # the restarted kiosk confirmed itself (broker connected): its probation is over
        wait_for(lambda: not (data_dir / "update-pending.json").exists(), timeout=120, what="trial confirmed")
        assert json.loads((data_dir / "current/release.json").read_text())["bundle_id"] == bid
    finally:
        kiosk.terminate()
        watcher.close()
        shutil.rmtree(data_dir, ignore_errors=True)
