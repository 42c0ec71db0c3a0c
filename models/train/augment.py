"""Batched augmentation on tensors in [-1, 1] (one affine resample per batch, no worker processes).

Geometry: horizontal flip, rotation, scale, shift (FER-2013 faces are loosely framed and the kiosk's
detector frames them differently again). Photometry like a counter camera: contrast/brightness and
gamma (low light), occasional down-then-up sampling (small or blurred faces), random erasing
(hands, glasses, occlusion). Mixup/CutMix are applied by the trainer on the labels as well.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def geometric(x: torch.Tensor, g: torch.Generator, rot_deg: float = 15.0, scale: float = 0.15,
              shift: float = 0.1) -> torch.Tensor:
    n = x.shape[0]
    u = torch.rand(n, 5, generator=g)
    angle = (u[:, 0] * 2 - 1) * math.radians(rot_deg)
    s = 1.0 + (u[:, 1] * 2 - 1) * scale
    flip = torch.where(u[:, 4] < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip, cos
    theta[:, 0, 2] = (u[:, 2] * 2 - 1) * shift * 2
    theta[:, 1, 2] = (u[:, 3] * 2 - 1) * shift * 2
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def photometric(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    u = torch.rand(n, 4, generator=g)
    unit = ((x + 1) / 2).clamp(0, 1)
    gamma = torch.exp((u[:, 0] * 2 - 1) * 0.4).view(n, 1, 1, 1)  # ~0.67 .. 1.5
    unit = unit.pow(gamma)
    contrast = (0.6 + 0.8 * u[:, 1]).view(n, 1, 1, 1)
    bright = ((u[:, 2] * 2 - 1) * 0.15).view(n, 1, 1, 1)
    mean = unit.mean(dim=(1, 2, 3), keepdim=True)
    unit = ((unit - mean) * contrast + mean + bright).clamp(0, 1)
    out = unit * 2 - 1
    low = u[:, 3] < 0.2  # a fifth of the batch: a small or blurred face
    if low.any():
        side = out.shape[-1]
        small = F.interpolate(out[low], size=(side // 2, side // 2), mode="area")
        out[low] = F.interpolate(small, size=(side, side), mode="bilinear", align_corners=False)
    return out


def erase(x: torch.Tensor, g: torch.Generator, p: float = 0.25) -> torch.Tensor:
    n, _, h, w = x.shape
    u = torch.rand(n, 5, generator=g)
    for i in torch.nonzero(u[:, 0] < p).flatten().tolist():
        eh, ew = int(h * (0.15 + 0.25 * u[i, 1])), int(w * (0.15 + 0.25 * u[i, 2]))
        y0, x0 = int((h - eh) * u[i, 3]), int((w - ew) * u[i, 4])
        x[i, :, y0 : y0 + eh, x0 : x0 + ew] = 0.0
    return x


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return erase(photometric(geometric(x, g), g), g)


def cutmix(x: torch.Tensor, y: torch.Tensor, g: torch.Generator, alpha: float = 1.0
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """CutMix: returns (mixed x, y_a, y_b, lam) for loss = lam * L(y_a) + (1 - lam) * L(y_b)."""
    n, _, h, w = x.shape
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(n, generator=g)
    ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = int(torch.randint(h, (1,), generator=g)), int(torch.randint(w, (1,), generator=g))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return x, y, y[perm], lam
