"""CIFAR ResNet-18 (certified paper at paper scale: CIFAR-10, Fig. 1 row 2 and Table 1).

torchvision's ResNet-18 in its CIFAR variant (as in SalUn): a 3x3 stride-1 first convolution and
no max-pool, ~11.2 M parameters for 10 classes. Inputs arrive normalised by the data layer
(mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616) for CIFAR-10), so the model holds no
normalisation of its own. Parameter names keep torchvision's (``conv1``, ``bn1``, ``layer1..4``,
``fc``), which the block splits ``layers`` and ``head`` read.
"""

from __future__ import annotations

from torch import nn

from .registry import register_model


def cifar_resnet18(n_classes: int = 10, in_channels: int = 3) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(num_classes=n_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


@register_model("resnet18")
def resnet18_cifar(*, n_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return cifar_resnet18(n_classes, in_channels)
