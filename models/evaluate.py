"""Accuracy of a committed classifier over per-label image folders, with the kiosk's own preprocessing.

    python -m models.evaluate --data ../shared/data/fer2013/publictest [--json] [--model NAME] [--png OUT]

Each image goes through exactly what the kiosk does to a face crop: grayscale, ``crop_face`` to the
model's input side (the whole image is the face box, as FER-2013 images are face crops),
``to_model_input``, then the ONNX model under onnxruntime (one thread), loaded only after its sha256
matches models/manifest.json. Prints accuracy, macro recall (the mean of the per-class recalls),
per-class recall, the expected calibration error of the probabilities (15 equal-width bins of the
top-class confidence) and the confusion matrix. ``--model`` defaults to the manifest's
``default_classifier``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.vision.classify import CLASSES, ExpressionClassifier, crop_whole
from device.vision.manifest import ModelIntegrityError, default_classifier, verified_model

HERE = Path(__file__).resolve().parent
SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
BATCH = 256


@dataclass
class Result:
    model: str
    sha256: str
    n: int
    accuracy: float
    recall: dict[str, float]
    confusion: np.ndarray  # rows: true class, columns: predicted, CLASSES order
    unreadable: int
    mode: str = "crops"
    no_face: int = 0  # --in-frames: faces the detector missed (counted as wrong in accuracy)
    ece: float | None = None  # crops mode: expected calibration error of the probabilities

    @property
    def macro_recall(self) -> float:
        return float(np.mean(list(self.recall.values())))

    def as_json(self) -> dict:
        return {
            "model": self.model,
            "sha256": self.sha256,
            "n": self.n,
            "accuracy": round(self.accuracy, 6),
            "macro_recall": round(self.macro_recall, 6),
            "ece": None if self.ece is None else round(self.ece, 4),
            "per_class_recall": {c: round(r, 6) for c, r in self.recall.items()},
            "classes": list(CLASSES),
            "confusion": self.confusion.tolist(),
            "unreadable": self.unreadable,
            "mode": self.mode,
            "no_face": self.no_face,
        }


def list_dataset(data: Path) -> list[tuple[Path, int]]:
    if not data.is_dir():
        raise FileNotFoundError(f"data folder not found: {data}")
    items: list[tuple[Path, int]] = []
    for sub in sorted(p for p in data.iterdir() if p.is_dir()):
        if sub.name not in CLASSES:
            raise ValueError(f"folder {sub} is not one of the classes {', '.join(CLASSES)}")
        label = CLASSES.index(sub.name)
        items += [(p, label) for p in sorted(sub.iterdir()) if p.suffix.lower() in SUFFIXES]
    if not items:
        raise ValueError(f"no images under {data}/<class>/")
    return items


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence over ``bins`` equal-width bins (Guo et al., 2017)."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += float(m.mean()) * abs(float((pred[m] == labels[m]).mean()) - float(conf[m].mean()))
    return total


def evaluate(data: Path, model: str | None = None, models_dir: Path = HERE) -> Result:
    model = model or default_classifier(models_dir)
    path, entry = verified_model(models_dir, model)
    clf = ExpressionClassifier(path)
    items = list_dataset(data)
    confusion = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    unreadable = 0
    all_probs, all_labels = [], []
    for start in range(0, len(items), BATCH):
        crops, labels = [], []
        for p, label in items[start : start + BATCH]:
            gray = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            if gray is None:
                unreadable += 1
                continue
            crops.append(crop_whole(gray, clf.side))
            labels.append(label)
        if not crops:
            continue
        probs = clf.predict(np.stack(crops))
        np.add.at(confusion, (np.asarray(labels), probs.argmax(1)), 1)
        all_probs.append(probs)
        all_labels += labels
    n = int(confusion.sum())
    support = confusion.sum(1)
    recall = {c: float(confusion[i, i] / support[i]) if support[i] else 0.0 for i, c in enumerate(CLASSES)}
    accuracy = float(np.trace(confusion) / max(n, 1))
    ece = expected_calibration_error(np.concatenate(all_probs), np.asarray(all_labels)) if all_probs else None
    return Result(model, entry["sha256"], n, accuracy, recall, confusion, unreadable, ece=ece)


def render_in_frame(gray: np.ndarray, face_px: int) -> np.ndarray:
    """A dataset face crop upscaled to ``face_px`` and centred in a mid-grey 640x480 BGR frame."""
    frame = np.full((480, 640), 128, np.uint8)
    y0, x0 = (480 - face_px) // 2, (640 - face_px) // 2
    frame[y0 : y0 + face_px, x0 : x0 + face_px] = cv2.resize(gray, (face_px, face_px),
                                                             interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def evaluate_in_frames(data: Path, model: str | None = None, models_dir: Path = HERE,
                       face_px: int = 240) -> Result:
    """The whole kiosk path per image: frame -> BlazeFace -> crop/align -> classify. A face the
    detector misses counts as wrong (and in ``no_face``); its row gets no predicted column."""
    from device.vision.blazeface import FaceDetector
    from device.vision.manifest import DETECTOR
    from device.vision.pipeline import FramePipeline

    model = model or default_classifier(models_dir)
    path, entry = verified_model(models_dir, model)
    pipe = FramePipeline(FaceDetector(verified_model(models_dir, DETECTOR)[0]), ExpressionClassifier(path))
    confusion = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    unreadable = no_face = 0
    for p, label in list_dataset(data):
        gray = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            unreadable += 1
            continue
        r = pipe.process(render_in_frame(gray, face_px))
        if r.probs is None:
            no_face += 1
            continue
        confusion[label, int(r.probs.argmax())] += 1
    n = int(confusion.sum()) + no_face
    support = confusion.sum(1)
    recall = {c: float(confusion[i, i] / support[i]) if support[i] else 0.0 for i, c in enumerate(CLASSES)}
    accuracy = float(np.trace(confusion) / max(n, 1))
    return Result(model, entry["sha256"], n, accuracy, recall, confusion, unreadable,
                  mode=f"in-frames {face_px}px", no_face=no_face)


def render_confusion(result: Result, out: Path) -> Path:
    """A row-normalised confusion matrix as PNG (cv2 drawing; no plotting library)."""
    cell, left, top = 80, 110, 90
    k = len(CLASSES)
    img = np.full((top + k * cell + 20, left + k * cell + 20, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    title = f"{result.model}  accuracy {result.accuracy * 100:.2f}%  n={result.n}"
    cv2.putText(img, title, (10, 25), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    legend = "rows: true, columns: predicted (row %)"
    cv2.putText(img, legend, (10, 50), font, 0.45, (60, 60, 60), 1, cv2.LINE_AA)
    rows = result.confusion / np.maximum(result.confusion.sum(1, keepdims=True), 1)
    for i, c in enumerate(CLASSES):
        cv2.putText(img, c[:8], (8, top + i * cell + cell // 2 + 5), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, c[:8], (left + i * cell + 4, top - 8), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for j in range(k):
            v = float(rows[i, j])
            shade = int(255 - 200 * v)
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell - 2, y0 + cell - 2), (255, shade, shade), -1)
            colour = (255, 255, 255) if v > 0.5 else (0, 0, 0)
            cv2.putText(img, f"{v * 100:.0f}%", (x0 + 18, y0 + 35), font, 0.5, colour, 1, cv2.LINE_AA)
            cv2.putText(img, str(int(result.confusion[i, j])), (x0 + 18, y0 + 58), font, 0.4, colour, 1,
                        cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), img):
        raise OSError(f"cannot write {out}")
    return out


def record(result: Result, data: Path, models_dir: Path) -> None:
    path = models_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    ev = manifest["models"][result.model].setdefault("evaluation", {})
    ev["kiosk" if result.mode == "crops" else "kiosk_in_frames"] = {
        "data": f"fer2013/{data.name}",
        "n": result.n,
        "accuracy": round(result.accuracy, 6),
        "macro_recall": round(result.macro_recall, 6),
        **({"ece": round(result.ece, 4)} if result.ece is not None else {}),
        "per_class_recall": {c: round(r, 4) for c, r in result.recall.items()},
        "mode": result.mode,
        "no_face": result.no_face,
        "how": "python -m models.evaluate (kiosk preprocessing, onnxruntime, 1 thread)",
    }
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def format_text(result: Result) -> str:
    lines = [f"model {result.model} (sha256 {result.sha256[:12]}), {result.mode}, n = {result.n}",
             f"accuracy {result.accuracy * 100:.2f} %", f"macro recall {result.macro_recall * 100:.2f} %"]
    if result.ece is not None:
        lines.append(f"ECE (15 bins) {result.ece:.4f}")
    lines.append("per-class recall:")
    lines += [f"  {c:9s} {r * 100:6.2f} %  (n={int(result.confusion[i].sum())})"
              for i, (c, r) in enumerate(result.recall.items())]
    lines.append("confusion (rows true, columns predicted):")
    lines.append("           " + " ".join(f"{c[:7]:>7s}" for c in CLASSES))
    for i, c in enumerate(CLASSES):
        lines.append(f"  {c:9s}" + " ".join(f"{int(v):7d}" for v in result.confusion[i]))
    if result.unreadable:
        lines.append(f"unreadable images skipped: {result.unreadable}")
    if result.no_face:
        lines.append(f"no face detected (counted wrong): {result.no_face}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder of per-label image folders")
    ap.add_argument("--model", default=None, help="manifest name (default: its default_classifier)")
    ap.add_argument("--models-dir", type=Path, default=HERE)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--png", type=Path, default=None,
                    help="confusion-matrix PNG (default build/models/confusion_<model>.png)")
    ap.add_argument("--record", action="store_true", help="store the figure in models/manifest.json")
    ap.add_argument("--in-frames", type=int, nargs="?", const=240, default=None, metavar="PX",
                    help="render each face (PX px, default 240) into a 640x480 frame and run the whole "
                    "kiosk path incl. BlazeFace")
    args = ap.parse_args(argv)
    try:
        if args.in_frames:
            result = evaluate_in_frames(args.data, args.model, args.models_dir, args.in_frames)
        else:
            result = evaluate(args.data, args.model, args.models_dir)
    except (FileNotFoundError, ValueError, ModelIntegrityError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    png = args.png or HERE.parent / "build" / "models" / f"confusion_{result.model}.png"
    render_confusion(result, png)
    if args.record:
        record(result, args.data, args.models_dir)
    if args.json:
        print(json.dumps({**result.as_json(), "png": str(png)}))
    else:
        print(format_text(result))
        print(f"confusion matrix PNG: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
