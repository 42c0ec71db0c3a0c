"""Camera sources behind one interface: OpenCV VideoCapture, picamera2, image folder, video file.

Frames are BGR uint8 arrays that live only in RAM; no source ever writes one anywhere.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class CameraUnavailable(RuntimeError):
    """No camera at this source (not plugged in, no such folder, picamera2 not installed)."""


class FrameSource(Protocol):
    def open(self) -> None: ...
    def read(self) -> np.ndarray | None: ...
    def close(self) -> None: ...


class _CvCapture:
    """Reading and releasing a ``cv2.VideoCapture`` opened by the subclass into ``self._cap``."""

    _cap: Any = None

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        return frame if ok else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class OpenCVSource(_CvCapture):
    """A USB/V4L2 camera through cv2.VideoCapture, asked for 640x480."""

    def __init__(self, device: str | int = 0, width: int = 640, height: int = 480) -> None:
        self.device = int(device) if isinstance(device, str) and device.isdigit() else device
        self.width, self.height = width, height
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            cap.release()
            raise CameraUnavailable(f"no camera at opencv:{self.device}")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap



class Picamera2Source:
    """The Raspberry Pi camera through picamera2 (only where the package is importable)."""

    def __init__(self, width: int = 640, height: int = 480) -> None:
        self.size = (width, height)
        self._cam = None

    def open(self) -> None:
        if importlib.util.find_spec("picamera2") is None:
            raise CameraUnavailable("picamera2 is not installed (apt install python3-picamera2)")
        from picamera2 import Picamera2  # type: ignore[import-not-found]

        try:
            cam = Picamera2()
            cam.configure(cam.create_video_configuration(main={"size": self.size, "format": "BGR888"}))
            cam.start()
        except Exception as e:  # no sensor attached, busy, ...
            raise CameraUnavailable(f"picamera2: {e}") from e
        self._cam = cam

    def read(self) -> np.ndarray | None:
        return None if self._cam is None else self._cam.capture_array("main")

    def close(self) -> None:
        if self._cam is not None:
            self._cam.stop()
            self._cam.close()
            self._cam = None


class FolderSource:
    """Images of a folder in name order, looped: the simulated camera for tests and the demo."""

    def __init__(self, folder: str | Path, loop: bool = True) -> None:
        self.folder = Path(folder)
        self.loop = loop
        self._files: list[Path] = []
        self._i = 0

    def open(self) -> None:
        if not self.folder.is_dir():
            raise CameraUnavailable(f"image folder not found: {self.folder}")
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise CameraUnavailable(f"no images in {self.folder}")
        self._i = 0

    def read(self) -> np.ndarray | None:
        if not self._files:
            return None
        if self._i >= len(self._files):
            if not self.loop:
                return None
            self._i = 0
        path = self._files[self._i]
        self._i += 1
        return cv2.imread(str(path), cv2.IMREAD_COLOR)

    def close(self) -> None:
        self._files = []


class VideoFileSource(_CvCapture):
    """A video file, looped."""

    def __init__(self, path: str | Path, loop: bool = True) -> None:
        self.path = Path(path)
        self.loop = loop
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        if not self.path.is_file():
            raise CameraUnavailable(f"video file not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise CameraUnavailable(f"cannot decode video {self.path}")
        self._cap = cap

    def read(self) -> np.ndarray | None:
        frame = super().read()
        if frame is None and self.loop and self._cap is not None:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            frame = super().read()
        return frame


def make_source(spec: str) -> FrameSource:
    """``opencv:0`` | ``opencv:/dev/video2`` | ``picamera2`` | ``folder:/path`` | ``video:/path``."""
    kind, _, arg = spec.partition(":")
    if kind == "opencv":
        return OpenCVSource(arg or "0")
    if kind == "picamera2":
        return Picamera2Source()
    if kind == "folder":
        return FolderSource(arg)
    if kind == "video":
        return VideoFileSource(arg)
    raise ValueError(f"unknown camera source {spec!r}")
