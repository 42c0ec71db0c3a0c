"""Vision models on this machine: raw outputs for given input tensors, and the pipeline on a frame.

    python -m hil.vpi.vision_probe INPUTS.npz [FRAME.jpg]   # prints one JSON line

The virtual-Pi scenario runs it on the host (x86-64) and in the guest (arm64, with the kiosk's own
venv and the models shipped in its wheel), feeding both the same input tensors, and compares: every
raw output of both models within 1e-4, and the same face and expression label from the frame.
"""

from __future__ import annotations

import base64
import io
import json
import platform
import sys
from pathlib import Path

import cv2
import numpy as np

import models
from device.vision.blazeface import FaceDetector
from device.vision.classify import (
    CLASSES,
    ExpressionClassifier,
    crop_face,
    face_geometry,
    to_gray,
    to_model_input,
)

MODELS = Path(models.__file__).resolve().parent
TOLERANCE = 1e-4


def _detectors() -> tuple[FaceDetector, ExpressionClassifier]:
    return (FaceDetector(MODELS / "face_blazeface_short.onnx"),
            ExpressionClassifier(MODELS / "expression_minixception.onnx"))


def _face_crop(face: FaceDetector, frame: np.ndarray) -> tuple[np.ndarray, tuple[float, ...]]:
    f = face.largest(frame)
    if f is None:
        raise SystemExit("no face found in the frame")
    centre, side, angle = face_geometry(f.box, f.keypoints)
    return crop_face(to_gray(frame), centre, side, angle), f.box


def make_inputs(frame_path: Path) -> bytes:
    """The two models' input tensors for this frame, as computed by the kiosk's preprocessing here."""
    face, _ = _detectors()
    frame = cv2.imread(str(frame_path))
    tensor = face._letterbox(frame)[0]  # the detector's own preprocessing (same module)
    crop, _ = _face_crop(face, frame)
    buf = io.BytesIO()
    np.savez(buf, face=tensor, expr=to_model_input(crop[None]))
    return buf.getvalue()


def _b64(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}


def _unb64(d: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["data"]), dtype=np.float32).reshape(d["shape"])


def probe(inputs: Path, frame_path: Path | None = None) -> dict:
    import onnxruntime as ort

    face, expr = _detectors()
    data = np.load(inputs)
    boxes, scores = face.session.run(None, {face.input_name: data["face"]})
    probs = expr.session.run(None, {expr.input_name: data["expr"]})[0]
    out = {"machine": platform.machine(), "onnxruntime": ort.__version__,
           "outputs": {"face.boxes": _b64(boxes), "face.scores": _b64(scores), "expression": _b64(probs)}}
    if frame_path is not None:
        frame = cv2.imread(str(frame_path))
        crop, box = _face_crop(face, frame)
        p = expr.predict(crop)[0]
        out["pipeline"] = {"box": [round(v, 1) for v in box], "label": CLASSES[int(np.argmax(p))]}
    return out


def compare(host: dict, guest: dict) -> tuple[bool, list[str]]:
    """(all within TOLERANCE and same pipeline label, one line per output)."""
    ok, lines = True, []
    for name, h in host["outputs"].items():
        a, b = _unb64(h), _unb64(guest["outputs"][name])
        diff = float(np.max(np.abs(a.astype(np.float64) - b))) if a.shape == b.shape else float("inf")
        ok &= diff <= TOLERANCE
        lines.append(f"{name} {tuple(a.shape)}: max |{host['machine']} - {guest['machine']}| = {diff:.2e}")
    hp, gp = host.get("pipeline"), guest.get("pipeline")
    if hp and gp:
        ok &= hp["label"] == gp["label"]
        lines.append(f"pipeline: {host['machine']} {hp['label']} {hp['box']} / "
                     f"{guest['machine']} {gp['label']} {gp['box']}")
    return ok, lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    frame = Path(args[1]) if len(args) > 1 else None
    print(json.dumps(probe(Path(args[0]), frame)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
