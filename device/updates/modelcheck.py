"""``python -m device.updates.modelcheck MODELS_DIR``: can the vision pipeline use these models?

Verifies every model against ``MODELS_DIR/manifest.json`` (sha256), loads them with onnxruntime the
way the kiosk does and runs one inference each on synthetic input (no camera, nothing stored).
Exit 0 and one summary line when usable; exit 1 and the reason on stderr otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path


def check_models(models_dir: Path) -> str:
    """Summary of the loaded models; raises on a missing, altered or unloadable model."""
    import numpy as np

    from device.vision.manifest import load_manifest
    from device.vision.pipeline import FramePipeline

    pipe = FramePipeline.from_models_dir(models_dir)  # sha256 of each file against the manifest
    pipe.process(np.zeros((480, 640, 3), np.uint8))  # detector runs (no face in a blank frame)
    side = pipe.classifier.side
    probs = pipe.classifier.predict(np.full((side, side), 128, np.uint8))
    if probs.shape[-1] != 7 or not np.isfinite(probs).all():
        raise ValueError(f"classifier output has shape {probs.shape} or non-finite values")
    names = sorted(load_manifest(models_dir)["models"])
    return f"models OK: {models_dir} ({', '.join(names)})"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m device.updates.modelcheck MODELS_DIR", file=sys.stderr)
        return 2
    try:
        print(check_models(Path(args[0])))
    except Exception as exc:  # any failure is a verdict, printed for the update result
        print(f"model check failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
