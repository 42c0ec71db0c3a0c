"""VisionService end to end with the folder camera, real models, a manual clock."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from contract.payloads import EventType, SentimentWindow
from device.vision.classify import CLASSES
from device.vision.config import VisionConfig
from device.vision.pipeline import FramePipeline
from device.vision.service import VisionService
from tests.vision.conftest import FRAME, MODELS, wait_for


@pytest.fixture
def camera_dir(tmp_path: Path) -> Path:
    d = tmp_path / "camera"
    d.mkdir()
    shutil.copy(FRAME, d / "0001.jpg")
    return d


def make(cfg: dict, clock, emitted: list, **kw) -> VisionService:
    table = {"enabled": True, "fps": 20, "k": 3, "window_s": 60, "watchdog_s": 30, **cfg}
    return VisionService(VisionConfig.from_table(table), counter=3,
                         emit=lambda t, d: emitted.append((t, d)), clock=clock, **kw)


def run_visit(svc: VisionService, no: int, frames: int = 1) -> None:
    before = svc.frames_processed + svc.frames_skipped
    svc.visit_started(no)
    wait_for(lambda: svc.status()["camera"] == "on", what="camera on")
    wait_for(lambda: svc.frames_processed + svc.frames_skipped >= before + frames + 1, what="frames")
    svc.visit_ended(no)


def test_k_visits_give_one_window_equal_to_the_classifier(camera_dir, clock, pipeline, face_frame):
    emitted: list = []
    svc = make({"source": f"folder:{camera_dir}"}, clock, emitted)
    svc.start()
    try:
        wait_for(lambda: svc.status()["camera"] == "off", what="camera ready")
        for no in (1, 2, 3):
            run_visit(svc, no, frames=3)
        assert emitted == []  # nothing before the window closes
        clock.advance(60)
        wait_for(lambda: emitted, what="sentiment.window")
    finally:
        svc.stop()
    assert len(emitted) == 1
    etype, data = emitted[0]
    assert etype == EventType.SENTIMENT_WINDOW
    w = SentimentWindow.model_validate(data)
    assert w.visits == 3 and w.k == 3 and w.counter == 3
    # the same picture every frame: the motion gate lets one frame per visit through
    assert w.frames == 3 and svc.frames_skipped >= 6
    expect = pipeline.process(face_frame).probs
    for i, c in enumerate(CLASSES):
        assert w.class_shares[c] == pytest.approx(float(expect[i]), abs=2e-4)
    st = svc.status()
    assert st["vision_restarts"] == 0
    assert set(st["model_versions"]) == {"expression_minixception", "face_blazeface_short"}


def test_fewer_than_k_visits_publish_nothing(camera_dir, clock):
    emitted: list = []
    svc = make({"source": f"folder:{camera_dir}"}, clock, emitted)
    svc.start()
    try:
        wait_for(lambda: svc.status()["camera"] == "off", what="camera ready")
        for no in (1, 2):
            run_visit(svc, no)
        clock.advance(60)
        wait_for(lambda: svc._agg.carried >= 1, what="window closed")
        assert emitted == []
        run_visit(svc, 3)  # the carried two + this one reach k=3 at the next window
        clock.advance(60)
        wait_for(lambda: emitted, what="sentiment.window")
        assert emitted[0][1]["visits"] == 3
    finally:
        svc.stop()


def test_camera_switch_off_and_on(camera_dir, clock):
    emitted: list = []
    svc = make({"source": f"folder:{camera_dir}"}, clock, emitted)
    svc.start()
    try:
        wait_for(lambda: svc.status()["camera"] == "off", what="camera ready")
        svc.set_enabled(False)
        wait_for(lambda: svc.status()["camera"] == "disabled", what="disabled")
        n = svc.frames_processed + svc.frames_skipped
        svc.visit_started(1)
        for _ in range(20):
            assert svc.status()["camera"] == "disabled"
            threading.Event().wait(0.01)
        svc.visit_ended(1)
        assert svc.frames_processed + svc.frames_skipped == n  # no frame read while off
        svc.set_enabled(True)
        run_visit(svc, 2)
    finally:
        svc.stop()


def test_disabled_by_config_never_opens_the_camera(clock):
    svc = VisionService(VisionConfig.from_table({"enabled": False, "source": "folder:/nonexistent"}),
                        counter=1, emit=lambda t, d: None, clock=clock)
    svc.start()
    try:
        svc.visit_started(1)
        wait_for(lambda: svc.status()["camera"] == "disabled", what="disabled")
        assert svc.status()["last_error"] is None
    finally:
        svc.stop()


def test_missing_camera_is_absent(clock, tmp_path):
    svc = make({"source": f"folder:{tmp_path / 'nothing'}"}, clock, [])
    svc.start()
    try:
        wait_for(lambda: svc.status()["camera"] == "absent", what="absent")
        assert "not found" in svc.status()["last_error"]
    finally:
        svc.stop()


def test_tampered_model_is_refused(camera_dir, clock, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("*.py", "__pycache__", "LICENSES"))
    onnx = models / "expression_minixception.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    svc = make({"source": f"folder:{camera_dir}", "models_dir": str(models)}, clock, [])
    svc.start()
    try:
        wait_for(lambda: svc.status()["camera"] == "error", what="error state")
        err = svc.status()["last_error"]
        assert "sha256 mismatch" in err and "expression_minixception" in err
        svc.visit_started(1)
        threading.Event().wait(0.3)
        assert svc.frames_processed == 0
    finally:
        svc.stop()


class _StuckOnce:
    """The real pipeline, except that the first frame of the first instance hangs until released."""

    def __init__(self, real: FramePipeline, gate: threading.Event, stuck: bool) -> None:
        self.real, self.gate, self.stuck = real, gate, stuck

    def process(self, frame):
        if self.stuck:
            self.stuck = False
            self.gate.wait(120)
        return self.real.process(frame)


def test_watchdog_restarts_a_stuck_inference(camera_dir, clock):
    release = threading.Event()
    made: list = []

    def factory():
        p = _StuckOnce(FramePipeline.from_models_dir(MODELS), release, stuck=not made)
        made.append(p)
        return p

    emitted: list = []
    svc = make({"source": f"folder:{camera_dir}", "watchdog_s": 0.5}, clock, emitted,
               pipeline_factory=factory)
    svc.start()
    try:
        wait_for(lambda: svc.status()["camera"] == "off", what="camera ready")
        svc.visit_started(1)
        wait_for(lambda: svc.status()["vision_restarts"] >= 1, what="watchdog restart")
        assert "watchdog" in svc.status()["last_error"]
        wait_for(lambda: svc.frames_processed >= 1, what="a frame after the restart")
        svc.visit_ended(1)
        run_visit(svc, 2)
        run_visit(svc, 3)
        clock.advance(60)
        wait_for(lambda: emitted, what="window after restart")
        assert emitted[0][1]["visits"] == 3  # the visit whose first frame hung still counted
        assert len(made) == 2 and svc.status()["vision_restarts"] == 1
    finally:
        release.set()
        svc.stop()


def test_watchdog_gives_up_after_repeated_stalls_and_command_retries(camera_dir, clock):
    release = threading.Event()
    made: list = []

    def factory():
        p = _StuckOnce(FramePipeline.from_models_dir(MODELS), release, stuck=len(made) < 3)
        made.append(p)
        return p

    svc = make({"source": f"folder:{camera_dir}", "watchdog_s": 0.3}, clock, [], pipeline_factory=factory)
    svc.start()
    try:
        wait_for(lambda: svc.status()["camera"] == "off", what="camera ready")
        svc.visit_started(1)
        wait_for(lambda: svc.status()["camera"] == "error", what="error after repeated stalls")
        st = svc.status()
        assert st["vision_restarts"] == 3 and "stuck 3 times" in st["last_error"]
        assert len(made) == 3  # no fourth pipeline piled up
        svc.set_enabled(True)  # the operator's `camera on` retries
        wait_for(lambda: svc.frames_processed >= 1, what="a frame after the retry")
        assert svc.status()["camera"] == "on"
    finally:
        release.set()
        svc.stop()


def test_off_contract_window_is_not_emitted_and_its_values_are_not_reported(camera_dir, clock, caplog):
    """A window that fails the contract (here: below k) is dropped; the error sent in health and the
    log name the reason but never quote the aggregate's values."""
    emitted: list = []
    svc = make({"source": f"folder:{camera_dir}"}, clock, emitted)
    bad = {"counter": 3, "window_start": clock.wall().isoformat(), "window_end": clock.wall().isoformat(),
           "visits": 1, "k": 3, "frames": 4, "class_shares": {"happy": 0.8123, "sad": 0.1877},
           "score": 0.6246}
    svc._agg.close_window = lambda *_a: dict(bad)  # an aggregator bug, simulated
    svc.start()
    try:
        clock.advance(60)
        wait_for(lambda: svc.status()["last_error"], what="error reported")
    finally:
        svc.stop()
    err = svc.status()["last_error"]
    assert emitted == [] and "below k=3" in err
    logged = caplog.text
    assert "below k=3" in logged
    for text in (err, logged):
        assert not any(s in text for s in ("0.8123", "0.1877", "0.6246", "happy", "class_shares")), text


class _Unpluggable:
    """The real folder camera, except that it can be 'unplugged' (reads give nothing) and counts opens."""

    opens = 0
    unplugged = False

    def __init__(self, spec: str) -> None:
        from device.vision.camera import make_source

        self.real = make_source(spec)

    def open(self) -> None:
        type(self).opens += 1
        self.real.open()

    def read(self):
        return None if type(self).unplugged else self.real.read()

    def close(self) -> None:
        self.real.close()


def test_camera_that_stops_giving_frames_is_reported_and_reopened(camera_dir, clock, monkeypatch):
    import device.vision.service as service

    monkeypatch.setattr(service, "CAMERA_RETRY_S", 0.2)
    monkeypatch.setattr(_Unpluggable, "opens", 0)
    monkeypatch.setattr(_Unpluggable, "unplugged", False)
    svc = make({"source": f"folder:{camera_dir}"}, clock, [], source_factory=_Unpluggable)
    svc.start()
    try:
        wait_for(lambda: svc.status()["camera"] == "off", what="camera ready")
        _Unpluggable.unplugged = True
        svc.visit_started(1)
        wait_for(lambda: svc.status()["camera"] == "absent", what="camera reported absent")
        assert "no frame 20 times in a row" in svc.status()["last_error"]
        _Unpluggable.unplugged = False  # plugged back in
        wait_for(lambda: _Unpluggable.opens >= 2 and svc.frames_processed >= 1, what="reopened and reading")
        assert svc.status()["camera"] == "on"
    finally:
        svc.stop()
