"""The fer package's detect_emotions on frames read from stdin (np.save'd array); prints JSON timings.

Run ONLY with the build/bench interpreter (fer, tensorflow, OpenCV 4.x):
    .buildenv/bin/python bench/vision/fer_side.py < frames.npy
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    import cv2
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    cv2.setNumThreads(1)
    logging.getLogger("fer").setLevel(logging.ERROR)
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
    print(json.dumps({"fer_version": __version__, "opencv": cv2.__version__, "n": len(frames),
                      "faces_found": faces, "ms_mean": 1000 * float(np.mean(times)),
                      "ms_median": 1000 * float(np.median(times)), "haar_ms": 1000 * haar,
                      "ms_best20": 1000 * min(float(np.mean(times[i : i + 20]))
                                              for i in range(0, max(1, len(times) - 19), 20))}))


if __name__ == "__main__":
    main()
