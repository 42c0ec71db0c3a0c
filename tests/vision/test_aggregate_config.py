"""k-anonymous windows, the score formula and the [camera] config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from contract.payloads import SentimentWindow
from device.vision.aggregate import WindowAggregator, satisfaction_score
from device.vision.classify import CLASSES
from device.vision.config import VisionConfig

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def onehot(name: str, p: float = 1.0) -> np.ndarray:
    v = np.full(7, (1 - p) / 6)
    v[CLASSES.index(name)] = p
    return v


def visit(agg: WindowAggregator, no: int, *frames: np.ndarray) -> None:
    agg.visit_started(no)
    for f in frames:
        agg.add_frame(f)
    assert agg.visit_ended(no)


def test_score_formula_bounds_and_weights():
    assert satisfaction_score({"happy": 1.0}) == 1.0
    assert satisfaction_score({"angry": 0.5, "sad": 0.5}) == -1.0
    assert satisfaction_score({"neutral": 1.0}) == 0.0
    assert satisfaction_score({"surprise": 1.0}) == 0.5
    assert satisfaction_score({"happy": 0.5, "fear": 0.25, "neutral": 0.25}) == 0.25


def test_fewer_than_k_visits_publish_nothing_and_carry_over():
    agg = WindowAggregator(counter=2, k=5, window_s=3600, now_mono=0, now_wall=T0)
    for i in range(4):
        visit(agg, i + 1, onehot("happy"))
    assert agg.due(3600)
    assert agg.close_window(3600, T0 + timedelta(hours=1)) is None
    assert agg.pending_visits == 4  # carried, not dropped
    visit(agg, 5, onehot("sad"), onehot("sad"), onehot("sad"))
    data = agg.close_window(7200, T0 + timedelta(hours=2))
    assert data is not None
    w = SentimentWindow.model_validate(data)
    assert w.visits == 5 and w.k == 5 and w.frames == 7 and w.counter == 2
    assert w.window_start == T0  # the carried visits' window start is kept
    assert w.window_end == T0 + timedelta(hours=2)
    # each visit weighs the same: 4 happy visits, 1 sad visit (3 frames)
    assert w.class_shares["happy"] == pytest.approx(0.8, abs=1e-3)
    assert w.class_shares["sad"] == pytest.approx(0.2, abs=1e-3)
    assert w.score == pytest.approx(0.6, abs=1e-3)
    assert agg.pending_visits == 0


def test_shares_are_the_mean_of_per_visit_mean_probabilities():
    agg = WindowAggregator(counter=1, k=2, window_s=60, now_mono=0, now_wall=T0)
    a, b, c = onehot("happy", 0.7), onehot("neutral", 0.9), onehot("angry", 0.6)
    visit(agg, 1, a, b)
    visit(agg, 2, c)
    data = agg.close_window(60, T0 + timedelta(minutes=1))
    expect = ((a + b) / 2 + c) / 2
    for i, cls in enumerate(CLASSES):
        assert data["class_shares"][cls] == pytest.approx(expect[i], abs=1e-4)


def test_visits_without_a_face_do_not_count_and_empty_windows_move_on():
    agg = WindowAggregator(counter=1, k=1, window_s=60, now_mono=0, now_wall=T0)
    agg.visit_started(1)
    agg.visit_ended(1)
    assert agg.pending_visits == 0
    assert agg.close_window(60, T0 + timedelta(minutes=1)) is None
    visit(agg, 2, onehot("happy"))
    data = agg.close_window(120, T0 + timedelta(minutes=2))
    assert data["window_start"] == (T0 + timedelta(minutes=1)).isoformat()


def test_mismatched_end_and_new_start():
    agg = WindowAggregator(counter=1, k=1, window_s=60, now_mono=0, now_wall=T0)
    agg.visit_started(7)
    agg.add_frame(onehot("happy"))
    assert not agg.visit_ended(8)  # another ticket: ignored
    agg.visit_started(9)  # implicitly ends 7
    agg.add_frame(onehot("sad"))
    agg.discard_visit(8)  # not the current visit: nothing happens
    assert agg.in_visit
    agg.discard_visit(9)  # 9 was a no-show
    assert not agg.in_visit
    assert agg.pending_visits == 1


def test_config_defaults_and_errors_name_the_key():
    cfg = VisionConfig.from_table({"enabled": True, "source": "folder:/srv/frames", "fps": 2, "k": 7})
    assert cfg.enabled and cfg.source_kind == "folder" and cfg.source_arg == "/srv/frames"
    assert cfg.fps == 2.0 and cfg.k == 7 and cfg.window_s == 3600 and cfg.models_dir.name == "models"
    assert VisionConfig.from_table({}).enabled is False
    bad = [
        ({"fps": 0}, "[camera] fps: must be > 0"),
        ({"fps": "fast"}, "[camera] fps"),
        ({"k": 0}, "[camera] k"),
        ({"k": 2}, "[camera] k: must be an integer >= 3"),
        ({"k": 2.5}, "[camera] k"),
        ({"enabled": "yes"}, "[camera] enabled"),
        ({"source": "usb"}, "[camera] source"),
        ({"source": "folder:"}, "[camera] source"),
        ({"window_s": -1}, "[camera] window_s"),
        ({"watchdog_s": 0}, "[camera] watchdog_s"),
        ({"colour": 1}, "[camera] colour: unknown key"),
    ]
    for table, msg in bad:
        with pytest.raises(ValueError) as e:
            VisionConfig.from_table(table)
        assert str(e.value).startswith("config error: " + msg), (table, str(e.value))
    assert VisionConfig.from_table({"models_dir": "/x"}).models_dir == Path("/x")
