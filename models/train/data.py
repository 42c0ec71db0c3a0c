"""FER-2013 folders -> uint8 arrays in memory, with a content hash recorded in the manifest.

The images are read with the kiosk's own ``crop_whole`` at the network's input side (for 48x48
FER-2013 crops and a 48-px network this is the identity), so training sees exactly what
``models.evaluate`` and the kiosk feed the exported model. Nothing is written to disk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.vision.classify import CLASSES, crop_face
from models.evaluate import list_dataset


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, S, S) uint8
    labels: np.ndarray  # (N,) int64, CLASSES order
    sha256: str  # over the sorted (class/file name, file sha256) lines
    unreadable: int

    def counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(CLASSES)}


def load_split(folder: Path, side: int) -> Split:
    """Every readable image of ``folder/<class>/`` as a ``side`` x ``side`` grey crop."""
    items = list_dataset(folder)
    digest = hashlib.sha256()
    images, labels, unreadable = [], [], 0
    for path, label in items:
        raw = path.read_bytes()
        digest.update(f"{path.parent.name}/{path.name} {hashlib.sha256(raw).hexdigest()}\n".encode())
        gray = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            unreadable += 1
            continue
        h, w = gray.shape
        images.append(crop_face(gray, (w / 2, h / 2), float(max(h, w)), out=side))
        labels.append(label)
    if not images:
        raise ValueError(f"no readable images under {folder}")
    return Split(np.stack(images), np.asarray(labels, np.int64), digest.hexdigest(), unreadable)


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [-1, 1], the kiosk's ``to_model_input`` scaling."""
    return (images.astype(np.float32) / 255.0 - 0.5) * 2.0
