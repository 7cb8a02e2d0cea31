"""The model registry: architectures register themselves by name; ``build_model`` draws seeded weights.

Architecture files (``lenet``, ``cnn``, ``mlp``, ...) decorate a factory with ``@register_model(name)``.
A factory takes keyword arguments ``n_classes``, ``in_channels``, ``image_size`` and returns an
``nn.Module``. ``seeded(generator or seed, factory)`` is the one place where module initialisation
is made deterministic without touching the global RNG.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Factory = Callable[..., nn.Module]
MODELS: dict[str, Factory] = {}


def register_model(name: str) -> Callable[[Factory], Factory]:
    """Decorator: ``@register_model("small_cnn")`` on a factory ``(n_classes, in_channels, image_size)``."""

    def deco(factory: Factory) -> Factory:
        if name in MODELS and MODELS[name] is not factory:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = factory
        return factory

    return deco


def _load_families() -> None:
    # importing a family registers its architectures; cheap, and only when a model is built
    from . import cnn, lenet, mlp, resnet18, vgg  # noqa: F401


def model_names() -> list[str]:
    _load_families()
    return sorted(MODELS)


def seeded(seed: int | torch.Generator, factory: Callable[[], nn.Module]) -> nn.Module:
    """Build ``factory()`` with its default initialisation drawn from ``seed`` (a generator or an int),
    leaving the caller's global RNG untouched."""
    if isinstance(seed, torch.Generator):
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return factory()


def build_model(arch: str, *, n_classes: int, in_channels: int, image_size: int,
                generator: torch.Generator | int | None = None) -> nn.Module:
    """Build the registered ``arch``; weights drawn from ``generator`` (deterministic by seed)."""
    _load_families()
    if arch not in MODELS:
        raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(sorted(MODELS))}")

    def make() -> nn.Module:
        return MODELS[arch](n_classes=n_classes, in_channels=in_channels, image_size=image_size)

    return make() if generator is None else seeded(generator, make)
