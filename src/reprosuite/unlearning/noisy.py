"""Noisy fine-tuning (NFT) and block-wise NFT as step loops (certified paper; §3.2-3.3 of
``docs/papers/certified.md``; fig1, fig2, tab1).

One noisy phase on block i (the paper's code, M = ``m``): repeat T_ft/(m − 1) times
  (m − 1) gradient steps   x ← x − ηλ Pᵢx − η clip_{C₁,ᵢ}(Pᵢ g)   (plain GD, global L2 clip over
                            the block's gradient, minibatch of the retain set),
  one noise step           x ← x + Pᵢ ξ,  ξ ~ N(0, σ_inj² I),
with an evaluation after every noise step. Block-NFT runs the phases of blocks 0..k−1 in turn
(optionally a short noise-free repair of all parameters between blocks), then ordinary SGD
fine-tuning on the retain set up to a total step budget. ``use_loss_gradient=False`` keeps
weight decay and noise only (the mechanism test of claim 6b).

``ParamView`` is the flat-parameter view of a model (distances, perturbations).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .accounting import Plan, injection_sigma
from .blocks import Blocks, Subspace

EvalFn = Callable[[int, str, int, nn.Module], None]  # (global step, phase, block, model)


class ParamView:
    """The trainable parameters of a model as a name -> tensor dict and as one flat vector."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.named = {n: p for n, p in model.named_parameters() if p.requires_grad}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named.items()}

    def flat(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.named.values()])

    def set_flat(self, vec: torch.Tensor) -> None:
        with torch.no_grad():
            i = 0
            for p in self.named.values():
                p.copy_(vec[i:i + p.numel()].view_as(p))
                i += p.numel()

    def diff(self, other: nn.Module) -> dict[str, torch.Tensor]:
        theirs = dict(other.named_parameters())
        return {n: p.detach() - theirs[n].detach().to(p.device) for n, p in self.named.items()}

    def distance(self, other: nn.Module) -> float:
        """‖x − y‖₂ over all trainable parameters (float64 accumulation)."""
        return float(torch.sqrt(sum((d.double() ** 2).sum() for d in self.diff(other).values())))


@dataclass(frozen=True)
class NoisySchedule:
    """Step-loop settings shared by every block: η, λ, m, minibatch, fine-tuning recipe."""

    eta: float
    lam: float
    m: int = 2
    batch_size: int = 60
    use_loss_gradient: bool = True
    bn_mode: str = "train"  # BatchNorm running statistics during noisy phases: train (code) / eval
    repair_steps: int = 0  # noise-free full-parameter SGD steps after each block but the last
    ft_lr: float = 0.01
    ft_momentum: float = 0.9
    ft_weight_decay: float = 5e-4
    ft_batch_size: int = 60


class RetainSampler:
    """Minibatches of the retain set drawn with replacement-free reshuffles from a generator."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator, device: str):
        self.x, self.y, self.bs, self.gen, self.device = x, y, batch_size, generator, device
        self.perm, self.pos = torch.randperm(len(x), generator=generator), 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pos + self.bs > len(self.perm):
            self.perm, self.pos = torch.randperm(len(self.x), generator=self.gen), 0
        idx = self.perm[self.pos:self.pos + self.bs]
        self.pos += self.bs
        return self.x.index_select(0, idx).to(self.device), self.y.index_select(0, idx).to(self.device)


def _step_deltas(model: nn.Module, sub: Subspace, sched: NoisySchedule, c1: float,
                 sampler: RetainSampler | None) -> list[torch.Tensor]:
    """The change of one gradient step in block coordinates: −ηλB − η clip_{C₁}(Aᵀg) (one list
    entry per slot of ``sub``; the gradient's norm in coordinates is ‖Pᵢg‖, float32)."""
    if not sched.use_loss_gradient:
        return torch._foreach_mul(sub.coef, -sched.eta * sched.lam) if sub.coef else []
    xb, yb = sampler.next()
    if not sub.params:  # an empty block: the minibatch is drawn all the same
        return []
    loss = F.cross_entropy(model(xb), yb)
    grads = torch.autograd.grad(loss, sub.params)  # the block's parameters only
    with torch.no_grad():
        g = [sub.read(j, t) for j, t in enumerate(grads)]  # fresh tensors: updated in place below
        gnorm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(g))))
        torch._foreach_mul_(g, -sched.eta * min(1.0, c1 / max(gnorm, 1e-30)))
        torch._foreach_add_(g, sub.coef, alpha=-sched.eta * sched.lam)
    return g


def noisy_phase(model: nn.Module, blocks: Blocks, i: int, *, sigma: float, c1: float, t_ft: int,
                sched: NoisySchedule, sampler: RetainSampler, generator: torch.Generator,
                step0: int = 0, on_eval: EvalFn | None = None) -> int:
    """Noisy fine-tuning of block i for ``t_ft`` gradient steps (one noise step every m − 1 of
    them); returns the global step reached. Parameters outside block i are untouched.

    Computed in the block's coordinates (``blocks.Subspace``): decay scales them, the gradient is
    read into them with one matmul per parameter, the noise is drawn in them (the same numbers
    as ``Blocks.noise`` draws) and each change is written back with one matmul per parameter; the
    noise step is folded into the write of the gradient step before it (nothing reads the model
    in between)."""
    view = ParamView(model)
    model.train(sched.bn_mode == "train")
    sigma_inj = injection_sigma(sigma, eta=sched.eta, lam=sched.lam, m=sched.m)
    sub = Subspace(blocks, i, view.named)
    noise = [torch.empty(s, dtype=p.dtype, device=p.device) for s, p in zip(sub.noise_shapes, sub.params)]
    step = step0
    for _ in range(t_ft // (sched.m - 1)):
        for j in range(sched.m - 1):
            deltas = _step_deltas(model, sub, sched, c1, sampler)
            step += 1
            with torch.no_grad():
                if j == sched.m - 2 and noise:  # the noise step follows: x ← x + Pᵢξ
                    for z in noise:
                        torch.randn(z.shape, generator=generator, out=z)
                    torch._foreach_add_(deltas, noise, alpha=sigma_inj)
                for s, d in enumerate(deltas):
                    sub.write(s, d)
        step += 1
        if on_eval is not None:
            on_eval(step, "noisy", i, model)
            model.train(sched.bn_mode == "train")
    return step


def finetune(model: nn.Module, steps: int, *, sched: NoisySchedule, sampler: RetainSampler, step0: int = 0,
             log_every: int = 0, on_eval: EvalFn | None = None, phase: str = "finetune") -> int:
    """Ordinary SGD (momentum, weight decay) on all parameters for ``steps`` steps."""
    if steps <= 0:
        return step0
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=sched.ft_lr, momentum=sched.ft_momentum,
                          weight_decay=sched.ft_weight_decay, fused=True)  # one kernel per step (float rounding only)
    step = step0
    for j in range(steps):
        xb, yb = sampler.next()
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if on_eval is not None and log_every and ((j + 1) % log_every == 0 or j + 1 == steps):
            on_eval(step, phase, -1, model)
            model.train()
    return step


def block_nft(model: nn.Module, blocks: Blocks, plan: Plan, *, sched: NoisySchedule,
              retain: tuple[torch.Tensor, torch.Tensor], max_steps: int, seed: int, device: str = "cpu",
              log_every: int = 20, on_eval: EvalFn | None = None) -> dict:
    """Run block-wise NFT in place (k = 1: plain NFT) then fine-tune to ``max_steps`` total steps.

    Returns counts: noisy steps, repair steps, fine-tuning steps and the step where noise ended.
    Randomness: minibatches from ``seed``, noise from ``seed + 1``.
    """
    if len(plan.blocks) != blocks.k:
        raise ValueError(f"plan has {len(plan.blocks)} blocks, the split has {blocks.k}")
    sampler = RetainSampler(*retain, sched.batch_size, torch.Generator().manual_seed(seed), device)
    ft_sampler = RetainSampler(*retain, sched.ft_batch_size, torch.Generator().manual_seed(seed + 2), device)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
    step, repair = 0, 0
    for b in plan.blocks:
        if b.steps:
            step = noisy_phase(model, blocks, b.block, sigma=b.sigma, c1=b.c1, t_ft=b.t_ft, sched=sched,
                               sampler=sampler, generator=noise_gen, step0=step, on_eval=on_eval)
        if sched.repair_steps and b.block < blocks.k - 1:
            step = finetune(model, sched.repair_steps, sched=sched, sampler=ft_sampler, step0=step,
                            log_every=sched.repair_steps, on_eval=on_eval, phase="repair")
            repair += sched.repair_steps
    noise_end = step
    ft_steps = max(0, max_steps - step)
    step = finetune(model, ft_steps, sched=sched, sampler=ft_sampler, step0=step, log_every=log_every, on_eval=on_eval)
    model.eval()
    return {"noisy_steps": noise_end - repair, "repair_steps": repair, "ft_steps": ft_steps,
            "noise_end_step": noise_end, "total_steps": step}


def perturbation_energy(model: nn.Module, blocks: Blocks, plan: Plan, *, sched: NoisySchedule, seed: int,
                        device: str = "cpu") -> float:
    """‖x_end − x₀‖² after all noisy phases with the loss gradient off (weight decay + noise only).

    Nothing reads the model inside a phase, so each block's phase runs on its coordinates alone
    (decay: a scaling; noise: drawn in them, the numbers ``noisy_phase`` would draw) and is
    written into the model once at its end."""
    view = ParamView(model)
    x0 = view.flat().clone()
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    a = 1.0 - sched.eta * sched.lam
    with torch.no_grad():
        for b in plan.blocks:
            if not b.steps:
                continue
            sub = Subspace(blocks, b.block, view.named)
            sigma_inj = injection_sigma(b.sigma, eta=sched.eta, lam=sched.lam, m=sched.m)
            coef = [c.clone() for c in sub.coef]
            noise = [torch.empty_like(c) for c in coef]
            for _ in range(b.t_ft // (sched.m - 1)):
                for _ in range(sched.m - 1 if coef else 0):
                    torch._foreach_mul_(coef, a)
                for z in noise:
                    torch.randn(z.shape, generator=gen, out=z)
                if coef:
                    torch._foreach_add_(coef, noise, alpha=sigma_inj)
            for j, c in enumerate(coef):
                sub.write(j, c - sub.coef[j])
    d = view.flat() - x0
    view.set_flat(x0)
    return float((d.double() ** 2).sum())


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str = "cpu", batch: int = 4096) -> float:
    was = model.training
    model.eval()
    with torch.inference_mode():
        correct = sum(int((model(x[i:i + batch].to(device)).argmax(1).cpu() == y[i:i + batch]).sum())
                      for i in range(0, len(x), batch))
    model.train(was)
    return correct / max(len(x), 1)


def auc(values: list[float]) -> float:
    """Mean accuracy over every logged step (the 'AUC' of claim 7)."""
    return float(np.mean(values)) if values else float("nan")
