"""LeNet with GroupNorm for 28x28 grey images (topology Fig. 3, teleportation Tab. 2).

conv(1->6, 5x5), ReLU, maxpool 2, GroupNorm(2, 6); conv(6->16, 5x5), ReLU, maxpool 2,
GroupNorm(4, 16); fc 256->120->84->10 with ReLU. 44,470 parameters (docs/papers/topology.md, after
``yukiTakezawa/BaseGraph`` ``model/lenet_fashion.py``). GroupNorm has no running statistics,
so the model is a pure function of its parameters (vmap-friendly).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model

N_PARAMETERS = 44_470


class LeNetGN(nn.Module):
    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.GroupNorm(2, 6),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.GroupNorm(4, 16),
        )
        self.classifier = nn.Sequential(
            nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, n_classes)
        f = self.features  # the layers of ``features`` in order, ReLU + max-pool fused (pool_relu)
        h = f[3](pool_relu(f[0](x)))
        h = f[7](pool_relu(f[4](h)))
        return self.classifier(h.flatten(1))


def pool_relu(x: torch.Tensor) -> torch.Tensor:
    """max_pool2d(relu(x), 2) computed as relu(max_pool2d(x, 2)): the same values and, bit for bit,
    the same gradient (the first maximum of a window takes the window's gradient, ReLU passes it
    where the maximum is > 0, as ReLU's own backward does before the pool), with the ReLU on a
    quarter of the elements. Without autograd (evaluation) the window maximum comes from strided
    slices, about 4x faster than ATen's CPU pooling kernel (which also computes indices)."""
    if (torch.is_grad_enabled() and x.requires_grad) or x.ndim != 4 or x.shape[-1] % 2 or x.shape[-2] % 2:
        return F.relu(F.max_pool2d(x, 2))
    n, c, h, w = x.shape
    v = x.view(n, c, h // 2, 2, w // 2, 2) if x.is_contiguous() else x.reshape(n, c, h // 2, 2, w // 2, 2)
    rows = torch.maximum(v[:, :, :, 0], v[:, :, :, 1])  # (N, C, H/2, W/2, 2): max of the two rows
    return torch.maximum(rows[..., 0], rows[..., 1]).clamp_min_(0)


def grouped_forward(params: dict[str, torch.Tensor], x: torch.Tensor, shared_input: bool = False) -> torch.Tensor:
    """k LeNet-GN models at once; params {name: (k, *shape)}, x (k, B, 1, 28, 28) -> (k, B, C).

    With ``shared_input`` x is one batch (B, 1, 28, 28) seen by every model (evaluation): the
    first conv then runs ungrouped on it, so the input is never replicated k times.

    The same math as ``vmap(functional_call(LeNetGN()))`` but laid out for grouped kernels: the
    k models become k channel groups of one (B, k*C, H, W) tensor (grouped conv, GroupNorm with
    k times the groups), and the fully connected layers become batched matmuls. This avoids the
    layout copies vmap inserts around every conv on CPU (see benchmarks/README.md).
    """
    k = params["features.0.weight"].shape[0]
    if shared_input:
        b, h = x.shape[0], x  # (B, 1, 28, 28)
    else:
        b = x.shape[1]
        h = x.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:])  # (B, k*1, 28, 28)
    for layer, (conv, norm, groups) in enumerate((("features.0", "features.3", 2), ("features.4", "features.7", 4))):
        weight = params[f"{conv}.weight"]  # (k, C_out, C_in, 5, 5)
        conv_groups = 1 if (shared_input and layer == 0) else k
        h = F.conv2d(h, weight.reshape(-1, *weight.shape[2:]), params[f"{conv}.bias"].reshape(-1), groups=conv_groups)
        h = pool_relu(h)  # = max_pool2d(relu(h), 2), values and gradients
        h = F.group_norm(h, k * groups, params[f"{norm}.weight"].reshape(-1), params[f"{norm}.bias"].reshape(-1))
    h = h.reshape(b, k, -1).transpose(0, 1)  # (k, B, 256), channel-major per model as in flatten(1)
    for i, name in enumerate(("classifier.0", "classifier.2", "classifier.4")):
        h = torch.baddbmm(params[f"{name}.bias"].unsqueeze(1), h, params[f"{name}.weight"].transpose(1, 2))
        if i < 2:
            h = F.relu(h)
    return h  # (k, B, n_classes)


LeNetGN.grouped_forward = staticmethod(grouped_forward)


@register_model("lenet_gn")
def lenet_gn(*, n_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> LeNetGN:
    if (in_channels, image_size) != (1, 28):
        raise ValueError(f"lenet_gn takes 1x28x28 images, not {in_channels}x{image_size}x{image_size}")
    return LeNetGN(n_classes)
