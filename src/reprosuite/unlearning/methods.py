"""Approximate unlearning methods and their registry (docs/papers/collateral.md §2.3; certified D-T1).

``METHODS`` maps a method's name to a ``Method(config, run)``: its own config dataclass (in
``configs``) and ``run(original, data, cfg, *, seed, device, callback) -> (model, info)``.
Registered here: GA (gradient ascent on D_f), GA+FT, RL (random labels on D_f, with or without
D_r), FT (fine-tune on D_r), SalUn (RL with a gradient-saliency weight mask); ``ltd`` registers
Local Teacher Distillation, which reuses the loop here. ``unlearn(original, data, cfg, ...)``
runs the method named by ``cfg.kind``; ``method(name)`` looks one up (unknown names list the known
ones); ``@register_method(name, ConfigClass)`` adds one.

Every method starts from a deep copy of the original, draws all randomness from ``seed`` and
reports its wall-clock time (RTE) excluding the evaluation callbacks.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .configs import FTConfig, GAConfig, GAFTConfig, LoopConfig, RLConfig, SalUnConfig
from .training import epoch_generator, predict, reaches_error


@dataclass
class UnlearnData:
    """Tensors of one deletion request: x (N, C, H, W) float, y (N,) int64, on the CPU."""

    x_forget: torch.Tensor
    y_forget: torch.Tensor
    x_retain: torch.Tensor
    y_retain: torch.Tensor
    n_classes: int


class Stopwatch:
    """Wall-clock time of the unlearning itself; ``paused()`` excludes evaluation callbacks."""

    def __init__(self):
        self.elapsed, self._t0 = 0.0, time.perf_counter()

    def pause(self):
        self.elapsed += time.perf_counter() - self._t0

    def resume(self):
        self._t0 = time.perf_counter()

    def total(self) -> float:
        return self.elapsed + time.perf_counter() - self._t0


Callback = Callable[[int, nn.Module], None]  # (epoch, model) after every epoch; not timed


def make_optimizer(params, cfg: LoopConfig, lr: float | None = None) -> torch.optim.Optimizer:
    lr = cfg.lr if lr is None else lr
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def random_labels(y: torch.Tensor, n_classes: int, mode: str, gen: torch.Generator) -> torch.Tensor:
    """Uniform labels over all classes (``any``) or over the wrong ones (``wrong``); y: (N,)."""
    if mode == "any":
        return torch.randint(0, n_classes, y.shape, generator=gen)
    shift = torch.randint(1, n_classes, y.shape, generator=gen)
    return (y + shift) % n_classes


def forget_accuracy(model: nn.Module, data: UnlearnData, device: str) -> float:
    return float((predict(model, data.x_forget, device).argmax(1) == data.y_forget).float().mean())


def mixed_epochs(model: nn.Module, data: UnlearnData, cfg: LoopConfig, *, seed: int, device: str,
                 batch_loss: Callable, use_forget: bool, use_retain: bool, watch: Stopwatch,
                 callback: Callback | None = None, epochs: int | None = None, lr: float | None = None,
                 batch_size: int | None = None, after_step: Callable[[str], None] | None = None,
                 retain_fraction: float = 1.0, label_mode: str = "any",
                 ) -> dict:
    """Shuffled epochs over (D_f x oversample, flagged) ∪ (a retain_fraction share of D_r).

    ``batch_loss(model, xb, yb, is_forget, forget_targets, forget_idx)`` returns the batch loss;
    ``forget_targets`` are this epoch's random labels of the batch's D_f rows (RL), and
    ``forget_idx`` their indices into D_f. ``after_step("grad" | "step")`` edits gradients or
    weights around ``optimizer.step()`` (SalUn's mask).
    Stops early once UA >= ``cfg.ua_target`` (checked after every step; ``reaches_error``). Returns
    steps, epochs and the UA after the last step.
    """
    model.to(device).train()
    opt = make_optimizer(model.parameters(), cfg, lr)
    n_f, n_r = len(data.x_forget), len(data.x_retain)
    gen0 = torch.Generator().manual_seed(seed)
    retain_idx = torch.randperm(n_r, generator=gen0)[: int(round(retain_fraction * n_r))] if use_retain else torch.empty(0, dtype=torch.long)
    forget_idx = torch.arange(n_f).repeat(cfg.forget_oversample) if use_forget else torch.empty(0, dtype=torch.long)
    # global index: [0, n_f) = D_f, [n_f, n_f + n_r) = D_r
    pool = torch.cat([forget_idx, n_f + retain_idx])
    steps, epoch, ua, stop = 0, 0, None, False
    bs = batch_size or cfg.batch_size
    for epoch in range(1, (epochs or cfg.epochs) + 1):
        gen = epoch_generator(seed, epoch)
        targets = random_labels(data.y_forget, data.n_classes, label_mode, gen)
        order = pool[torch.randperm(len(pool), generator=gen)]
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
            is_f = idx < n_f
            fi, ri = idx[is_f], idx[~is_f] - n_f
            xb = torch.cat([data.x_forget[fi], data.x_retain[ri]]).to(device)
            yb = torch.cat([data.y_forget[fi], data.y_retain[ri]]).to(device)
            flag = torch.cat([torch.ones(len(fi), dtype=torch.bool), torch.zeros(len(ri), dtype=torch.bool)]).to(device)
            loss = batch_loss(model, xb, yb, flag, targets[fi].to(device), fi)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if after_step is not None:
                after_step("grad")
            opt.step()
            if after_step is not None:
                after_step("step")
            steps += 1
            if cfg.ua_target is not None:
                ua = reaches_error(model, data.x_forget, data.y_forget, cfg.ua_target, device)
                if ua is not None:  # UA >= target (the check stops early while it is out of reach)
                    stop = True
                    break
        if callback is not None:
            watch.pause()
            callback(epoch, model)
            watch.resume()
            model.train()
        if stop:
            break
    if cfg.ua_target is not None and steps and not stop:  # the UA after the last step, in full
        ua = 1.0 - forget_accuracy(model, data, device)
    return {"steps": steps, "epochs_run": epoch, "ua_during": ua}


def _ce_random(model, xb, yb, flag, t_f, fi):
    yb = yb.clone()
    yb[flag] = t_f
    return F.cross_entropy(model(xb), yb)


def _neg_ce(model, xb, yb, flag, t_f, fi):
    return -F.cross_entropy(model(xb), yb)


def _ce(model, xb, yb, flag, t_f, fi):
    return F.cross_entropy(model(xb), yb)


def _shifted(callback: Callback | None, offset: int) -> Callback | None:
    """The FT stage of GA+FT reports its epochs after the GA stage's."""
    return None if callback is None else (lambda epoch, model: callback(offset + epoch, model))


def saliency_mask(model: nn.Module, data: UnlearnData, ratio: float, device: str,
                  batch_size: int = 512) -> dict[str, torch.Tensor]:
    """SalUn: keep the top ``ratio`` of |∇θ (-CE on D_f)| over all weights (one global threshold)."""
    model.zero_grad(set_to_none=True)
    for i in range(0, len(data.x_forget), batch_size):
        xb, yb = data.x_forget[i:i + batch_size].to(device), data.y_forget[i:i + batch_size].to(device)
        (-F.cross_entropy(model(xb), yb, reduction="sum")).backward()
    grads = {n: p.grad.detach().abs() for n, p in model.named_parameters() if p.grad is not None}
    flat = torch.cat([g.flatten() for g in grads.values()])
    k = max(1, int(round(ratio * flat.numel())))
    threshold = torch.topk(flat, k).values.min()
    model.zero_grad(set_to_none=True)
    return {n: (g >= threshold) for n, g in grads.items()}


@dataclass(frozen=True)
class Method:
    """One registered method: its config class and ``run(original, data, cfg, *, seed, device,
    callback) -> (model, info)``."""

    name: str
    config: type
    run: Callable[..., tuple[nn.Module, dict]]


METHODS: dict[str, Method] = {}


def register_method(name: str, config: type) -> Callable:
    """Decorator: ``@register_method("ga", GAConfig)`` on ``run(original, data, cfg, *, seed, device, callback)``."""

    def deco(run):
        if name in METHODS and METHODS[name].run is not run:
            raise ValueError(f"unlearning method {name!r} is registered twice")
        METHODS[name] = Method(name, config, run)
        return run

    return deco


def _load_methods() -> None:
    from . import ltd  # noqa: F401  (registers "ltd")


def method(name: str) -> Method:
    _load_methods()
    if name not in METHODS:
        raise KeyError(f"unknown unlearning method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def unlearn(original: nn.Module, data: UnlearnData, cfg: LoopConfig, *, seed: int, device: str = "cpu",
            callback: Callback | None = None) -> tuple[nn.Module, dict]:
    """Run the method ``cfg.kind`` from a copy of ``original``; returns (model, info with ``rte_s``)."""
    entry = method(cfg.kind)
    if not isinstance(cfg, entry.config):
        raise TypeError(f"method {cfg.kind!r} takes a {entry.config.__name__}, not a {type(cfg).__name__}")
    return entry.run(original, data, cfg, seed=seed, device=device, callback=callback)


def _start(original: nn.Module, device: str) -> tuple[nn.Module, Stopwatch]:
    watch = Stopwatch()
    return copy.deepcopy(original).to(device), watch


def _finish(model: nn.Module, watch: Stopwatch, info: dict) -> tuple[nn.Module, dict]:
    model.eval()
    info["rte_s"] = watch.total()
    return model, info


def _one_loop(original, data, cfg: LoopConfig, *, seed, device, callback, **loop) -> tuple[nn.Module, dict]:
    """A method that is one ``mixed_epochs`` run from a copy of the original."""
    model, watch = _start(original, device)
    info = mixed_epochs(model, data, cfg, seed=seed, device=device, watch=watch, callback=callback, **loop)
    return _finish(model, watch, info)


def _random_label_mix(cfg: RLConfig) -> dict:
    return {"use_forget": True, "use_retain": cfg.retain_fraction > 0, "retain_fraction": cfg.retain_fraction,
            "label_mode": cfg.label_mode}


@register_method("ga", GAConfig)
def gradient_ascent(original, data, cfg: GAConfig, *, seed, device="cpu", callback=None):
    return _one_loop(original, data, cfg, seed=seed, device=device, callback=callback, batch_loss=_neg_ce,
                     use_forget=True, use_retain=False)


@register_method("ga_ft", GAFTConfig)
def gradient_ascent_fine_tune(original, data, cfg: GAFTConfig, *, seed, device="cpu", callback=None):
    model, watch = _start(original, device)
    info = mixed_epochs(model, data, cfg, batch_loss=_neg_ce, use_forget=True, use_retain=False, seed=seed,
                        device=device, watch=watch, callback=callback)
    ft_cfg = FTConfig(epochs=cfg.ft_epochs, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    ft = mixed_epochs(model, data, ft_cfg, batch_loss=_ce, use_forget=False, use_retain=True, lr=cfg.ft_lr,
                      batch_size=cfg.ft_batch_size, seed=seed + 1, device=device, watch=watch,
                      callback=_shifted(callback, info["epochs_run"]))
    info = {**info, "ft_steps": ft["steps"], "steps": info["steps"] + ft["steps"]}
    return _finish(model, watch, info)


@register_method("rl", RLConfig)
def random_labels_method(original, data, cfg: RLConfig, *, seed, device="cpu", callback=None):
    return _one_loop(original, data, cfg, seed=seed, device=device, callback=callback, batch_loss=_ce_random,
                     **_random_label_mix(cfg))


@register_method("ft", FTConfig)
def fine_tune(original, data, cfg: FTConfig, *, seed, device="cpu", callback=None):
    return _one_loop(original, data, cfg, seed=seed, device=device, callback=callback, batch_loss=_ce,
                     use_forget=False, use_retain=True)


@register_method("salun", SalUnConfig)
def salun(original, data, cfg: SalUnConfig, *, seed, device="cpu", callback=None):
    model, watch = _start(original, device)
    mask = saliency_mask(model, data, cfg.mask_ratio, device)
    params = dict(model.named_parameters())
    theta0 = {n: p.detach().clone() for n, p in params.items()}

    def apply_mask(stage: str) -> None:
        with torch.no_grad():
            for n, p in params.items():
                if stage == "grad" and p.grad is not None:
                    p.grad.mul_(mask[n])
                elif stage == "step":  # masked-out weights stay at θ0 (weight decay included)
                    p.copy_(torch.where(mask[n], p, theta0[n]))

    info = mixed_epochs(model, data, cfg, batch_loss=_ce_random, after_step=apply_mask, seed=seed, device=device,
                        watch=watch, callback=callback, **_random_label_mix(cfg))
    info["mask_share"] = float(sum(m.sum() for m in mask.values()) / sum(m.numel() for m in mask.values()))
    return _finish(model, watch, info)


def method_config(name: str, **settings) -> LoopConfig:
    """The config of method ``name`` with ``settings`` over its defaults (``kind`` is set)."""
    return replace(method(name).config(), **settings)
