"""Train originals, retrains and small teachers on in-memory tensors (docs/papers/collateral.md §2.2).

Deterministic by seed: the initial weights come from ``build_model(generator=...)`` and every
epoch's shuffling and augmentation from a generator seeded with (seed, epoch), so a run resumed
at epoch e from a checkpoint replays exactly what an uninterrupted run would have done.

Evaluation batches: a convolutional model on the CPU is evaluated 256 images at a time (its
activations stay in cache: 2.4x faster than 2,048 for the SmallCNN, 1 thread); other models and
CUDA take 2,048. A CPU forward of any batch of >= 4 images gives the same logits, bit for bit,
as a larger batch (checked for SmallCNN and the MLPs), so the chunking does not change results;
``chunks`` never leaves a last chunk smaller than 64.
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


def eval_batch_size(model: nn.Module, device: str = "cpu") -> int:
    """256 for a convolutional model on the CPU (cache-sized activations), else 2048."""
    conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return 256 if conv and not str(device).startswith("cuda") else 2048


def chunks(n: int, batch_size: int, min_last: int = 64) -> list[tuple[int, int]]:
    """(start, stop) of consecutive batches over n items; a last batch under ``min_last`` items
    joins the one before (tiny batches can take other kernels)."""
    bounds = [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_last:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, device: str = "cpu", batch_size: int | None = None,
            features: bool = False) -> torch.Tensor:
    """Logits (N, K), or penultimate features (N, 64) if ``features``, on the CPU; eval mode.
    ``batch_size`` None: ``eval_batch_size(model, device)``."""
    was_training = model.training
    model.eval()
    fn = model.features if features else model
    bs = batch_size or eval_batch_size(model, device)
    parts = [fn(x[a:b].to(device)).float().cpu() for a, b in chunks(len(x), bs)]
    out = torch.cat(parts) if parts else fn(x.to(device)).float().cpu()
    model.train(was_training)
    return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str = "cpu") -> float:
    if len(x) == 0:
        return float("nan")
    return float((predict(model, x, device).argmax(1) == y).float().mean())


@torch.no_grad()
def _correct_unless(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str, hopeless) -> torch.Tensor | None:
    """Per-example correctness (N,) bool over the whole of x, or None as soon as
    ``hopeless(correct_so_far, wrong_so_far, n)`` says the outcome cannot matter any more."""
    n = len(x)
    was_training = model.training
    model.eval()
    hits, right, wrong = [], 0, 0
    try:
        for a, b in chunks(n, eval_batch_size(model, device)):
            hit = model(x[a:b].to(device)).float().cpu().argmax(1) == y[a:b]
            hits.append(hit)
            k = int(hit.sum())
            right, wrong = right + k, wrong + len(hit) - k
            if hopeless(right, wrong, n):
                return None
    finally:
        model.train(was_training)
    return torch.cat(hits)


def reaches_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: float,
                     device: str = "cpu") -> float | None:
    """``accuracy(model, x, y)`` if it is >= ``target``, else None; stops evaluating as soon as the
    errors seen rule the target out (a training run far from its stopping accuracy pays for a
    fraction of the pass). The decision is the one ``accuracy(...) >= target`` takes: the early
    exit needs the best case to miss the target by more than float32 rounding of the mean."""
    if len(x) == 0:
        return None
    hits = _correct_unless(model, x, y, device, lambda right, wrong, n: (n - wrong) / n < target - 1e-6)
    acc = None if hits is None else float(hits.float().mean())  # what accuracy() computes
    return acc if acc is not None and acc >= target else None


def reaches_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: float,
                  device: str = "cpu") -> float | None:
    """``1 - accuracy(model, x, y)`` if it is >= ``target`` (e.g. UA on D_f), else None; stops as
    soon as the correct predictions seen rule it out (same decision as the full pass)."""
    if len(x) == 0:
        return None
    hits = _correct_unless(model, x, y, device, lambda right, wrong, n: (n - right) / n < target - 1e-6)
    err = None if hits is None else 1.0 - float(hits.float().mean())
    return err if err is not None and err >= target else None


def train_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, *, seed: int,
                device: str = "cpu", start_epoch: int = 0, optimizer_state: dict | None = None,
                on_epoch: Callable[[int, nn.Module, torch.optim.Optimizer, dict], None] | None = None,
                ) -> list[dict]:
    """Train ``model`` in place with cross-entropy; returns one dict per epoch.

    x: (N, C, H, W) float, y: (N,) int64 (CPU tensors; batches move to ``device``).
    ``on_epoch(epoch, model, optimizer, info)`` runs after each epoch (checkpointing).
    With ``cfg.stop_train_acc``, training stops after the first epoch whose clean train accuracy
    reaches it; ``info["train_accuracy"]`` is given on that epoch and on the last one (the check
    of the other epochs stops once the target is out of reach: ``reaches_accuracy``).
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
        stop = False
        if cfg.stop_train_acc is not None:
            if epoch + 1 == cfg.epochs:  # the last epoch reports its accuracy in full
                info["train_accuracy"] = accuracy(model, x, y, device)
                stop = info["train_accuracy"] >= cfg.stop_train_acc
            else:
                acc = reaches_accuracy(model, x, y, cfg.stop_train_acc, device)
                stop = acc is not None
                if stop:
                    info["train_accuracy"] = acc
        history.append(info)
        if on_epoch is not None:
            on_epoch(epoch + 1, model, opt, {"scheduler": sched.state_dict() if sched else None, **info})
        if stop:
            break
    model.eval()
    return history
