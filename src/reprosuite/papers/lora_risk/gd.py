"""Claim 9 / fig_gd: gradient-trained peft LoRA on an ``nn.Linear`` vs the closed-form optimum.

The pretrained map A0 is the weight of a bias-free ``nn.Linear(dx, dy)``; peft wraps it with a
rank-r adapter (scaling α/r = 1) and full-batch L-BFGS (or plain GD) minimises the squared
loss. Every update lies in the span of the gradients, so the part of A_init orthogonal to
span(X) survives as B·A_init·P⊥ (docs/papers/lora_risk.md, "Gradient descent"): visible when
n < dx, gone when A_init is tiny.

Antithetic pairs (n < dx): each seed also trains from A_init(2P − I), which flips the sign of the
null-space part A_init·P⊥ only. The gradients of B and of A·P never see A·P⊥ (X = P X), so both runs
follow the same path for B and A·P and end at W± = A0 + B·A·P ± B·A_init·P⊥; the mean of the pair's
risks is ‖B·A·P − Δ‖² + ‖B·A_init·P⊥‖², the cross term 2⟨B·A·P − Δ, B·A_init·P⊥⟩ cancels exactly.
"""

from __future__ import annotations

import time

import numpy as np

from . import theory


class _Linear:
    """Factory of the torch module (kept in a function scope so importing gd stays cheap)."""

    @staticmethod
    def make(a0):
        import torch
        from torch import nn

        class LinearMap(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(a0.shape[1], a0.shape[0], bias=False, dtype=torch.float64)
                with torch.no_grad():
                    self.proj.weight.copy_(torch.as_tensor(a0))

            def forward(self, x):  # x (n, dx) -> (n, dy)
                return self.proj(x)

        return LinearMap()


def lora_linear(a0: np.ndarray, *, rank: int, init_scale: float = 1.0):
    """peft LoRA (r = rank, α = rank, no dropout) on a linear map with weight a0 (dy, dx)."""
    import torch
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_Linear.make(a0), LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0,
                                                        target_modules=["proj"]))
    model = model.double()
    with torch.no_grad():
        model.base_model.model.proj.lora_A["default"].weight.mul_(init_scale)
    return model


def fit(model, x: np.ndarray, y: np.ndarray, *, optimizer: str, max_iter: int, warmup_steps: int) -> int:
    """Full-batch minimisation of ½‖Y − W X‖² over the trainable parameters; returns iterations.

    Phase 1 (always): gradient descent with the local step 1/(λ_max(XXᵀ) Σ‖θ‖² + ‖G Xᵀ‖), the
    inverse of a bound on the curvature of the factorised loss; it escapes the B = 0 saddle
    without unbalancing B and A. Phase 2 (``lbfgs``): L-BFGS with a strong-Wolfe line search
    to converge to machine precision. Both keep every update in the span of the gradients.
    """
    import torch

    xt, yt = torch.as_tensor(x.T), torch.as_tensor(y.T)  # (n, dx), (n, dy)
    params = [p for p in model.parameters() if p.requires_grad]
    lam = float(torch.linalg.matrix_norm(xt, ord=2)) ** 2  # λ_max(XXᵀ)

    def loss_fn():
        return 0.5 * ((model(xt) - yt) ** 2).sum()

    steps = warmup_steps if optimizer == "lbfgs" else max_iter
    for _ in range(steps):
        resid = model(xt) - yt  # (n, dy)
        loss = 0.5 * (resid**2).sum()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            if len(params) == 1:  # a plain linear map: curvature λ_max(XXᵀ)
                step = 1.0 / lam
            else:  # W = A0 + BA: curvature ≤ λ_max(‖A‖² + ‖B‖²) + ‖G Xᵀ‖
                cross = float(torch.linalg.matrix_norm(resid.T @ xt))  # Frobenius ≥ spectral: safe
                step = 1.0 / (lam * sum(float(p.norm()) ** 2 for p in params) + cross)
            for p, g in zip(params, grads):
                p.sub_(step * g)
    if optimizer != "lbfgs":
        return steps
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, max_eval=2 * max_iter, history_size=50,
                            tolerance_grad=1e-11, tolerance_change=1e-16, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)
    return steps + int(opt.state[opt._params[0]].get("n_iter", max_iter))


def effective_weight(model) -> np.ndarray:
    """W = A0 + (α/r) B A of a peft model, or the weight of a plain linear map (dy, dx)."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model.proj.weight.detach().numpy().copy()


def run_gd(cfg, ctx, shard):
    """Rows per (n, seed, method): closed form vs peft-trained LoRA at each init scale, and FFT."""
    import torch

    c = cfg.gd
    ctx.use_dataset("synthetic_linear")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 40×n matrices: extra threads only contend
    try:
        for n in shard["ns"]:  # one job: one start-up (torch, peft) for every n
            yield from _run(c, ctx, int(n))
    finally:
        torch.set_num_threads(threads)


def _run(c, ctx, n: int):
    import torch

    for i in ctx.progress(range(c.n_seeds), desc=f"gd n={n}"):
        a0, delta, x, e = theory.draw_task(c.base_seed + i, dx=c.dx, dy=c.dy, n=n, true_rank=c.true_rank,
                                           spectrum="gaussian", sigma=c.sigma)
        y = (a0 + delta) @ x + e
        resid = y - a0 @ x
        base = {"n": n, "mc_seed": c.base_seed + i, "dx": c.dx, "dy": c.dy, "lora_rank": c.rank,
                "sigma": c.sigma, "true_rank": c.true_rank, "optimizer": c.optimizer}
        d_l = theory.lora_estimate(resid, x, rank=c.rank)
        d_f = theory.fft_estimate(resid, x)
        yield dict(base, method="lora_closed", init_scale=0.0, risk=float(np.sum((d_l - delta) ** 2)),
                   train_loss=theory.training_loss(d_l, resid, x), iterations=0, wall_time_s=0.0)
        yield dict(base, method="fft_closed", init_scale=0.0, risk=float(np.sum((d_f - delta) ** 2)),
                   train_loss=theory.training_loss(d_f, resid, x), iterations=0, wall_time_s=0.0)
        flip = None
        if n < c.dx and c.antithetic:  # 2P − I with P the projection on span(X) in input space
            ux = np.linalg.svd(x, full_matrices=False)[0]
            flip = torch.as_tensor(2 * ux @ ux.T - np.eye(c.dx))
        for scale in c.init_scales:
            for antithetic in (False, True) if flip is not None else (False,):
                from reprosuite.models import seeded

                # peft draws A from torch's global RNG: the same A_init for both members of a pair
                model = seeded(ctx.seed_for(f"gd-init-{n}-{i}"),
                               lambda a0=a0, scale=scale: lora_linear(a0, rank=c.rank, init_scale=scale))
                if antithetic:
                    with torch.no_grad():
                        a = model.base_model.model.proj.lora_A["default"].weight
                        a.copy_(a @ flip)
                start = time.time()
                iters = fit(model, x, y, optimizer=c.optimizer, max_iter=c.max_iter, warmup_steps=c.warmup_steps)
                w = effective_weight(model)
                yield dict(base, method="lora_gd", init_scale=float(scale), antithetic=bool(antithetic),
                           risk=float(np.sum((w - a0 - delta) ** 2)),
                           dist_to_closed=float(np.sum((w - a0 - d_l) ** 2)),  # = ‖B A_init P⊥‖² when converged
                           train_loss=theory.training_loss(w - a0, resid, x), iterations=iters,
                           wall_time_s=time.time() - start)
        model = _Linear.make(a0)
        start = time.time()
        iters = fit(model, x, y, optimizer=c.optimizer, max_iter=c.max_iter, warmup_steps=c.warmup_steps)
        w = effective_weight(model)
        yield dict(base, method="fft_gd", init_scale=0.0, risk=float(np.sum((w - a0 - delta) ** 2)),
                   train_loss=theory.training_loss(w - a0, resid, x), iterations=iters,
                   wall_time_s=time.time() - start)
