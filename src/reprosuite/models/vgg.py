"""VGG-11 with GroupNorm for 32x32 colour images (teleportation Tab. 2, CIFAR-10 at paper scale).

Layout (the common CIFAR VGG-11): conv 3x3 (padding 1) -> GroupNorm(8, C) -> ReLU for the widths
64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M (M = max-pool 2x2), so a 32x32 input ends
at 512 x 1 x 1, then one linear classifier 512 -> n_classes. 9,231,114 parameters for 3 input
channels and 10 classes (pinned in tests/test_paper_scale.py).

Adaptation: GroupNorm replaces VGG's BatchNorm because the gossip simulator stacks a model's
*parameters* only (``vmap(functional_call)`` over k slots, no buffers), so a normalisation with
running statistics cannot travel with a slot; GroupNorm has none. The paper's exact VGG variant
is UNKNOWN; this layout follows the first author's earlier code (``yukiTakezawa/BaseGraph``,
``model/vgg.py``: VGG-11 with GroupNorm(8, C) and a single 512 -> 10 classifier), an inference
for this paper, written here from the VGG-11 definition.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model

N_PARAMETERS = 9_231_114
VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
GROUPS = 8  # GroupNorm groups per layer (every width is a multiple of 8)


class VggGN(nn.Module):
    def __init__(self, n_classes: int = 10, in_channels: int = 3, layout: tuple = VGG11, groups: int = GROUPS):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for width in layout:
            if width == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, width, 3, padding=1), nn.GroupNorm(groups, width), nn.ReLU()]
                c = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 32, 32) -> (B, n_classes)
        return self.classifier(self.features(x).flatten(1))


@register_model("vgg_gn")
def vgg_gn(*, n_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> VggGN:
    if image_size != 32:
        raise ValueError(f"vgg_gn takes 32x32 images (five 2x2 pools down to 1x1), not {image_size}x{image_size}")
    return VggGN(n_classes, in_channels)
