"""Accuracy on publictest faces degraded the way a counter camera degrades them, for each classifier.

    python -m models.robustness --data ../shared/data/fer2013/publictest [--models a,b] [--every 1]
                                [--frames-every 4] [--json] [--record]

Crop conditions (the face crop itself is degraded, then the kiosk's crop_whole + classifier):
``clean``; ``low_light`` (exposure x0.35 with gamma 1.5, then sensor noise sigma 6 grey levels);
``blur`` (Gaussian sigma 1.5 px at 48 px, i.e. defocus or motion); ``jpeg_q20`` (the face upscaled to
96 px, JPEG quality 20, back); ``head_turn_25`` (a perspective squeeze of one side by 25 %, as
a yaw of roughly 25-30 degrees would; alternate sides). In-frame conditions (the whole kiosk path:
BlazeFace -> crop/align -> classifier): the face rendered at 48, 64, 96 and 240 px into a 640x480
mid-grey frame; a face the detector misses counts as wrong. Nothing is written but the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from device.vision.blazeface import FaceDetector
from device.vision.classify import CLASSES, ExpressionClassifier, crop_whole
from device.vision.manifest import DETECTOR, load_manifest, verified_model
from device.vision.pipeline import FramePipeline
from models.evaluate import list_dataset, render_in_frame

HERE = Path(__file__).resolve().parent
FRAME_SIZES = (48, 64, 96, 240)


def low_light(g: np.ndarray, i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    dark = 255 * (0.35 * (g / 255.0) ** 1.5)
    return np.clip(dark + rng.normal(0, 6, g.shape), 0, 255).astype(np.uint8)


def blur(g: np.ndarray, i: int) -> np.ndarray:
    return cv2.GaussianBlur(g, (0, 0), 1.5)


def jpeg_q20(g: np.ndarray, i: int) -> np.ndarray:
    big = cv2.resize(g, (96, 96), interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 20])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.resize(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE), g.shape[::-1], interpolation=cv2.INTER_AREA)


def head_turn(g: np.ndarray, i: int, squeeze: float = 0.25) -> np.ndarray:
    h, w = g.shape
    d = squeeze * h / 2
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    if i % 2:
        dst = np.float32([[0, 0], [w, d], [w, h - d], [0, h]])
    else:
        dst = np.float32([[0, d], [w, 0], [w, h], [0, h - d]])
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(g, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


CONDITIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "clean": lambda g, i: g, "low_light": low_light, "blur": blur, "jpeg_q20": jpeg_q20,
    "head_turn_25": head_turn,
}


def load_faces(data: Path, every: int) -> tuple[list[np.ndarray], np.ndarray]:
    faces, labels = [], []
    for n, (p, label) in enumerate(list_dataset(data)):
        if n % every:
            continue
        g = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if g is None:
            raise ValueError(f"unreadable image {p}")
        faces.append(g)
        labels.append(label)
    return faces, np.asarray(labels)


def scores(pred: np.ndarray, labels: np.ndarray) -> dict:
    rec = [float((pred[labels == c] == c).mean()) for c in range(len(CLASSES)) if (labels == c).any()]
    return {"accuracy": round(float((pred == labels).mean()), 4),
            "macro_recall": round(float(np.mean(rec)), 4)}


def crop_conditions(clf: ExpressionClassifier, faces: list[np.ndarray], labels: np.ndarray) -> dict:
    out = {}
    for name, fn in CONDITIONS.items():
        crops = np.stack([crop_whole(fn(g, i), clf.side) for i, g in enumerate(faces)])
        pred = np.concatenate([clf.predict(crops[s : s + 256]).argmax(1) for s in range(0, len(crops), 256)])
        out[name] = scores(pred, labels)
    return out


def frame_conditions(pipe: FramePipeline, faces: list[np.ndarray], labels: np.ndarray, every: int) -> dict:
    out = {}
    idx = np.arange(0, len(faces), every)
    for px in FRAME_SIZES:
        pred = np.full(len(idx), -1)
        for j, i in enumerate(idx):
            r = pipe.process(render_in_frame(faces[i], px))
            if r.probs is not None:
                pred[j] = int(r.probs.argmax())
        detected = round(float((pred >= 0).mean()), 4)
        out[f"in_frame_{px}px"] = {**scores(pred, labels[idx]), "detected": detected, "n": len(idx)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.robustness", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--models", default=None,
                    help="comma-separated manifest names (default: every classifier)")
    ap.add_argument("--models-dir", type=Path, default=HERE)
    ap.add_argument("--every", type=int, default=1, help="use every N-th image (crop conditions)")
    ap.add_argument("--frames-every", type=int, default=4, help="of those, every N-th for in-frame runs")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--record", action="store_true", help="store the figures in models/manifest.json")
    args = ap.parse_args(argv)
    manifest = load_manifest(args.models_dir)
    names = args.models.split(",") if args.models else [
        n for n, e in manifest["models"].items() if n != DETECTOR and e.get("classes") == list(CLASSES)]
    try:
        faces, labels = load_faces(args.data, args.every)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    detector = FaceDetector(verified_model(args.models_dir, DETECTOR)[0])
    results = {}
    for name in names:
        clf = ExpressionClassifier(verified_model(args.models_dir, name)[0])
        res = crop_conditions(clf, faces, labels)
        res.update(frame_conditions(FramePipeline(detector, clf), faces, labels, args.frames_every))
        results[name] = {"n_crops": len(faces), **res}
    if args.json:
        print(json.dumps(results))
    else:
        print(format_table(results))
    if args.record:
        for name, res in results.items():
            manifest["models"][name].setdefault("evaluation", {})["robustness"] = {
                **res, "data": f"fer2013/{args.data.name}", "every": args.every,
                "frames_every": args.frames_every,
                "how": "python -m models.robustness (kiosk preprocessing, onnxruntime, 1 thread)"}
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        (args.models_dir / "manifest.json").write_text(text, encoding="utf-8")
    return 0


def format_table(results: dict) -> str:
    names = list(results)
    conds = [c for c in next(iter(results.values())) if c != "n_crops"]
    lines = [f"{'condition':18s}" + "".join(f"{n:>34s}" for n in names)]
    for c in conds:
        cells = []
        for n in names:
            r = results[n][c]
            det = f" det {r['detected'] * 100:5.1f}%" if "detected" in r else ""
            cells.append(f"acc {r['accuracy'] * 100:5.1f}% mR {r['macro_recall'] * 100:5.1f}%{det}")
        lines.append(f"{c:18s}" + "".join(f"{x:>34s}" for x in cells))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
