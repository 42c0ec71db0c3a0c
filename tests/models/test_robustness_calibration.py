"""models.robustness (degradations + its CLI on a tiny dataset) and the ECE helper of models.evaluate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from models.evaluate import expected_calibration_error
from models.robustness import CONDITIONS, head_turn, low_light
from tests.models.test_models import _tiny_dataset

REPO = Path(__file__).resolve().parents[2]


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    labels = np.array([0] * 8 + [1] * 2)
    calibrated = np.tile([0.8, 0.2], (10, 1))  # 80 % confident, 80 % right
    assert expected_calibration_error(calibrated, labels) < 1e-9
    over = np.tile([0.99, 0.01], (10, 1))
    assert abs(expected_calibration_error(over, labels) - 0.19) < 1e-6


def test_degradations_keep_the_crop_and_change_it_the_stated_way():
    rng = np.random.default_rng(1)
    face = rng.integers(60, 200, (48, 48), dtype=np.uint8)
    for name, fn in CONDITIONS.items():
        out = fn(face, 3)
        assert out.shape == face.shape and out.dtype == np.uint8, name
    assert low_light(face, 0).mean() < 0.5 * face.mean()
    a, b = head_turn(face, 0), head_turn(face, 1)
    assert not np.array_equal(a, b) and not np.array_equal(a, face)


def test_robustness_cli_reports_every_condition_for_the_old_model(tmp_path):
    data = _tiny_dataset(tmp_path / "data")
    out = subprocess.run([sys.executable, "-m", "models.robustness", "--data", str(data), "--json",
                          "--models", "expression_minixception", "--frames-every", "1"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)["expression_minixception"]
    assert res["n_crops"] == 6
    assert set(res) >= {"clean", "low_light", "blur", "jpeg_q20", "head_turn_25", "in_frame_48px",
                        "in_frame_240px"}
    assert res["in_frame_240px"]["detected"] == 1.0  # the public-domain face is found at 240 px
    for r in res.values():
        if isinstance(r, dict):
            assert 0 <= r["accuracy"] <= 1
    assert cv2.imread(str(next((data / "happy").iterdir()))) is not None
