"""The learning-rate schedule of the decentralized training loop (``gossip.training``), and its
one validation, shared by every paper config that trains with it (topology fig3, teleportation
tab2). Free of torch: paper configs import it when the workflow is parsed."""

from __future__ import annotations

import math
from typing import Any

from ..config import check_range


def check_schedule(c: Any, section: str) -> None:
    """Refuse, in one line, a training schedule that ``train`` cannot run (for a config's
    ``__post_init__``): ``c`` has ``epochs, batch_size, eval_every, lr, lr_min, warmup_epochs,
    warmup_lr, momentum, weight_decay``."""
    check_range(c, section, "epochs", "batch_size", "eval_every", ge=1)
    check_range(c, section, "lr", "warmup_lr", gt=0)
    if not 0.0 <= c.lr_min <= c.lr:
        raise ValueError(f"{section}.lr_min = {c.lr_min} must be in [0, lr = {c.lr}]")
    if not 0 <= c.warmup_epochs < c.epochs:
        raise ValueError(f"{section}.warmup_epochs = {c.warmup_epochs} must be in [0, epochs = {c.epochs})")
    check_range(c, section, "momentum", ge=0, lt=1)
    check_range(c, section, "weight_decay", ge=0)


def learning_rate(c: Any, *, round_: int, rounds_per_epoch: int) -> float:
    """Linear warm-up from warmup_lr, then cosine from lr to lr_min (per round).

    ``c`` has ``lr, lr_min, epochs, warmup_epochs, warmup_lr``.
    """
    warm = c.warmup_epochs * rounds_per_epoch
    total = c.epochs * rounds_per_epoch
    if round_ < warm:
        return c.warmup_lr + (c.lr - c.warmup_lr) * round_ / warm
    frac = (round_ - warm) / max(1, total - warm)
    return c.lr_min + 0.5 * (c.lr - c.lr_min) * (1.0 + math.cos(math.pi * frac))
