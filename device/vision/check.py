"""Camera check for technicians: models verified, camera opens, frames arrive, a face is seen.

    python -m device.vision.check [--source opencv:0] [--frames 20] [--models-dir DIR]

Prints one line per step and a verdict (exit 0 = OK). Frames are processed in memory and dropped;
only counts and timings are printed. ``run_check`` is the same check for the kiosk's selftest.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from device.vision.camera import CameraUnavailable, make_source
from device.vision.config import DEFAULT_MODELS_DIR
from device.vision.manifest import ModelIntegrityError
from device.vision.pipeline import FramePipeline


@dataclass
class CheckResult:
    ok: bool
    detail: str
    steps: list[tuple[str, bool, str]] = field(default_factory=list)


def run_check(source: str, frames: int = 20, models_dir: Path = DEFAULT_MODELS_DIR,
              progress: Callable[[str, bool, str], None] | None = None) -> CheckResult:
    steps: list[tuple[str, bool, str]] = []

    def step(name: str, ok: bool, detail: str) -> None:
        steps.append((name, ok, detail))
        if progress:
            progress(name, ok, detail)

    try:
        pipe = FramePipeline.from_models_dir(models_dir)
    except (ModelIntegrityError, OSError, RuntimeError) as e:
        step("models", False, str(e))
        return CheckResult(False, f"models: {e}", steps)
    step("models", True, "sha256 verified, loaded")
    try:
        src = make_source(source)
        src.open()
    except (CameraUnavailable, ValueError) as e:
        step("camera", False, str(e))
        return CheckResult(False, f"camera: {e}", steps)
    got = faces = 0
    spent = 0.0
    try:
        for _ in range(frames):
            frame = src.read()
            if frame is None:
                continue
            got += 1
            t = time.perf_counter()
            faces += pipe.process(frame).face
            spent += time.perf_counter() - t
            del frame
    finally:
        src.close()
    step("camera", got > 0, f"{got}/{frames} frames read from {source}")
    if got == 0:
        return CheckResult(False, f"camera: no frames from {source}", steps)
    ms = 1000 * spent / got
    step("face", faces > 0, f"a face in {faces}/{got} frames, {ms:.1f} ms/frame")
    if faces == 0:
        return CheckResult(False, "no face seen: stand in front of the camera, check aim and light", steps)
    return CheckResult(True, f"camera OK: face in {faces}/{got} frames, {ms:.1f} ms/frame", steps)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m device.vision.check", description=__doc__.split("\n")[0])
    ap.add_argument("--source", default="opencv:0", help="opencv:N | picamera2 | folder:PATH | video:PATH")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    args = ap.parse_args(argv)

    def show(name: str, ok: bool, detail: str) -> None:
        print(f"[{'OK ' if ok else 'LỖI'}] {name:7s} {detail}", flush=True)

    res = run_check(args.source, args.frames, args.models_dir, progress=show)
    verdict = "ĐẠT / PASS" if res.ok else "KHÔNG ĐẠT / FAIL"
    print(f"{verdict}: {res.detail}")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
