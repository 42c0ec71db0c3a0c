"""Train the expression network on FER-2013 train; select on publictest; checkpoint every epoch.

    python -m models.train [--data ../shared/data/fer2013] [--out build/models/train] [--epochs 60]

Resumes from ``<out>/last.pt`` by default (``--fresh`` to start over): a run interrupted at any
point loses at most one epoch, and a resumed run continues the same schedule and random streams,
so one long run and several short sittings give the same model. ``<out>/best.pt`` holds the
EMA weights of the epoch with the best publictest accuracy; ``<out>/history.json`` every epoch's
figures. Only the *train* split is ever used for gradients; publictest only for choosing the epoch.
Run it niced on a shared machine: ``nice -n 19 python -m models.train``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, update_bn

from models.train.augment import augment, cutmix
from models.train.data import Split, load_split, to_unit_range
from models.train.net import INPUT_SIDE, ExpressionNet, count_parameters

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fer2013"
DEFAULT_OUT = REPO / "build" / "models" / "train"
# Everything that changes the result; a checkpoint made with other values is not resumed.
RECIPE_KEYS = ("seed", "epochs", "batch", "lr", "weight_decay", "label_smoothing", "cutmix_p",
               "ema_decay", "warmup_epochs", "dropout", "bn_images")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train/ and publictest/")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3, help="AdamW peak learning rate")
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--cutmix-p", type=float, default=0.3, help="share of batches mixed with CutMix")
    ap.add_argument("--ema-decay", type=float, default=0.998,
                    help="EMA decay, reached after a warm-up: min(decay, (1 + n) / (10 + n)) at update n")
    ap.add_argument("--bn-images", type=int, default=8192,
                    help="train images (fixed, clean) that re-estimate the EMA's BatchNorm statistics")
    ap.add_argument("--warmup-epochs", type=float, default=2.0)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=20260305)
    ap.add_argument("--threads", type=int, default=1,
                    help="1: with 2 busy cores, 2 OpenMP threads were 3x slower per step")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing last.pt")
    ap.add_argument("--max-epochs-now", type=int, default=None,
                    help="stop after this many epochs in this sitting (resume later)")
    return ap.parse_args(argv)


def recipe(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in RECIPE_KEYS}


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(total - warmup, 1)
    return peak * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


@torch.no_grad()
def evaluate_logits(model: torch.nn.Module, x: torch.Tensor, batch: int = 512) -> tuple[torch.Tensor,
                                                                                      torch.Tensor]:
    """Logits without and with a horizontal flip averaged in (test-time flip)."""
    model.eval()
    plain, flipped = [], []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        plain.append(model(xb))
        flipped.append(model(torch.flip(xb, dims=[3])))
    a, b = torch.cat(plain), torch.cat(flipped)
    return a, (a + b) / 2


def figures(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    pred = logits.argmax(1)
    recalls = [float((pred[labels == c] == c).float().mean()) for c in range(logits.shape[1])]
    return {"accuracy": float((pred == labels).float().mean()), "macro_recall": float(np.mean(recalls)),
            "per_class_recall": [round(r, 4) for r in recalls]}


def ema_with_warmup(decay: float):
    """multi_avg_fn for AveragedModel: EMA whose decay ramps up as min(decay, (1 + n) / (10 + n)).

    A fixed decay of 0.998 from the first step keeps 0.998^n of the random initialisation: 11 %
    after 5 epochs, which (with averaged BatchNorm statistics) made the evaluated model predict one
    class; with the ramp the initialisation is gone after a few dozen updates.
    """

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        for a, c in zip(averaged, current, strict=True):
            a.lerp_(c, 1.0 - d)

    return update


def recalibrate_bn(net: torch.nn.Module, x: torch.Tensor, batch: int = 512) -> None:
    """Re-estimate the BatchNorm running statistics of ``net`` (the EMA weights) on ``x``.

    Averaged weights need statistics of their own activations: neither an average of the trained
    model's running statistics (they started at mean 0 / variance 1, 5-50x the real variances, and
    describe other weights) nor a copy of them fits. Deterministic: same images, same order.
    """
    update_bn([(x[i : i + batch],) for i in range(0, len(x), batch)], net)


def bn_subset(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """A fixed, seeded subset of the train images (clean, as the kiosk sees faces) for recalibrate_bn."""
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx].contiguous(memory_format=torch.channels_last)


def train_epoch(model, ema, opt, x, y, args, epoch, step0, total_steps) -> tuple[float, int]:
    model.train()
    g = torch.Generator().manual_seed(args.seed * 1000 + epoch)
    order = torch.randperm(len(x), generator=g)
    warmup = int(args.warmup_epochs * (len(x) // args.batch))
    step, losses = step0, []
    for i in range(0, len(x) - args.batch + 1, args.batch):  # drop the last partial batch
        idx = order[i : i + args.batch]
        xb = augment(x[idx].clone(), g).contiguous(memory_format=torch.channels_last)
        yb = y[idx]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total_steps, warmup, args.lr)
        if torch.rand(1, generator=g).item() < args.cutmix_p:
            xb, ya, yb2, lam = cutmix(xb, yb, g)
            out = model(xb)
            loss = lam * F.cross_entropy(out, ya, label_smoothing=args.label_smoothing) + (1 - lam) * \
                F.cross_entropy(out, yb2, label_smoothing=args.label_smoothing)
        else:
            loss = F.cross_entropy(model(xb), yb, label_smoothing=args.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update_parameters(model)
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            print(f"  step {step} (epoch {epoch}) loss {np.mean(losses[-50:]):.4f}", flush=True)
    return float(np.mean(losses)), step


def build(args: argparse.Namespace):
    torch.manual_seed(args.seed)
    # channels_last: depthwise convolutions were 2-4x faster per step on this CPU
    model = ExpressionNet(dropout=args.dropout).to(memory_format=torch.channels_last)
    # parameters only: the EMA's BatchNorm statistics are re-estimated for its own weights before
    # every evaluation (recalibrate_bn), not averaged
    ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(args.ema_decay), use_buffers=False)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    return model, ema, opt


def load_data(args: argparse.Namespace) -> tuple[Split, Split]:
    train, val = load_split(args.data / "train", INPUT_SIDE), load_split(args.data / "publictest", INPUT_SIDE)
    print(f"train {len(train.labels)} images (sha256 {train.sha256[:12]}), publictest {len(val.labels)} "
          f"(sha256 {val.sha256[:12]})", flush=True)
    return train, val


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.bn_images < 1:
        print("error: --bn-images must be at least 1", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    last, best_path = args.out / "last.pt", args.out / "best.pt"
    try:
        train, val = load_data(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    x = torch.from_numpy(to_unit_range(train.images))[:, None]
    y = torch.from_numpy(train.labels)
    xv, yv = torch.from_numpy(to_unit_range(val.images))[:, None], torch.from_numpy(val.labels)
    x_bn = bn_subset(x, args.bn_images, args.seed)
    model, ema, opt = build(args)
    state = {"epoch": 0, "step": 0, "history": [], "best": None, "wall_s": 0.0}
    if last.exists() and not args.fresh:
        ck = torch.load(last, map_location="cpu", weights_only=False)
        if ck["recipe"] != recipe(args):
            print(f"error: {last} was made with {ck['recipe']}, not {recipe(args)}; use --fresh or the "
                  "same options", file=sys.stderr)
            return 2
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        torch.set_rng_state(ck["torch_rng"])
        state = ck["state"]
        print(f"resumed after epoch {state['epoch']} of {args.epochs}", flush=True)
    steps_per_epoch = len(x) // args.batch
    total = args.epochs * steps_per_epoch
    print(f"model: {count_parameters(model):,} parameters; {args.epochs} epochs x {steps_per_epoch} steps",
          flush=True)
    sitting = 0
    while state["epoch"] < args.epochs:
        if args.max_epochs_now is not None and sitting >= args.max_epochs_now:
            break
        t0 = time.monotonic()
        epoch = state["epoch"] + 1
        loss, state["step"] = train_epoch(model, ema, opt, x, y, args, epoch, state["step"], total)
        recalibrate_bn(ema.module, x_bn)
        plain, flipped = evaluate_logits(ema.module, xv)
        row = {"epoch": epoch, "loss": round(loss, 4), "lr_end": lr_at(state["step"] - 1, total,
               int(args.warmup_epochs * steps_per_epoch), args.lr),
               "publictest": figures(plain, yv), "publictest_flip": figures(flipped, yv)}
        state["wall_s"] += time.monotonic() - t0
        row["wall_s"] = round(state["wall_s"], 1)
        state["history"].append(row)
        state["epoch"] = epoch
        acc = row["publictest"]["accuracy"]
        if state["best"] is None or acc > state["best"]["publictest"]["accuracy"]:
            state["best"] = row
            torch.save({"ema": ema.module.state_dict(), "row": row, "recipe": recipe(args),
                        "data": {"train": train.sha256, "publictest": val.sha256}}, best_path)
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "torch_rng": torch.get_rng_state(), "state": state, "recipe": recipe(args)},
                   last.with_suffix(".tmp"))
        last.with_suffix(".tmp").replace(last)  # atomic: an interrupted save keeps the previous epoch
        write_provenance(args, train, val, state)
        sitting += 1
        print(f"epoch {epoch}/{args.epochs} loss {loss:.4f} publictest acc {acc * 100:.2f} % "
              f"(flip {row['publictest_flip']['accuracy'] * 100:.2f} %) macro recall "
              f"{row['publictest']['macro_recall'] * 100:.2f} % [{time.monotonic() - t0:.0f} s]", flush=True)
    return 0


def write_provenance(args: argparse.Namespace, train: Split, val: Split, state: dict) -> None:
    """history.json: what the export step copies into models/manifest.json."""
    doc = {
        "command": "python -m models.train " + " ".join(f"--{k.replace('_', '-')} {v}"
                                                        for k, v in recipe(args).items()),
        "recipe": recipe(args),
        "data": {"train": {"sha256": train.sha256, "n": len(train.labels), "counts": train.counts(),
                           "unreadable": train.unreadable},
                 "publictest": {"sha256": val.sha256, "n": len(val.labels), "counts": val.counts(),
                                "unreadable": val.unreadable}},
        "torch": torch.__version__, "python": platform.python_version(), "threads": args.threads,
        "epochs_done": state["epoch"], "wall_s": round(state["wall_s"], 1), "best": state["best"],
        "history": state["history"],
    }
    (args.out / "history.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
