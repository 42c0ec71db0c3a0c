"""An applied release in effect: config overlay precedence, models_dir, pre-activation parse, the
post-switch health check in real child processes (check-config, model load), the CLI's start path."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest

from device import cli
from device.config import ConfigError, load_config
from device.updates import handle_apply_update, release_dir
from device.updates.apply import PENDING, active_slot
from device.updates.health import check_release, precheck_config
from provisioning.signing import generate_key, load_key, public_raw, sign_bundle
from tests.device.kiosk_proc import write_config

REPO = Path(__file__).resolve().parents[2]
CMD2 = "22222222-2222-4222-8222-222222222222"
MODELS = ("manifest.json", "face_blazeface_short.onnx", "expression_minixception.onnx")


@pytest.fixture
def key(tmp_path: Path):
    generate_key(tmp_path / "offline.key")
    return load_key(tmp_path / "offline.key")


def bundle(key, root: Path, version: str, files: dict[str, bytes]) -> bytes:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return sign_bundle(key, root, version)[1]


def apply(data: bytes, dd: Path, key, local: Path, healthy=None) -> dict:
    args = {"url": "http://gw/b.tar", "sha256": hashlib.sha256(data).hexdigest()}
    return handle_apply_update(
        args, data_dir=dd, trusted_keys=[public_raw(key)], fetch=lambda url: data,
        precheck=lambda staged: precheck_config(local, staged),
        health_check=healthy or (lambda: (lambda p: (p is None, p))(check_release(local, release_dir(dd)))))


def real_models() -> dict[str, bytes]:
    return {f"models/{n}": (REPO / "models" / n).read_bytes() for n in MODELS}


def test_overlay_precedence_and_models_dir(tmp_path: Path) -> None:
    local = write_config(tmp_path / "kiosk.toml", queue={"label_prefix": "A", "label_digits": 3},
                         camera={"enabled": True, "source": "folder:/srv/frames"})
    rel = tmp_path / "rel"
    (rel / "config").mkdir(parents=True)
    (rel / "config/kiosk.toml").write_text('[queue]\nlabel_prefix = "B"\n[rating.reasons]\nother = "Khác"\n')
    cfg = load_config(local, rel)
    assert cfg.queue.label_prefix == "B" and cfg.queue.label_digits == 3  # per key, local keys kept
    assert cfg.rating.reasons == {"other": "Khác"}  # a nested table is replaced whole
    assert cfg.device.id == "kiosk-t1" and cfg.release == str(rel) and cfg.path == str(local)
    assert cfg.vision.models_dir == REPO / "models"  # the release has no models: built-in ones

    for rel_name, data in real_models().items():
        (rel / rel_name).parent.mkdir(parents=True, exist_ok=True)
        (rel / rel_name).write_bytes(data)
    assert load_config(local, rel).vision.models_dir == rel / "models"
    assert load_config(local, rel).source_sha256 != load_config(local).source_sha256

    for section in ("device", "broker", "display", "updates"):
        (rel / "config/kiosk.toml").write_text(f"[{section}]\nx = 1\n")
        with pytest.raises(ConfigError, match=f"\\[{section}\\]: may be set only in the kiosk's own config"):
            load_config(local, rel)
    (rel / "config/kiosk.toml").write_text("[queue\n")
    with pytest.raises(ConfigError, match="TOML syntax"):
        load_config(local, rel)


def test_invalid_bundle_config_is_refused_before_activation(key, tmp_path: Path) -> None:
    local = write_config(tmp_path / "kiosk.toml")
    dd = tmp_path / "data"
    good = bundle(key, tmp_path / "v1", "1.0.0", {"config/kiosk.toml": b'[queue]\nlabel_prefix = "B"\n'})
    assert apply(good, dd, key, local)["outcome"] == "applied"
    for i, (text, why) in enumerate(((b"[rating]\nlabels = [\"a\"]\n", "[rating] labels: must have 3"),
                                     (b"[broker]\nurl = \"mqtt://evil:1883\"\n", "[broker]: may be set only"),
                                     (b"[buttons.pins]\nticket = 5\n", "[buttons.pins] next: required"))):
        b = bundle(key, tmp_path / f"bad{i}", f"1.0.{i + 1}", {"config/kiosk.toml": text})
        r = apply(b, dd, key, local, healthy=lambda: pytest.fail("invalid config reached activation"))
        assert r["outcome"] == "refused" and why in r["message"], r
        assert "rejected by the kiosk's parser" in r["message"]
        assert active_slot(dd) == "A" and not (dd / "releases/B").exists()
    assert load_config(local, release_dir(dd)).queue.label_prefix == "B"


def test_models_checked_in_child_process_then_used_by_vision(key, tmp_path: Path) -> None:
    local = write_config(tmp_path / "kiosk.toml", camera={"enabled": True, "source": "folder:/srv/frames"})
    dd = tmp_path / "data"
    r = apply(bundle(key, tmp_path / "v1", "1.0.0", real_models()), dd, key, local)
    assert r["outcome"] == "applied", r
    assert load_config(local, release_dir(dd)).vision.models_dir == dd / "releases/A/models"

    # Signed and listed in the release's models/manifest.json, but not an ONNX model: load fails.
    junk = b"\x08\x07 junk, not a protobuf graph" * 10
    manifest = json.loads((REPO / "models/manifest.json").read_text())
    manifest["models"]["expression_minixception"]["sha256"] = hashlib.sha256(junk).hexdigest()
    files = {"models/expression_minixception.onnx": junk,
             "models/manifest.json": json.dumps(manifest).encode()}
    r = apply(bundle(key, tmp_path / "v2", "1.1.0", files), dd, key, local)
    assert r["outcome"] == "rolled_back" and "model check failed" in r["message"], r
    assert "sha256" not in r["message"]  # this one failed to load, not its hash
    assert active_slot(dd) == "A"
    assert load_config(local, release_dir(dd)).vision.models_dir == dd / "releases/A/models"

    # A config the kiosk parses, but the models it names are not there: rolled back after the switch.
    overlay = {"config/kiosk.toml": b'[camera]\nmodels_dir = "/nonexistent/models"\n'}
    r = apply(bundle(key, tmp_path / "v3", "1.2.0", overlay), dd, key, local)
    assert r["outcome"] == "rolled_back", r
    assert "model manifest not found: /nonexistent/models" in r["message"], r
    assert active_slot(dd) == "A"


def test_cli_check_config_with_release(tmp_path: Path, capsys) -> None:
    local = write_config(tmp_path / "kiosk.toml", camera={"enabled": True, "source": "folder:/srv/frames"})
    rel = tmp_path / "rel"
    for rel_name, data in real_models().items():
        (rel / rel_name).parent.mkdir(parents=True, exist_ok=True)
        (rel / rel_name).write_bytes(data)
    assert cli.main(["check-config", "--config", str(local), "--release", str(rel)]) == 0
    out = capsys.readouterr().out
    assert f"+ update release {rel}" in out and f"models {rel / 'models'}" in out
    (rel / "config").mkdir()
    (rel / "config/kiosk.toml").write_text("[rating]\nscale = 4\n")
    assert cli.main(["check-config", "--config", str(local), "--release", str(rel)]) == 2
    assert "[rating] scale: must be 3 or 5, got 4" in capsys.readouterr().err
    assert cli.main(["check-config", "--config", str(local), "--release", str(tmp_path / "none")]) == 2
    assert "update release folder not found" in capsys.readouterr().err


def _ns(local: Path, dd: Path) -> argparse.Namespace:
    return argparse.Namespace(config=local, data_dir=dd, broker=None, http_port=None, http_host=None)


def test_kiosk_start_uses_release_recovers_probation_survives_stale_overlay(key, tmp_path: Path) -> None:
    local = write_config(tmp_path / "kiosk.toml")
    dd = tmp_path / "data"
    overlay = ('[queue]\nlabel_prefix = "B"\n'
               '[rating]\nlabels = ["Chưa hài lòng", "Hài lòng", "Rất hài lòng"]\n')
    v1 = bundle(key, tmp_path / "v1", "1.0.0", {"config/kiosk.toml": overlay.encode()})
    assert apply(v1, dd, key, local)["outcome"] == "applied"
    cfg, recovered, problem = cli._load(_ns(local, dd))
    assert cfg.queue.label_prefix == "B" and recovered is None and problem is None

    # Power cut while v2 was on probation: the start path rolls back before reading the config.
    class PowerCut(BaseException):
        pass

    def cut():
        raise PowerCut

    v2 = bundle(key, tmp_path / "v2", "1.1.0", {"config/kiosk.toml": b'[queue]\nlabel_prefix = "C"\n'})
    with pytest.raises(PowerCut):
        apply(v2, dd, key, local, healthy=cut)
    assert (dd / PENDING).exists() and active_slot(dd) == "B"
    cfg, recovered, problem = cli._load(_ns(local, dd))
    assert recovered["outcome"] == "rolled_back" and active_slot(dd) == "A"
    assert cfg.queue.label_prefix == "B" and problem is None

    # The local config changed so that the release overlay no longer validates: start on local alone.
    five = ["Rất không hài lòng", "Không hài lòng", "Bình thường", "Hài lòng", "Rất hài lòng"]
    pins = {"ticket": 5, "next": 6, "recall": 13, "no_show": 19, "rate_1": 17, "rate_2": 27, "rate_3": 22,
            "rate_4": 16, "rate_5": 20}
    write_config(local, rating={"scale": 5, "labels": five}, buttons={"pins": pins})
    cfg, recovered, problem = cli._load(_ns(local, dd))
    assert cfg.queue.label_prefix == "" and cfg.rating.scale == 5
    assert "update release A ignored" in problem and "[rating] labels: must have 5 entries" in problem


def test_health_check_with_relative_paths(key, tmp_path: Path, monkeypatch) -> None:
    """The kiosk may run with ``--config kiosk.toml --data-dir data/kiosk``; the child checks run
    elsewhere, so the paths handed to them must not depend on the kiosk's working directory."""
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path / "kiosk.toml", camera={"enabled": True, "source": "folder:/srv/frames"})
    local, dd = Path("kiosk.toml"), Path("data/kiosk")
    r = apply(bundle(key, tmp_path / "v1", "1.0.0", real_models()), dd, key, local)
    assert r["outcome"] == "applied", r
    assert release_dir(dd) == tmp_path / "data/kiosk/releases/A"
    assert check_release(local, Path("data/kiosk/releases/A")) is None


def test_restart_trial_confirmed_or_rolled_back_at_the_next_start(key, tmp_path: Path) -> None:
    from device.updates import recover_interrupted
    from device.updates.apply import begin_restart_trial, confirm_restart_trial, in_restart_trial

    local = write_config(tmp_path / "kiosk.toml")
    dd = tmp_path / "data"
    v1 = bundle(key, tmp_path / "v1", "1.0.0", {"config/kiosk.toml": b"[buttons]\ndebounce_ms = 80\n"})
    assert apply(v1, dd, key, local)["outcome"] == "applied"
    assert begin_restart_trial(dd, "11111111-1111-4111-8111-111111111111")
    assert recover_interrupted(dd) is None and in_restart_trial(dd)  # this start is the trial
    assert confirm_restart_trial(dd) and not (dd / PENDING).exists() and active_slot(dd) == "A"
    assert recover_interrupted(dd) is None and active_slot(dd) == "A"

    assert begin_restart_trial(dd, CMD2)
    assert recover_interrupted(dd) is None  # the trial start ... dies before confirming
    r = recover_interrupted(dd)  # the start after it
    assert r["outcome"] == "rolled_back" and r["cmd_id"] == CMD2
    assert "did not come up healthy after restarting" in r["message"]
    assert active_slot(dd) is None and not (dd / PENDING).exists()
