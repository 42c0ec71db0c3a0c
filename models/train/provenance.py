"""Record a training run that has not (yet) produced a model worth exporting: its provenance, committed.

    python -m models.train.provenance [--data ../shared/data/fer2013] [--out build/models/train]
                                      [--runs models/train/runs]

Writes ``<runs>/<first 12 hex of the train-data hash>-seed<seed>.json``: the command, options, seed,
data hashes and counts, torch version, epochs done of those planned, training wall time, every
epoch's figures, the sha256 of ``last.pt`` and ``best.pt`` (the checkpoints themselves stay in
``build/``: they are 8 MB and the recipe regenerates them), and the publictest figures of both the
EMA weights (what export would ship) and the raw weights of the latest epoch (early in a run the
EMA still carries much of the initialisation: 0.998^224 = 64 % after one epoch).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from device.vision.manifest import sha256_file
from models.train.data import load_split, to_unit_range
from models.train.net import INPUT_SIDE, ExpressionNet
from models.train.train import DEFAULT_DATA, DEFAULT_OUT, evaluate_logits, figures

RUNS = Path(__file__).resolve().parent / "runs"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.train.provenance", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--runs", type=Path, default=RUNS)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    last, best, hist = args.out / "last.pt", args.out / "best.pt", args.out / "history.json"
    if not (last.exists() and best.exists() and hist.exists()):
        print(f"error: no finished epoch in {args.out} (last.pt, best.pt, history.json)", file=sys.stderr)
        return 2
    history = json.loads(hist.read_text(encoding="utf-8"))
    ck = torch.load(last, map_location="cpu", weights_only=False)
    val = load_split(args.data / "publictest", INPUT_SIDE)
    if val.sha256 != history["data"]["publictest"]["sha256"]:
        print("error: publictest differs from the run's", file=sys.stderr)
        return 2
    xv, yv = torch.from_numpy(to_unit_range(val.images))[:, None], torch.from_numpy(val.labels)
    raw = ExpressionNet(dropout=history["recipe"]["dropout"])
    raw.load_state_dict(ck["model"])
    plain, flipped = evaluate_logits(raw, xv)
    doc = {
        "status": f"in progress: {history['epochs_done']} of {history['recipe']['epochs']} epochs",
        "command": "make train-model (= " + history["command"] + ")",
        **{k: history[k] for k in ("recipe", "data", "torch", "python", "threads", "epochs_done", "wall_s")},
        "checkpoints": {"last.pt": sha256_file(last), "best.pt": sha256_file(best)},
        "latest_epoch_raw_weights": {"publictest": figures(plain, yv),
                                     "publictest_flip": figures(flipped, yv)},
        "best_epoch_ema": history["best"],
        "history": history["history"],
    }
    args.runs.mkdir(parents=True, exist_ok=True)
    path = args.runs / f"{history['data']['train']['sha256'][:12]}-seed{history['recipe']['seed']}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    r, ema = doc["latest_epoch_raw_weights"]["publictest"], history["best"]["publictest"]
    print(f"{path}: {doc['status']}; latest epoch, raw weights: publictest accuracy "
          f"{r['accuracy'] * 100:.2f} %, macro recall {r['macro_recall'] * 100:.2f} %; "
          f"EMA best {ema['accuracy'] * 100:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
