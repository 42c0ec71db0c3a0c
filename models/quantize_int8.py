"""Measure int8 variants of the committed models (onnxruntime.quantization); keep one only if faster.

    build/peer-venv/bin/python models/quantize_int8.py --train ../shared/data/fer2013/train \
        --test ../shared/data/fer2013/publictest [--record]

Variants: dynamic (weights int8, activations quantised at run time) and static QDQ (weights and
activations int8, calibrated on FER-2013 train images for the classifier and on 128x128 letterboxed
FER faces for the detector). Each is timed on one thread against the float model, and the
classifier's accuracy is measured on publictest with the kiosk's preprocessing. The quantised files
are written to a temporary folder and deleted; ``--record`` stores the figures in the manifest.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def session(path: Path) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def latency_ms(path: Path, x: np.ndarray, n: int = 300) -> float:
    s = session(path)
    name = s.get_inputs()[0].name
    for _ in range(20):
        s.run(None, {name: x})
    best = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            s.run(None, {name: x})
        best.append((time.perf_counter() - t) / n * 1000)
    return min(best)


def faces64(folder: Path, per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for label, c in enumerate(CLASSES):
        files = sorted((folder / c).iterdir())
        for p in files[:per_class] if per_class else files:
            g = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            xs.append(cv2.resize(g, (64, 64), interpolation=cv2.INTER_LINEAR))
            ys.append(label)
    x = np.stack(xs).astype(np.float32) / 255.0
    return ((x - 0.5) * 2.0)[..., None], np.array(ys)


def detector_inputs(folder: Path, n_per_class: int) -> np.ndarray:
    out = []
    for c in CLASSES:
        for p in sorted((folder / c).iterdir())[:n_per_class]:
            g = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            canvas = np.full((128, 128), 128, np.uint8)
            canvas[24:104, 24:104] = cv2.resize(g, (80, 80))
            rgb = cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB).astype(np.float32) * (2 / 255) - 1
            out.append(rgb[None])
    return np.concatenate(out)


class Reader(CalibrationDataReader):
    def __init__(self, name: str, data: np.ndarray, batch: int = 1) -> None:
        self.items = iter([{name: data[i : i + batch]} for i in range(0, len(data), batch)])

    def get_next(self):
        return next(self.items, None)


def accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    s = session(path)
    pred = np.concatenate([s.run(None, {"input": x[i : i + 256]})[0] for i in range(0, len(x), 256)])
    return float((pred.argmax(1) == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="motcua-int8-"))
    cls_f = HERE / "expression_minixception.onnx"
    det_f = HERE / "face_blazeface_short.onnx"
    report: dict = {}
    x_test, y_test = faces64(args.test, None)
    x_cal, _ = faces64(args.train, 60)
    det_cal = detector_inputs(args.train, 15)

    for name, f, x1, cal, inp in (
        ("expression_minixception", cls_f, x_test[:1], x_cal, "input"),
        ("face_blazeface_short", det_f, det_cal[:1], det_cal, session(det_f).get_inputs()[0].name),
    ):
        pre = tmp / f"{name}.pre.onnx"
        quant_pre_process(str(f), str(pre), skip_symbolic_shape=True)
        dyn, stat = tmp / f"{name}.dyn.onnx", tmp / f"{name}.qdq.onnx"
        quantize_dynamic(str(pre), str(dyn), weight_type=QuantType.QInt8)
        quantize_static(str(pre), str(stat), Reader(inp, cal), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
        row = {"float32_ms": latency_ms(f, x1), "dynamic_int8_ms": latency_ms(dyn, x1),
               "static_qdq_int8_ms": latency_ms(stat, x1),
               "sizes_kb": {k: round(p.stat().st_size / 1024) for k, p in
                            (("float32", f), ("dynamic", dyn), ("static", stat))}}
        if name == "expression_minixception":
            row["publictest_accuracy"] = {"float32": accuracy(f, x_test, y_test),
                                          "dynamic_int8": accuracy(dyn, x_test, y_test),
                                          "static_qdq_int8": accuracy(stat, x_test, y_test)}
        report[name] = row
        print(name, json.dumps(row))
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    faster = {n: min(r["dynamic_int8_ms"], r["static_qdq_int8_ms"]) < r["float32_ms"]
              for n, r in report.items()}
    print("an int8 variant faster than float32 here:", faster)
    acc = report["expression_minixception"]["publictest_accuracy"]
    keep = {
        "face_blazeface_short": False if not faster["face_blazeface_short"] else "review",
        # kept only if faster AND within 0.5 pp of the float model's accuracy
        "expression_minixception": any(
            report["expression_minixception"][f"{v}_ms"] < report["expression_minixception"]["float32_ms"]
            and abs(acc[v] - acc["float32"]) <= 0.005
            for v in ("dynamic_int8", "static_qdq_int8")
        ),
    }
    print("keep:", keep)
    if args.record:
        path = HERE / "manifest.json"
        manifest = json.loads(path.read_text())
        for n, r in report.items():
            manifest["models"][n]["int8"] = {
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()},
                "kept": keep[n],
                "how": "models/quantize_int8.py (onnxruntime.quantization, 1 thread, best of 3 x 300 runs)",
            }
        path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
