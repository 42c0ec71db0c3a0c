"""The real kiosk (``device.cli run --simulate``) with an image-folder camera and a real Mosquitto.

Checks: sentiment.window aggregates equal the classifier's outputs on the folder's image; fewer than
k visits publish nothing (they are carried into a later window); every MQTT payload the kiosk sends
carries nothing per visit or per frame; no file appears in HOME/TMPDIR, and no image in the data dir.
"""

from __future__ import annotations

import json
import time

import pytest

from contract.codec import decode
from contract.payloads import SentimentWindow
from device.vision.classify import CLASSES
from tests.device.kiosk_proc import KioskProc, Watcher, write_config
from tests.vision.conftest import FRAME

WINDOW_S = 4.0
WINDOW_KEYS = set(SentimentWindow.model_fields)
VISION_HEALTH_KEYS = {"camera", "vision_restarts", "model_versions"}
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"BM", b"\x93NUMPY")


@pytest.fixture
def watcher(mosquitto):
    w = Watcher(mosquitto.port)
    yield w
    w.close()


def _visit(k: KioskProc, timeout: float = 120) -> None:
    """A citizen at the counter: stands until the camera has classified frames of her, then rates."""
    assert k.press("ticket")["ok"]
    before = k.status()["vision"]["frames"]
    assert k.press("next")["ok"]
    deadline = time.monotonic() + timeout
    while True:
        vision = k.status()["vision"]
        if vision["frames"] > before:
            break
        assert time.monotonic() < deadline, f"no frame classified during the visit: {vision}"
        time.sleep(0.1)
    assert vision["visits_open"] == 1 and set(vision) == {"camera", "frames", "visits_open"}
    assert k.press("next")["prompt_label"]  # the officer completes the visit: its rating prompt opens
    assert k.press("rate_3")["ok"]


def _windows(w: Watcher) -> list[dict]:
    return [e for e in w.events() if e["type"] == "sentiment.window"]


def test_kiosk_publishes_k_anonymous_windows_matching_the_classifier(
    tmp_path, mosquitto, watcher, pipeline, face_frame, monkeypatch
):
    home, tmpdir = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmpdir.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    camera = {"enabled": True, "source": f"folder:{FRAME.parent}", "fps": 10, "k": 3,
              "window_s": WINDOW_S, "watchdog_s": 30}
    cfg = write_config(tmp_path / "k.toml", camera=camera)
    data_dir = tmp_path / "data"
    k = KioskProc(cfg, mosquitto.url, data_dir).start()
    try:
        watcher.wait_for(lambda: any(h.get("camera") == "off" for h in watcher.of_kind("health")),
                         timeout=120, what="camera ready in health")
        _visit(k)
        _visit(k)
        # two visits < k=3: at least two windows close without publishing anything
        time.sleep(2.5 * WINDOW_S)
        assert _windows(watcher) == []
        _visit(k)  # the carried two + this one = k
        watcher.wait_for(lambda: _windows(watcher), timeout=120, what="sentiment.window")
        health = watcher.of_kind("health")[-1]
    finally:
        k.terminate()

    windows = _windows(watcher)
    assert len(windows) == 1
    w = SentimentWindow.model_validate(windows[0]["data"])
    assert w.visits == 3 and w.k == 3 and w.frames >= 3
    assert (w.window_end - w.window_start).total_seconds() >= 2 * WINDOW_S  # carried across windows
    expect = pipeline.process(face_frame).probs
    for i, c in enumerate(CLASSES):
        assert w.class_shares[c] == pytest.approx(float(expect[i]), abs=2e-4), c
    assert w.score > 0.9  # she smiles

    # every payload on the wire: decodes under the contract, no per-visit vision data anywhere
    assert health["camera"] in ("on", "off") and health["vision_restarts"] == 0
    assert set(health["model_versions"]) == {"expression_minixception", "face_blazeface_short"}
    for topic, payload, _ in watcher.messages:
        msg = decode(topic, payload).message
        body = json.loads(payload)
        if body.get("type") == "sentiment.window":
            assert set(body["data"]) == WINDOW_KEYS
        elif "data" in body:
            assert not set(body["data"]) & {"class_shares", "probs", "frames", "score", "landmarks"}
        assert all(len(v) < 300 for v in _strings(body)), topic  # no encoded image or vector
        assert msg is not None
    assert set(health) >= VISION_HEALTH_KEYS

    # nothing written outside the kiosk's data dir, and no image inside it
    assert sorted(p for p in home.rglob("*") if p.is_file()) == []
    # python-escpos (the ticket printer, not vision) caches its printer-profile table in TMPDIR
    leftovers = [p for p in tmpdir.rglob("*") if p.is_file() and not p.name.endswith(".capabilities.pickle")]
    assert leftovers == []
    for p in data_dir.rglob("*"):
        if p.is_file() and p.parent.name != "prints":  # prints/: the simulated printer's ticket images
            with p.open("rb") as f:
                assert not f.read(8).startswith(IMAGE_MAGIC), p


def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def test_kiosk_camera_command_switches_vision_off(tmp_path, mosquitto, watcher):
    """The `camera` command turns the camera off; health reports it as disabled."""
    import uuid
    from datetime import UTC, datetime

    import paho.mqtt.publish as publish
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from contract.codec import encode
    from contract.payloads import CommandRequest
    from contract.topics import cmd_topic
    from gateway.commands import public_hex, sign_request

    gateway_key = Ed25519PrivateKey.generate()  # camera commands must be signed by the gateway
    camera = {"enabled": True, "source": f"folder:{FRAME.parent}", "fps": 5, "window_s": 60}
    keys = {"trusted_keys": [public_hex(gateway_key)]}
    cfg = write_config(tmp_path / "k.toml", camera=camera, commands=keys)
    k = KioskProc(cfg, mosquitto.url, tmp_path / "data").start()
    try:
        watcher.wait_for(lambda: any(h.get("camera") == "off" for h in watcher.of_kind("health")),
                         timeout=120, what="camera ready")
        req = sign_request(CommandRequest(cmd_id=str(uuid.uuid4()), name="camera", args={"on": False},
                                          issued_at=datetime.now(UTC)), gateway_key, "LC-TEST", "kiosk-t1")
        publish.single(cmd_topic("LC-TEST", "kiosk-t1", "camera"), encode(req), qos=1,
                       hostname="127.0.0.1", port=mosquitto.port)
        watcher.wait_for(lambda: any(e["type"] == "cmd.result" and e["data"]["cmd_id"] == req.cmd_id
                                     for e in watcher.events()), timeout=60, what="cmd.result")
        watcher.wait_for(lambda: watcher.of_kind("health")[-1].get("camera") == "disabled",
                         timeout=60, what="camera disabled in health")
    finally:
        k.terminate()
    result = next(e for e in watcher.events() if e["type"] == "cmd.result")
    assert result["data"]["ok"] is True
