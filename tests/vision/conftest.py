"""Fixtures for the vision tests: the committed models, a real face frame, a controllable clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.vision.pipeline import FramePipeline
from hil.harness.wait import wait_for as shared_wait_for

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
FRAME = Path(__file__).resolve().parent / "data" / "astronaut_640x480.jpg"


@pytest.fixture(scope="session")
def pipeline() -> FramePipeline:
    return FramePipeline.from_models_dir(MODELS)


@pytest.fixture(scope="session")
def face_frame() -> np.ndarray:
    img = cv2.imread(str(FRAME), cv2.IMREAD_COLOR)
    assert img is not None and img.shape == (480, 640, 3), FRAME
    return img


class ManualClock:
    """Monotonic time that moves only when told; wall = a fixed epoch + monotonic."""

    def __init__(self) -> None:
        self._t = 1000.0
        self._lock = threading.Lock()
        self.epoch = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        with self._lock:
            return self._t

    def advance(self, s: float) -> None:
        with self._lock:
            self._t += s

    def wall(self) -> datetime:
        return self.epoch + timedelta(seconds=self.monotonic() - 1000.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def wait_for(cond, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``cond`` until true (the one helper, hil/harness/wait.py); generous timeout: shared machine."""
    shared_wait_for(cond, timeout, what, interval=0.02)
