"""Which expression model the kiosk loads: the manifest's default_classifier, or [camera] classifier."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from device.vision.config import VisionConfig
from device.vision.manifest import CLASSIFIER, DETECTOR, ModelIntegrityError, default_classifier
from device.vision.pipeline import FramePipeline

MODELS = Path(__file__).resolve().parents[2] / "models"


def _copy(tmp_path: Path) -> Path:
    m = tmp_path / "m"
    shutil.copytree(MODELS, m, ignore=shutil.ignore_patterns("*.py", "__pycache__", "train", "LICENSES"))
    return m


def test_default_classifier_comes_from_the_manifest_and_falls_back_to_mini_xception(tmp_path):
    m = _copy(tmp_path)
    manifest = json.loads((m / "manifest.json").read_text())
    assert default_classifier(m) == manifest.get("default_classifier", CLASSIFIER)
    manifest.pop("default_classifier", None)
    (m / "manifest.json").write_text(json.dumps(manifest))
    assert default_classifier(m) == CLASSIFIER
    manifest["default_classifier"] = "nope"
    (m / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="not listed"):
        FramePipeline.from_models_dir(m)
    manifest["default_classifier"] = 3
    (m / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="default_classifier"):
        default_classifier(m)


def test_camera_classifier_key_selects_a_manifest_entry(tmp_path, face_frame):
    cfg = VisionConfig.from_table({"classifier": CLASSIFIER})
    assert cfg.classifier == CLASSIFIER and VisionConfig.from_table({}).classifier is None
    for bad in ("", 3, ["a"]):
        with pytest.raises(ValueError, match=r"\[camera\] classifier"):
            VisionConfig.from_table({"classifier": bad})
    pipe = FramePipeline.from_models_dir(MODELS, classifier=CLASSIFIER)
    r = pipe.process(face_frame)
    assert r.face and r.probs.shape == (7,) and abs(float(r.probs.sum()) - 1) < 1e-4
    # the detector is not an expression model: a clear error, not a crash at the first face
    with pytest.raises(ValueError, match=r"not \[N, S, S, 1\]"):
        FramePipeline.from_models_dir(MODELS, classifier=DETECTOR)


def test_classifier_refuses_crops_of_the_wrong_side():
    pipe = FramePipeline.from_models_dir(MODELS, classifier=CLASSIFIER)
    with pytest.raises(ValueError, match="this model takes 64x64"):
        pipe.classifier.predict(np.zeros((48, 48), np.uint8))
