"""The demo kiosks' camera: a looped clip of generated (drawn) faces, licence-clean, committed.

    python -m demo.camera_clip [--out demo/camera] [--frames 24] [--check]

Each frame is a 640x480 drawing made here with OpenCV primitives (no photograph, no dataset image):
a face with an expression set by a few parameters (mouth curve and opening, brow slant and height),
moved, scaled, tilted and relit from frame to frame, so the motion gate sees change and the
sequence looks like a citizen at a counter. BlazeFace finds these drawn faces (score ~0.8-0.9 at
this size); ``--check`` runs the kiosk pipeline over the written frames and prints what it sees.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent / "camera"
SEED = 20260305


@dataclass(frozen=True)
class Expression:
    name: str
    mouth_curve: float  # > 0 smile, < 0 frown (pixels of sag at the corners)
    mouth_open: float  # 0 closed .. 1 wide open
    brow_slant: float  # > 0 inner ends down (anger), < 0 inner ends up (sadness/fear)
    brow_lift: float  # pixels above the resting height (surprise)


EXPRESSIONS = (
    Expression("happy", 22, 0.35, 0, 0),
    Expression("neutral", 0, 0, 0, 0),
    Expression("happy", 16, 0.0, 0, 2),
    Expression("surprise", 0, 1.0, -2, 16),
    Expression("neutral", 3, 0, 0, 3),
    Expression("sad", -14, 0, -9, 4),
)


def draw_face(expr: Expression, rng: np.random.Generator) -> np.ndarray:
    bg = rng.uniform(150, 200, 3)
    f = np.empty((480, 640, 3), np.uint8)
    f[:] = bg.astype(np.uint8)
    skin = (int(rng.uniform(95, 135)), int(rng.uniform(140, 175)), int(rng.uniform(190, 225)))
    cx, cy = 320, 250
    cv2.ellipse(f, (cx, cy - 95), (118, 80), 0, 180, 360, (40, 38, 55), -1)  # hair
    cv2.ellipse(f, (cx, cy), (110, 145), 0, 0, 360, skin, -1)
    cv2.ellipse(f, (cx, cy - 120), (100, 40), 0, 180, 360, (40, 38, 55), -1)  # fringe
    for side in (-1, 1):
        ex, ey = cx + side * 45, cy - 30
        open_px = 7 + int(5 * expr.brow_lift / 16)  # narrow eyes: wide white sclera reads as fear
        cv2.ellipse(f, (ex, ey), (18, open_px), 0, 0, 360, (225, 230, 235), -1)
        cv2.circle(f, (ex, ey), 7, (50, 40, 30), -1)
        cv2.circle(f, (ex, ey), 3, (10, 10, 10), -1)
        by = ey - 28 - expr.brow_lift
        inner, outer = (ex - side * 22, by + expr.brow_slant), (ex + side * 26, by - expr.brow_slant * 0.3)
        cv2.line(f, tuple(map(int, inner)), tuple(map(int, outer)), (40, 38, 55), 6, cv2.LINE_AA)
    nose = (int(skin[0] * 0.75), int(skin[1] * 0.75), int(skin[2] * 0.8))
    cv2.line(f, (cx, cy - 15), (cx - 9, cy + 28), nose, 4, cv2.LINE_AA)
    cv2.line(f, (cx - 9, cy + 28), (cx + 8, cy + 30), nose, 4, cv2.LINE_AA)
    draw_mouth(f, (cx, cy + 70), expr)
    return f


def draw_mouth(f: np.ndarray, centre: tuple[int, int], expr: Expression) -> None:
    mx, my = centre
    xs = np.linspace(-42, 42, 25)
    upper = my + expr.mouth_curve * ((xs / 42) ** 2 - 1) * -1 - expr.mouth_curve
    opening = expr.mouth_open * 26 * np.cos(xs / 42 * math.pi / 2)
    lower = upper + 6 + opening
    poly = np.concatenate([np.stack([mx + xs, upper], 1), np.stack([mx + xs[::-1], lower[::-1]], 1)])
    cv2.fillPoly(f, [poly.astype(np.int32)], (60, 55, 150), cv2.LINE_AA)
    if expr.mouth_open > 0.2:
        inner = np.concatenate([np.stack([mx + xs[3:-3] * 0.8, upper[3:-3] + 5], 1),
                                np.stack([mx + xs[3:-3][::-1] * 0.8, lower[3:-3][::-1] - 3], 1)])
        cv2.fillPoly(f, [inner.astype(np.int32)], (30, 20, 60), cv2.LINE_AA)


def jitter(f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Move, scale, tilt and relight like a citizen shifting in front of a counter camera."""
    angle, scale = rng.uniform(-8, 8), rng.uniform(0.85, 1.1)
    m = cv2.getRotationMatrix2D((320, 250), angle, scale)
    m[:, 2] += rng.uniform(-50, 50), rng.uniform(-25, 25)
    out = cv2.warpAffine(f, m, (640, 480), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = cv2.GaussianBlur(out, (5, 5), rng.uniform(0.8, 1.6))
    noise = rng.normal(0, 3, out.shape)
    return np.clip(out * rng.uniform(0.8, 1.1) + rng.uniform(-15, 10) + noise, 0, 255).astype(np.uint8)


def make_clip(out: Path, frames: int) -> list[Path]:
    rng = np.random.default_rng(SEED)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("frame_*.jpg"):
        old.unlink()
    paths = []
    for i in range(frames):
        expr = EXPRESSIONS[(i // 2) % len(EXPRESSIONS)]  # two frames per expression
        path = out / f"frame_{i:03d}_{expr.name}.jpg"
        if not cv2.imwrite(str(path), jitter(draw_face(expr, rng), rng), [cv2.IMWRITE_JPEG_QUALITY, 75]):
            raise OSError(f"cannot write {path}")
        paths.append(path)
    return paths


def check(paths: list[Path]) -> int:
    """Run the kiosk pipeline (default classifier) on each frame; return how many had a face."""
    from device.vision.classify import CLASSES
    from device.vision.pipeline import FramePipeline

    pipe = FramePipeline.from_models_dir(Path(__file__).resolve().parents[1] / "models")
    found = 0
    for p in paths:
        r = pipe.process(cv2.imread(str(p)))
        found += r.face
        label = CLASSES[int(r.probs.argmax())] if r.probs is not None else "no face"
        print(f"{p.name}: {label}")
    print(f"faces found in {found}/{len(paths)} frames")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m demo.camera_clip", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--check", action="store_true", help="run the kiosk pipeline over the frames")
    args = ap.parse_args(argv)
    paths = make_clip(args.out, args.frames)
    print(f"{len(paths)} frames in {args.out}")
    if args.check:
        check(paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
