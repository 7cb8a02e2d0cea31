"""Train originals, retrains and small teachers on in-memory tensors (docs/papers/collateral.md §2.2).

Deterministic by seed: the initial weights come from ``build_model(generator=...)`` and every
epoch's shuffling and augmentation from a generator seeded with (seed, epoch), so a run resumed
at epoch e from a checkpoint replays exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .configs import TrainConfig


def images_to_tensor(x: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> normalised float32 (N, C, H, W)."""
    t = torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)
    t = t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return (t - m) / s


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding ``pad`` and random horizontal flip; x: (B, C, H, W)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    rows = (dy.view(b, 1) + torch.arange(h).view(1, h))  # (B, H)
    cols = (dx.view(b, 1) + torch.arange(w).view(1, w))  # (B, W)
    out = padded[torch.arange(b).view(b, 1, 1, 1), torch.arange(x.shape[1]).view(1, -1, 1, 1),
                 rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]
    flip = torch.rand(b, generator=gen) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs, eta_min=0.0)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.step_gamma)
    return None


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch's shuffling/augmentation (resumable by construction)."""
    return torch.Generator().manual_seed((int(seed) * 100_003 + epoch) % (2**63 - 1))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, device: str = "cpu", batch_size: int = 2048,
            features: bool = False) -> torch.Tensor:
    """Logits (N, K), or penultimate features (N, 64) if ``features``, on the CPU; eval mode."""
    was_training = model.training
    model.eval()
    fn = model.features if features else model
    out = torch.cat([fn(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str = "cpu") -> float:
    if len(x) == 0:
        return float("nan")
    return float((predict(model, x, device).argmax(1) == y).float().mean())


def train_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, *, seed: int,
                device: str = "cpu", start_epoch: int = 0, optimizer_state: dict | None = None,
                on_epoch: Callable[[int, nn.Module, torch.optim.Optimizer, dict], None] | None = None,
                ) -> list[dict]:
    """Train ``model`` in place with cross-entropy; returns one dict per epoch.

    x: (N, C, H, W) float, y: (N,) int64 (CPU tensors; batches move to ``device``).
    ``on_epoch(epoch, model, optimizer, info)`` runs after each epoch (checkpointing).
    """
    model.to(device).train()
    opt = make_optimizer(model.parameters(), cfg)
    sched = make_scheduler(opt, cfg)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state["optimizer"])
        if sched is not None and optimizer_state.get("scheduler"):
            sched.load_state_dict(optimizer_state["scheduler"])
    history = []
    n = len(x)
    for epoch in range(start_epoch, cfg.epochs):
        gen = epoch_generator(seed, epoch)
        perm = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            xb = augment(x[idx], gen) if cfg.augment else x[idx]
            loss = F.cross_entropy(model(xb.to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        if sched is not None:
            sched.step()
        info = {"epoch": epoch + 1, "train_loss": total / max(count, 1)}
        if cfg.stop_train_acc is not None:
            info["train_accuracy"] = accuracy(model, x, y, device)
        history.append(info)
        if on_epoch is not None:
            on_epoch(epoch + 1, model, opt, {"scheduler": sched.state_dict() if sched else None, **info})
        if cfg.stop_train_acc is not None and info["train_accuracy"] >= cfg.stop_train_acc:
            break
    model.eval()
    return history
