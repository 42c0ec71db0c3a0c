"""The kiosk's vision service: camera -> gate -> face -> expression -> k-anonymous windows.

Interface for the kiosk (device/ wiring)::

    cfg = VisionConfig.from_table(toml["camera"])          # ValueError names the bad key
    svc = VisionService(cfg, counter=1, emit=outbox_append, clock=clock)
    svc.start()                      # returns at once; models and camera load in the vision thread
    svc.visit_started(ticket_no)     # on ticket.called
    svc.visit_ended(ticket_no)       # on service.completed (visit_discarded on no-show)
    svc.set_enabled(False)           # the `camera` command / per-office switch
    svc.status()   # {"camera": "on"|"off"|"disabled"|"error"|"absent", "vision_restarts": int,
                   #  "model_versions": {name: sha256[:12]}, "last_error": str|None,
                   #  "frames": int (frames classified into visits), "visits_open": 0|1}
    svc.stop()

``emit(EventType.SENTIMENT_WINDOW, data)`` is called from the vision thread, only with a
contract.payloads.SentimentWindow data dict over >= k visits. Camera states: "on" = capturing for
a visit; "off" = ready, idle between visits (no frame is read); "disabled" = switched off by config
or command; "absent" = no camera at the source; "error" = a model failed its sha256 check or would
not load. No frame, crop, landmark or embedding is ever written anywhere; the in-memory visits of
an unfinished window are dropped at stop().
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import cv2
import numpy as np
from pydantic import ValidationError

from contract.payloads import EventType, SentimentWindow
from device.vision.aggregate import WindowAggregator
from device.vision.camera import CameraUnavailable, FrameSource, make_source
from device.vision.config import VisionConfig
from device.vision.manifest import ModelIntegrityError, load_manifest
from device.vision.pipeline import FramePipeline, FrameResult, MotionGate

log = logging.getLogger("motcua.vision")

CAMERA_RETRY_S = 10.0
MAX_READ_FAILURES = 20  # reads in a row that gave no frame: the camera is treated as gone and reopened
IDLE_POLL_S = 0.25
MAX_CONSECUTIVE_RESTARTS = 3  # then stop (state "error") rather than pile up stuck threads


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def wall(self) -> datetime: ...


Emit = Callable[[EventType, dict], None]


class _InferenceWorker:
    """A thread that runs the pipeline on one frame at a time; abandoned (never joined) if stuck."""

    def __init__(self, pipeline: FramePipeline, name: str) -> None:
        self.pipeline = pipeline
        self._req: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=1)
        self._res: queue.Queue[FrameResult | BaseException] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            frame = self._req.get()
            if frame is None:
                return
            try:
                self._res.put(self.pipeline.process(frame))
            except BaseException as e:  # noqa: BLE001 - reported to the caller
                self._res.put(e)

    def infer(self, frame: np.ndarray, timeout: float) -> FrameResult:
        """Raises TimeoutError past ``timeout``, or the pipeline's own exception."""
        self._req.put(frame)
        try:
            out = self._res.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"inference took longer than {timeout:g} s") from None
        if isinstance(out, BaseException):
            raise out
        return out

    def close(self) -> None:
        with contextlib.suppress(queue.Full):
            self._req.put_nowait(None)


class VisionService:
    def __init__(
        self,
        config: VisionConfig,
        counter: int,
        emit: Emit,
        clock: Clock,
        *,
        pipeline_factory: Callable[[], FramePipeline] | None = None,
        source_factory: Callable[[str], FrameSource] = make_source,
    ) -> None:
        self.config = config
        self.counter = counter
        self._emit = emit
        self._clock = clock
        self._pipeline_factory = pipeline_factory or (
            lambda: FramePipeline.from_models_dir(
                config.models_dir, min_face_px=config.min_face_px, min_score=config.min_score,
                classifier=config.classifier,
            )
        )
        self._source_factory = source_factory
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._enabled = config.enabled
        self._camera = "disabled" if not config.enabled else "off"
        self._restarts = 0
        self._last_error: str | None = None
        self._model_error = False
        self._stuck_in_a_row = 0
        self._gate = MotionGate(config.motion_threshold)
        self._agg = WindowAggregator(counter, config.k, config.window_s, clock.monotonic(), clock.wall())
        self.frames_processed = 0
        self.frames_skipped = 0
        self.frames_failed = 0
        self.frames_classified = 0  # frames whose expression went into a visit (a count, no image data)
        self._read_failures_in_a_row = 0
        self._model_versions = self._read_versions()

    # ------------------------------------------------------------------ kiosk-facing API

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name=f"vision-c{self.counter}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        t = self._thread
        if t is not None:
            t.join(timeout)
        with self._lock:
            self._thread = None
            self._agg.discard_visit()

    def visit_started(self, ticket_no: int) -> None:
        with self._lock:
            self._agg.visit_started(ticket_no)
            self._gate.reset()
        self._wake.set()

    def visit_ended(self, ticket_no: int) -> None:
        with self._lock:
            self._agg.visit_ended(ticket_no)
        self._wake.set()

    def visit_discarded(self, ticket_no: int) -> None:
        """A no-show or recall: whatever was seen is dropped, the visit does not count."""
        with self._lock:
            self._agg.discard_visit(ticket_no)

    def set_enabled(self, on: bool) -> None:
        with self._lock:
            self._enabled = bool(on)
            if not on:
                self._agg.discard_visit()  # the camera was switched off mid-visit: keep nothing of it
            self._model_error = False  # allow a retry of the model load after an operator action
            self._stuck_in_a_row = 0
        self._wake.set()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "camera": self._camera,
                "vision_restarts": self._restarts,
                "model_versions": dict(self._model_versions),
                "last_error": self._last_error,
                "frames": self.frames_classified,
                "visits_open": 1 if self._agg.in_visit else 0,
            }

    # ------------------------------------------------------------------ internals

    def _read_versions(self) -> dict[str, str]:
        try:
            models = load_manifest(self.config.models_dir)["models"]
        except ModelIntegrityError:
            return {}
        return {name: str(entry.get("sha256", "?"))[:12] for name, entry in models.items()}

    def _set_camera(self, state: str, error: str | None = None) -> None:
        with self._lock:
            if state != self._camera:
                log.info("camera %s -> %s%s", self._camera, state, f" ({error})" if error else "")
            self._camera = state
            if error:
                self._last_error = error[:200]

    def _run(self) -> None:
        source: FrameSource | None = None
        worker: _InferenceWorker | None = None
        next_camera_try = 0.0
        interval = 1.0 / self.config.fps
        cv2.setNumThreads(1)  # resize/colour conversions on one core: the kiosk's other work keeps the rest
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                self._maybe_close_window()
                with self._lock:
                    enabled, model_error, in_visit = self._enabled, self._model_error, self._agg.in_visit
                if not enabled:
                    source = self._close_source(source)
                    self._set_camera("disabled")
                    self._wake.wait(IDLE_POLL_S)
                    continue
                if model_error:
                    self._wake.wait(IDLE_POLL_S)
                    continue
                if worker is None:
                    worker = self._new_worker()
                    if worker is None:
                        continue
                if source is None:
                    if time.monotonic() < next_camera_try:
                        self._wake.wait(IDLE_POLL_S)
                        continue
                    source = self._open_source()
                    if source is None:
                        next_camera_try = time.monotonic() + CAMERA_RETRY_S
                        continue
                if not in_visit:
                    self._set_camera("off")
                    self._wake.wait(IDLE_POLL_S)
                    continue
                self._set_camera("on")
                t0 = time.monotonic()
                worker = self._one_frame(source, worker)
                if self._read_failures_in_a_row >= MAX_READ_FAILURES:  # unplugged, driver gone, ...
                    self._read_failures_in_a_row = 0
                    source = self._close_source(source)
                    self._set_camera("absent", f"camera gave no frame {MAX_READ_FAILURES} times in a row; "
                                     "reopening")
                    next_camera_try = time.monotonic() + CAMERA_RETRY_S
                    continue
                if worker is None:
                    continue
                self._stopping.wait(max(0.0, interval - (time.monotonic() - t0)))
        except Exception as e:  # never take the kiosk down
            log.exception("vision thread failed")
            self._set_camera("error", f"vision thread: {e}")
        finally:
            self._close_source(source)
            if worker is not None:
                worker.close()

    def _new_worker(self) -> _InferenceWorker | None:
        try:
            pipeline = self._pipeline_factory()
        except (ModelIntegrityError, OSError, RuntimeError, ValueError) as e:
            with self._lock:
                self._model_error = True
            self._set_camera("error", str(e))
            log.error("vision models not loaded: %s", e)
            return None
        return _InferenceWorker(pipeline, name=f"vision-infer-c{self.counter}")

    def _open_source(self) -> FrameSource | None:
        try:
            source = self._source_factory(self.config.source)
            source.open()
            return source
        except CameraUnavailable as e:
            self._set_camera("absent", str(e))
        except Exception as e:
            self._set_camera("error", f"camera: {e}")
        return None

    @staticmethod
    def _close_source(source: FrameSource | None) -> None:
        if source is not None:
            try:
                source.close()
            except Exception:
                log.exception("camera close failed")
        return None

    def _one_frame(self, source: FrameSource, worker: _InferenceWorker) -> _InferenceWorker | None:
        frame = source.read()
        if frame is None:
            with self._lock:
                self.frames_failed += 1
                self._read_failures_in_a_row += 1
            return worker
        self._read_failures_in_a_row = 0
        with self._lock:
            changed = self._gate.changed(frame)
        if not changed:
            with self._lock:
                self.frames_skipped += 1
            return worker
        try:
            result = worker.infer(frame, timeout=self.config.watchdog_s)
        except TimeoutError as e:
            worker.close()  # the stuck thread is abandoned; its late result goes nowhere
            with self._lock:
                self._gate.reset()  # that frame gave nothing: let the next one through
                self._restarts += 1
                self._stuck_in_a_row += 1
                self._last_error = f"watchdog: {e}; inference restarted"
                give_up = self._stuck_in_a_row >= MAX_CONSECUTIVE_RESTARTS
                if give_up:
                    self._model_error = True
            log.warning("vision watchdog: %s (restart %d)", e, self._restarts)
            if give_up:
                self._set_camera("error", f"inference stuck {self._stuck_in_a_row} times in a row; "
                                 "vision stopped (camera command 'on' retries)")
                return None
            return self._new_worker()
        except Exception as e:
            with self._lock:
                self._gate.reset()
                self.frames_failed += 1
                self._last_error = f"frame rejected: {e}"[:200]
            return worker
        finally:
            del frame
        with self._lock:
            self._stuck_in_a_row = 0
            self.frames_processed += 1
            if result.probs is not None and self._agg.in_visit:
                self._agg.add_frame(result.probs)
                self.frames_classified += 1
        return worker

    def _maybe_close_window(self) -> None:
        now = self._clock.monotonic()
        with self._lock:
            if not self._agg.due(now):
                return
            data = self._agg.close_window(now, self._clock.wall())
        if data is None:
            return
        try:
            SentimentWindow.model_validate(data)  # never hand the outbox something off-contract
        except ValidationError as e:  # its text would quote the aggregate: keep only the reasons
            reasons = "; ".join(err["msg"] for err in e.errors(include_input=False))
            log.error("sentiment.window not emitted: %s", reasons)
            self._set_camera(self._camera, f"sentiment.window not emitted: {reasons}")
            return
        try:
            self._emit(EventType.SENTIMENT_WINDOW, data)
        except Exception as e:
            log.error("sentiment.window not emitted: %s", type(e).__name__)
            self._set_camera(self._camera, f"sentiment.window not emitted: {type(e).__name__}: {e}")
