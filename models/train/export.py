"""Export the best checkpoint to ONNX with its temperature, check it, and record it in the manifest.

    python -m models.train.export [--data ../shared/data/fer2013] [--out build/models/train]

1. Loads ``<out>/best.pt`` (EMA weights of the epoch with the best publictest accuracy).
2. Fits one temperature T on publictest logits (minimum NLL; the issue's calibration split) and
   reports the expected calibration error (15 equal-width confidence bins) before and after.
3. Exports ``softmax(logits / T)`` (the flip-averaged logits when ``--flip``) with input ``input``
   [N, 48, 48, 1] NHWC in [-1, 1] and output ``probabilities`` [N, 7], as ``models/<name>.onnx``;
   checks onnxruntime against PyTorch on 512 publictest faces and on 16 seeded synthetic inputs whose
   PyTorch outputs go into the manifest (``tests/models`` re-checks them without PyTorch).
4. Writes the manifest entry: training command, data hashes, seed, wall time, figures, latency.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from device.vision.classify import CLASSES
from device.vision.manifest import sha256_file
from models.evaluate import expected_calibration_error as ece
from models.train.data import load_split, to_unit_range
from models.train.net import INPUT_SIDE, STAGES, ExpressionNet, count_parameters
from models.train.train import DEFAULT_DATA, DEFAULT_OUT

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
NAME = "expression_dsnet48"
CHECK_SEED = 12


class Deployed(nn.Module):
    """NHWC input -> calibrated probabilities, optionally averaged with the mirrored face."""

    def __init__(self, net: nn.Module, temperature: float, flip: bool) -> None:
        super().__init__()
        self.net, self.flip = net, flip
        self.register_buffer("inv_t", torch.tensor(1.0 / temperature))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)
        logits = self.net(x)
        if self.flip:
            logits = (logits + self.net(torch.flip(x, dims=[3]))) * 0.5
        return torch.softmax(logits * self.inv_t, dim=1)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """argmin_T NLL(softmax(logits / T)) on a 0.01 grid over [0.5, 4] (deterministic, convex in 1/T)."""
    best_t, best_nll = 1.0, np.inf
    for t in np.arange(0.5, 4.0001, 0.01):
        z = logits / t
        z = z - z.max(1, keepdims=True)
        nll = float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(labels)), labels]))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return round(best_t, 2)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def check_inputs() -> np.ndarray:
    """16 seeded synthetic faces-sized inputs (NHWC, [-1, 1]), reproducible without any data."""
    rng = np.random.default_rng(CHECK_SEED)
    raw = rng.integers(0, 256, (16, INPUT_SIDE, INPUT_SIDE), dtype=np.uint8)
    return to_unit_range(raw)[..., None]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.train.export", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--flip", action="store_true", help="bake test-time flip into the graph (2x cost)")
    ap.add_argument("--from-last", action="store_true",
                    help="export the EMA weights of last.pt (a run still in progress) instead of best.pt")
    ap.add_argument("--models-dir", type=Path, default=MODELS)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    best_path, hist_path = args.out / "best.pt", args.out / "history.json"
    if not best_path.exists() or not hist_path.exists():
        print(f"error: {best_path} or {hist_path} missing: run python -m models.train first", file=sys.stderr)
        return 2
    ck = torch.load(best_path, map_location="cpu", weights_only=False)
    history = json.loads(hist_path.read_text(encoding="utf-8"))
    if args.from_last:
        last = torch.load(args.out / "last.pt", map_location="cpu", weights_only=False)
        ema = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
        ck = {**ck, "ema": ema, "row": last["state"]["history"][-1]}
    net = ExpressionNet(dropout=history["recipe"]["dropout"])
    net.load_state_dict(ck["ema"])
    net.eval()
    val = load_split(args.data / "publictest", INPUT_SIDE)
    if val.sha256 != ck["data"]["publictest"]:
        print("error: publictest differs from the one the checkpoint was selected on", file=sys.stderr)
        return 2
    x = to_unit_range(val.images)[..., None]
    with torch.no_grad():
        raw = Deployed(net, 1.0, args.flip)
        logits = np.log(np.concatenate([raw(torch.from_numpy(x[i : i + 512])).numpy()
                                        for i in range(0, len(x), 512)]))
    t = fit_temperature(logits, val.labels)
    before, after = softmax(logits), softmax(logits / t)
    model = Deployed(net, t, args.flip).eval()
    path = args.models_dir / f"{NAME}.onnx"
    export_onnx(model, path)
    check = compare(model, path, x[:512])
    entry = manifest_entry(path, net, history, ck, val, before, after, t, args.flip, check)
    write_manifest(args.models_dir, entry)
    ev = entry["evaluation"]["training_check"]
    print(f"{path.name}: {entry['parameters']:,} parameters, {path.stat().st_size / 1024:.0f} KB; publictest "
          f"accuracy {ev['accuracy'] * 100:.2f} %, macro recall {ev['macro_recall'] * 100:.2f} %; T = {t}; "
          f"ECE {ev['ece_before']:.4f} -> {ev['ece_after']:.4f}; ONNX vs PyTorch max |diff| "
          f"{check['max_abs_diff']:.2e}, argmax agreement {check['argmax_agreement']:.4f}")
    return 0


def export_onnx(model: nn.Module, path: Path) -> None:
    dummy = torch.zeros(1, INPUT_SIDE, INPUT_SIDE, 1)
    torch.onnx.export(model, (dummy,), str(path), input_names=["input"], output_names=["probabilities"],
                      dynamic_axes={"input": {0: "N"}, "probabilities": {0: "N"}}, opset_version=17,
                      dynamo=False)


def compare(model: nn.Module, path: Path, faces: np.ndarray) -> dict:
    from device.vision.runtime import make_session

    sess = make_session(path)
    synth = check_inputs()
    with torch.no_grad():
        ref = model(torch.from_numpy(faces)).numpy()
        ref_synth = model(torch.from_numpy(synth)).numpy()
    got = sess.run(None, {"input": faces})[0]
    got_synth = sess.run(None, {"input": synth})[0]
    return {"max_abs_diff": float(max(np.abs(ref - got).max(), np.abs(ref_synth - got_synth).max())),
            "argmax_agreement": float((ref.argmax(1) == got.argmax(1)).mean()), "faces": len(faces),
            "synthetic_seed": CHECK_SEED, "synthetic_torch_probabilities":
            [[round(float(v), 7) for v in row] for row in ref_synth]}


def time_per_face(path: Path, runs: int = 300) -> float:
    from device.vision.runtime import make_session

    sess = make_session(path)
    x = check_inputs()[:1]
    for _ in range(20):
        sess.run(None, {"input": x})
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(runs):
            sess.run(None, {"input": x})
        best = min(best, (time.perf_counter() - t0) / runs)
    return round(best * 1000, 4)


def recalls(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    pred = probs.argmax(1)
    return {c: round(float((pred[labels == i] == i).mean()), 4) for i, c in enumerate(CLASSES)}


def manifest_entry(path, net, history, ck, val, before, after, t, flip, check) -> dict:
    rec = recalls(after, val.labels)
    best = ck["row"]
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "source": "trained here: models/train (depthwise-separable residual network, "
                  f"stages {list(STAGES)}), FER-2013 train only; epoch chosen on publictest",
        "source_package": "none: trained in this repository (models/train)",
        "licence": "Apache-2.0 (this project's code and weights); trained on FER-2013 (research data, "
                   "not redistributed)",
        "converter": f"torch.onnx.export (TorchScript), torch {torch.__version__}, opset 17",
        "parameters": count_parameters(net),
        "input": {"name": "input", "shape": ["N", INPUT_SIDE, INPUT_SIDE, 1], "dtype": "float32",
                  "layout": "NHWC"},
        "output": {"name": "probabilities", "shape": ["N", 7], "dtype": "float32",
                   "meaning": f"softmax(logits / T), T = {t} (temperature scaling on publictest)"
                   + ("; logits averaged with the mirrored face" if flip else "")},
        "preprocessing": f"grayscale face crop, bilinear to {INPUT_SIDE}x{INPUT_SIDE} (crop_face), x/255, "
                         "then (x-0.5)*2: the same functions as the kiosk (device/vision/classify.py)",
        "classes": list(CLASSES),
        "test_time_flip": flip,
        "temperature": t,
        "conversion_check": check,
        "training": {
            "command": "make train-model (= " + history["command"] + "; python -m models.train.export"
                       + (" --flip" if flip else "") + ")",
            "seed": history["recipe"]["seed"], "recipe": history["recipe"], "data": history["data"],
            "torch": history["torch"], "threads": history["threads"], "epochs_done": history["epochs_done"],
            "epochs_planned": history["recipe"]["epochs"], "wall_s": history["wall_s"],
            "best_epoch": best["epoch"],
            "history": [{"epoch": r["epoch"], "loss": r["loss"], "acc": r["publictest"]["accuracy"],
                         "acc_flip": r["publictest_flip"]["accuracy"],
                         "macro_recall": r["publictest"]["macro_recall"]} for r in history["history"]],
        },
        "evaluation": {"training_check": {
            "data": "fer2013/publictest", "n": len(val.labels),
            "accuracy": round(float((after.argmax(1) == val.labels).mean()), 6),
            "macro_recall": round(float(np.mean(list(rec.values()))), 6), "per_class_recall": rec,
            "ece_before": round(ece(before, val.labels), 4), "ece_after": round(ece(after, val.labels), 4),
            "how": "python -m models.train.export (PyTorch, the kiosk's crop functions)"}},
        "latency": {"ms_per_face_1_thread_best_of_3": time_per_face(path),
                    "how": "onnxruntime, 1 thread, batch 1, best of 3 x 300 runs"},
    }


def write_manifest(models_dir: Path, entry: dict) -> None:
    path = models_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    old = manifest["models"].get(NAME, {})
    for key in ("evaluation",):  # keep figures measured by other tools (models.evaluate --record)
        entry[key] = {**old.get(key, {}), **entry[key]}
    manifest["models"][NAME] = entry
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
