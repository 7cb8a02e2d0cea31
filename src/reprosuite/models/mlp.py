"""Multi-layer perceptrons (certified: the paper's MNIST MLP and small default-scale MLPs)."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU] * len(hidden) -> Linear(n_classes); ``features`` is the last hidden layer."""

    def __init__(self, in_features: int, n_classes: int, hidden: tuple[int, ...] = (256, 128)):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(nn.Flatten(), *layers)
        self.head = nn.Linear(width, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (N, ...) -> (N, hidden[-1])
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("mlp")
def mlp(*, n_classes: int, in_channels: int, image_size: int) -> MLP:
    return MLP(in_channels * image_size * image_size, n_classes)


@register_model("mlp_big")
def mlp_big(*, n_classes: int, in_channels: int, image_size: int) -> MLP:
    """The certified paper's ``BigMNISTMLP``: 784-2048-1024-512-256-10 (~4.4 M parameters)."""
    return MLP(in_channels * image_size * image_size, n_classes, hidden=(2048, 1024, 512, 256))


@register_model("mlp_128_64")
def mlp_128_64(*, n_classes: int, in_channels: int, image_size: int) -> MLP:
    """The 64-128-64-10 MLP of the certified smoke scale (sklearn digits, 8x8)."""
    return MLP(in_channels * image_size * image_size, n_classes, hidden=(128, 64))
