"""The kiosk's compact expression network: depthwise-separable residual blocks for one Pi core.

Input (N, 1, 48, 48) grey in [-1, 1] (FER-2013's native size: upsampling to 64 px adds pixels, not
information, and costs 1.8x the compute). Four stages (48 -> 24 -> 12 -> 6 -> 3 px) of blocks made of
two depthwise 3x3 + pointwise 1x1 convolutions (Xception/MobileNet style) with identity shortcuts, or
a strided 1x1 projection where the size changes: 895,047 parameters and 23.6 M multiply-adds per
face (mini-Xception at 64 px: 58k parameters). The first trained version had one block fewer in
each of the last two stages (511,431 parameters, 18.1 M MACs); the extra blocks run at 6 and 3 px,
so they add 75 % of the parameters (capacity, which FER-2013 accuracy tracks) for 30 % more compute,
keeping a margin under the 1 ms/face and 1.5 M-parameter budget.
"""

from __future__ import annotations

import torch
from torch import nn

INPUT_SIDE = 48
NUM_CLASSES = 7
# (width, blocks) per stage; the first block of each stage halves the resolution.
STAGES = ((48, 1), (96, 2), (192, 3), (384, 2))
STEM = 32


class SepConv(nn.Sequential):
    """Depthwise 3x3 (stride s) -> BN -> pointwise 1x1 -> BN (activation left to the caller)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )


class Block(nn.Module):
    """relu(SepConv) -> SepConv, plus a shortcut; relu after the sum."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.a = SepConv(cin, cout, stride)
        self.b = SepConv(cout, cout)
        self.act = nn.ReLU(inplace=True)
        self.short: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.b(self.act(self.a(x))) + self.short(x))


class ExpressionNet(nn.Module):
    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, STEM, 3, 1, 1, bias=False), nn.BatchNorm2d(STEM), nn.ReLU(inplace=True)
        )
        layers: list[nn.Module] = []
        cin = STEM
        for width, blocks in STAGES:
            for i in range(blocks):
                layers.append(Block(cin, width, 2 if i == 0 else 1))
                cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, NUM_CLASSES)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 48, 48) in [-1, 1] -> logits (N, 7)."""
        return self.head(self.features(self.stem(x)))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
