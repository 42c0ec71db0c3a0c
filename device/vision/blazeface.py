"""BlazeFace short-range (MediaPipe) under onnxruntime: letterbox, SSD anchor decoding, weighted NMS.

Decoding follows MediaPipe's face_detection_short_range_common.pbtxt: 896 anchors from strides
8,16,16,16 on a 128x128 input, box = (cx, cy, w, h) + 6 keypoints, scaled by 128, sigmoid scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.vision.runtime import make_session

INPUT_SIZE = 128
RAW_SCORE_LIMIT = 80.0
NMS_IOU = 0.3


def ssd_anchors(size: int = INPUT_SIZE, strides: tuple[int, ...] = (8, 16, 16, 16)) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], MediaPipe's SsdAnchorsCalculator with fixed anchor size."""
    anchors: list[tuple[float, float]] = []
    layer = 0
    while layer < len(strides):
        repeats = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
            repeats += 2  # interpolated_scale_aspect_ratio == 1.0: two anchors per layer
        fm = size // strides[layer]
        for y in range(fm):
            for x in range(fm):
                anchors.extend([((x + 0.5) / fm, (y + 0.5) / fm)] * repeats)
        layer = last
    return np.asarray(anchors, dtype=np.float32)


@dataclass(frozen=True)
class Face:
    """A detection in frame pixels: box (x1, y1, x2, y2), score, keypoints (6, 2):
    right eye, left eye (as seen in the image: the subject's), nose tip, mouth, right/left tragion."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: overlapping candidates are blended by score, not just dropped."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    out: list[tuple[np.ndarray, np.ndarray, float]] = []
    remaining = np.arange(len(scores))
    while remaining.size:
        first = remaining[0]
        overlap = _iou(boxes[first], boxes[remaining])
        group = remaining[overlap > iou]
        w = scores[group][:, None]
        total = float(w.sum())
        box = (boxes[group] * w).sum(0) / total
        kps = (keypoints[group] * w[:, :, None]).sum(0) / total
        out.append((box, kps, float(scores[first])))
        remaining = remaining[overlap <= iou]
    return out


class FaceDetector:
    """Detect faces in a BGR frame; ``largest`` returns the biggest one (the citizen at the counter)."""

    def __init__(self, model_path: Path, min_score: float = 0.6) -> None:
        self.session = make_session(model_path)
        self.input_name = self.session.get_inputs()[0].name
        self.anchors = ssd_anchors()
        self.min_score = min_score

    def _letterbox(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        h, w = frame_bgr.shape[:2]
        scale = INPUT_SIZE / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(frame_bgr, (nw, nh), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        px, py = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
        canvas[py : py + nh, px : px + nw] = small
        rgb = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)
        tensor = rgb.astype(np.float32) * (2.0 / 255.0) - 1.0
        return tensor[None], scale, px, py

    def detect(self, frame_bgr: np.ndarray) -> list[Face]:
        if frame_bgr.ndim == 2:
            frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
        tensor, scale, px, py = self._letterbox(frame_bgr)
        raw_boxes, raw_scores = self.session.run(None, {self.input_name: tensor})
        logits = np.clip(raw_scores.reshape(-1), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.nonzero(scores >= self.min_score)[0]
        if keep.size == 0:
            return []
        reg = raw_boxes.reshape(-1, 8, 2)[keep] / INPUT_SIZE
        anchors = self.anchors[keep]
        centre = reg[:, 0] + anchors
        half = reg[:, 1] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)  # normalised x1 y1 x2 y2
        kps = reg[:, 2:] + anchors[:, None, :]
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        faces = []
        for box, kp, score in weighted_nms(boxes[valid], kps[valid], scores[keep][valid]):
            # undo letterbox: normalised 128-space -> frame pixels
            b = box * INPUT_SIZE
            b = np.array([(b[0] - px) / scale, (b[1] - py) / scale, (b[2] - px) / scale, (b[3] - py) / scale])
            k = kp * INPUT_SIZE
            k = np.stack([(k[:, 0] - px) / scale, (k[:, 1] - py) / scale], axis=1)
            faces.append(Face(box=tuple(float(v) for v in b), score=score, keypoints=k.astype(np.float32)))
        return faces

    def largest(self, frame_bgr: np.ndarray) -> Face | None:
        faces = self.detect(frame_bgr)
        return max(faces, key=lambda f: f.area) if faces else None
