"""One frame in, one expression distribution (or nothing) out. Everything stays in RAM."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.vision.blazeface import Face, FaceDetector
from device.vision.classify import ExpressionClassifier, crop_face, face_geometry, to_gray
from device.vision.manifest import DETECTOR, default_classifier, verified_model


@dataclass(frozen=True)
class FrameResult:
    face: bool
    probs: np.ndarray | None  # (7,) in CLASSES order, None when no usable face


class FramePipeline:
    """Detect the largest face, align by the eyes, crop grayscale at the classifier's side, classify."""

    def __init__(self, detector: FaceDetector, classifier: ExpressionClassifier, min_face_px: int = 40):
        self.detector = detector
        self.classifier = classifier
        self.min_face_px = min_face_px

    @classmethod
    def from_models_dir(
        cls, models_dir: Path, min_face_px: int = 40, min_score: float = 0.6, classifier: str | None = None
    ) -> FramePipeline:
        """Load both models after verifying their sha256 against the manifest. ``classifier`` names a
        manifest entry; None takes the manifest's ``default_classifier``."""
        det_path, _ = verified_model(models_dir, DETECTOR)
        cls_path, _ = verified_model(models_dir, classifier or default_classifier(models_dir))
        return cls(FaceDetector(det_path, min_score=min_score), ExpressionClassifier(cls_path), min_face_px)

    def face_crop(self, frame: np.ndarray, face: Face) -> np.ndarray:
        centre, side, angle = face_geometry(face.box, face.keypoints)
        return crop_face(to_gray(frame), centre, side, angle, out=self.classifier.side)

    def process(self, frame: np.ndarray) -> FrameResult:
        face = self.detector.largest(frame)
        if face is None or face.width < self.min_face_px:
            return FrameResult(face=False, probs=None)
        probs = self.classifier.predict(self.face_crop(frame, face))[0]
        return FrameResult(face=True, probs=probs)


class MotionGate:
    """Cheap change detector: mean absolute difference of a 32x24 grayscale thumbnail.

    ``changed`` is True for the first frame after ``reset`` and whenever the scene moved by more
    than ``threshold`` grey levels on average; unchanged frames are skipped by the caller."""

    def __init__(self, threshold: float = 2.0) -> None:
        self.threshold = threshold
        self._last: np.ndarray | None = None

    def reset(self) -> None:
        self._last = None

    def changed(self, frame: np.ndarray) -> bool:
        # a quarter-resolution view first (free: a strided slice), then an area-averaged 32x24 thumbnail
        small = np.ascontiguousarray(frame[::4, ::4])
        thumb = cv2.resize(to_gray(small), (32, 24), interpolation=cv2.INTER_AREA).astype(np.int16)
        last = self._last
        if last is not None and self.threshold > 0 and float(np.abs(thumb - last).mean()) <= self.threshold:
            return False
        self._last = thumb  # compared with the last *processed* frame, so slow drift still counts
        return True
