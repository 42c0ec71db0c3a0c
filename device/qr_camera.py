"""Appointment QR codes shown to the kiosk's camera, decoded in RAM with OpenCV's QRCodeDetector.

Same privacy rules as the expression pipeline (docs/privacy): a frame lives only in this loop's
local variable until the next one replaces it; nothing is written, sent or logged but the outcome
of a redeem (the code the citizen presented, which is not personal data). Only text starting with
``MOTCUA-HEN:`` is acted on; any other QR (a bank transfer, a web address) is ignored and counted.

A code seen again within ``REPEAT_S`` is not redeemed again (a citizen holds the phone up for
seconds, so the same code is in many frames); after that, a second presentation is answered
"already redeemed" by :class:`device.appointments.AppointmentDesk`. The loop reads about
``fps`` frames a second; a camera that fails is reopened after ``RETRY_S``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import cv2

from contract.worker import Worker
from device.appointments import QR_PREFIX
from device.vision.camera import CameraUnavailable, make_source

log = logging.getLogger("motcua.kiosk.qr")
REPEAT_S = 20.0
RETRY_S = 5.0


def decode_frame(detector: Any, frame: Any) -> str | None:
    """The appointment text in ``frame`` (BGR array), or None."""
    text, _points, _ = detector.detectAndDecode(frame)
    return text or None


class QrCamera(Worker):
    def __init__(self, spec: str, redeem: Callable[[str, str], Any], fps: float = 5.0,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.spec, self.redeem, self.period, self.mono = spec, redeem, 1.0 / fps, mono
        self.detector = cv2.QRCodeDetector()
        self.frames = self.redeemed = self.ignored = 0
        self.last_error: str | None = None
        self._recent: dict[str, float] = {}
        Worker.__init__(self, "qr-camera", self._run, join_timeout_s=10)

    def seen(self, text: str) -> bool:
        """Act on one decoded text; True if it was redeemed (or tried)."""
        if not text.startswith(QR_PREFIX):
            self.ignored += 1
            return False
        now = self.mono()
        if now - self._recent.get(text, float("-inf")) < REPEAT_S:
            return False
        self._recent = {t: s for t, s in self._recent.items() if now - s < REPEAT_S}
        self._recent[text] = now
        self.redeemed += 1
        self.redeem(text, "qr")
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            source = make_source(self.spec)
            try:
                source.open()
                self.last_error = None
                self._loop(source)
            except (CameraUnavailable, cv2.error, OSError) as exc:
                self.last_error = f"qr camera: {exc}"[:200]
                log.warning("%s", self.last_error)
            finally:
                source.close()
            self._stop.wait(RETRY_S)

    def _loop(self, source: Any) -> None:
        while not self._stop.is_set():
            started = self.mono()
            frame = source.read()
            if frame is None:
                raise CameraUnavailable(f"no frame from {self.spec}")
            self.frames += 1
            text = decode_frame(self.detector, frame)
            del frame  # nothing of the image outlives this iteration
            if text:
                self.seen(text)
            self._stop.wait(max(0.0, self.period - (self.mono() - started)))

    def status(self) -> dict[str, Any]:
        return {"frames": self.frames, "redeemed": self.redeemed, "ignored": self.ignored,
                "last_error": self.last_error}
