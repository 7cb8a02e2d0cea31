"""Fig. 2 of the topology paper: logistic and ridge regression with fixed-p families.

Homogeneous data: every node samples its minibatch from the whole training set. Every member of
a family runs with the same minibatch stream (common random numbers), so differences between
members come from the mixing matrix only. Losses are recorded at x̄ and averaged over nodes.

One job runs every model, family member and seed (``fig2_seeds``), a model at a time in one
``gossip.linear.LinearFamily``: per member the n nodes of every seed (seed-major slots, W
block-diagonal with one block per seed); each round's minibatches are gathered once and read by
every member, and the members' logits and weight gradients are one batched matmul each. Each
seed draws from its own generator (the ``batches`` stage of that seed, as a job per seed did), so
a (member, seed) run computes what it computed alone. The gossip W X uses the structure of the
family members (low rank plus a multiple of I, Kronecker products; ``gossip.operators``): the
same products as the dense matmul, up to float rounding, with 3-8x fewer operations.
"""

from __future__ import annotations

import torch
from torch import nn

from reprosuite.data import image_dataset
from reprosuite.gossip import spectra, topologies
from reprosuite.gossip.linear import LinearFamily
from reprosuite.gossip.operators import mixing_operator
from reprosuite.gossip.simulator import cross_entropy, reuse_freed_memory
from reprosuite.runner import derive_seed


def ridge_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example (1/2) ‖out − onehot(y)‖²: (..., C), (...) -> (...) (l2 is weight decay)."""
    target = nn.functional.one_hot(y, out.shape[-1]).to(out.dtype)
    return 0.5 * ((out - target) ** 2).sum(-1)


def ridge_moments(x: torch.Tensor, y: torch.Tensor, classes: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Second moments of the data for ``ridge_losses`` (float64): S = X̃ᵀX̃/N, M = TᵀX̃/N, tr(TᵀT)/N with
    X̃ = [x, 1] and T the one-hot targets."""
    xt = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64, device=x.device)], dim=1)  # (N, F+1)
    t = nn.functional.one_hot(y, classes).double()  # (N, C)
    return xt.T @ xt / len(x), t.T @ xt / len(x), float((t * t).sum()) / len(x)


def ridge_losses(theta: torch.Tensor, moments, classes: int) -> torch.Tensor:
    """Mean ridge loss (1/2N) Σ_e ‖A x̃_e − t_e‖² of every model A = [W | b] in theta (k, C·F + C),
    from the data's second moments: ½ (tr(A S Aᵀ) − 2 tr(A Mᵀ) + τ). The same quantity as the mean
    of ``ridge_loss`` over the data, in float64 with (F+1)² instead of N·F operations per output. # (k,)"""
    s, m, tau = moments
    k, f = len(theta), s.shape[0] - 1
    a = torch.cat([theta[:, : classes * f].double().view(k, classes, f), theta[:, classes * f:].double()[..., None]], 2)
    a_s = (a.reshape(k * classes, f + 1) @ s).view(k, classes, f + 1)
    return 0.5 * ((a_s * a).sum(dim=(1, 2)) - 2 * (a * m).sum(dim=(1, 2)) + tau)


def _features(data) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(data.x_train.reshape(len(data.x_train), -1), dtype=torch.float32) / 255.0  # (N, features)
    return x, torch.as_tensor(data.y_train)


def run_model(c, *, model: str, members, seeds, x, y, generators, device: str, progress=iter):
    """Train every (family, member) of ``members`` for every seed; yield a record per (member, seed)
    every ``eval_every`` iterations. ``generators[s]`` draws seed s's minibatch indices."""
    n, s_count = c.n_nodes, len(seeds)
    lr = c.lr_logistic if model == "logistic" else c.lr_ridge
    l2 = 0.0 if model == "logistic" else c.l2_ridge
    loss_fn = cross_entropy if model == "logistic" else ridge_loss
    # convex problems: every node starts at x^(0) = 0
    fam = LinearFamily(len(members), n * s_count, x.shape[1], int(y.max()) + 1, loss_fn=loss_fn, weight_decay=l2,
                       device=device)
    mixing, bases = [], []
    for family, member in members:
        w = topologies.family_matrix(family, member, n=n)
        lams = spectra.eigenvalues(w)
        mixing.append(mixing_operator(w, repeat=s_count, device=device))  # I_seeds ⊗ W
        bases.append({"family": family, "member": member, "topology": f"{family}:{member}", "model": model,
                      "n": n, "p": spectra.spectral_gap(lams), "T_gap": spectra.t_gap(lams),
                      "T_new": spectra.t_new(lams), "alpha": "iid", "lr": lr, "l2": l2, "batch_size": c.batch_size})
    seed_slots = [slice(i * n, (i + 1) * n) for i in range(s_count)]
    moments = ridge_moments(x, y, fam.c) if model == "ridge" else None  # ridge: node losses from moments
    for it in progress(range(c.iterations + 1)):
        if it % c.eval_every == 0 or it == c.iterations:
            for m, base in enumerate(bases):
                # (n * seeds,): every node's mean training loss
                loss_n = fam.node_losses(m, x, y) if moments is None else ridge_losses(fam.params(m), moments, fam.c)
                for seed, sl in zip(seeds, seed_slots):
                    theta = fam.params(m, sl)  # (n, D)
                    bar = theta.mean(dim=0)
                    reg_x = 0.5 * l2 * float((bar**2).sum())
                    reg_n = 0.5 * l2 * float((theta**2).sum(dim=1).mean())
                    yield {**base, "seed": seed, "iteration": it,
                           "loss_xbar": float(fam.mean_loss(m, sl, x, y)) + reg_x,
                           "loss_node_mean": float(loss_n[sl].mean()) + reg_n,
                           "consensus_distance": float(((theta - bar) ** 2).sum(dim=1).mean())}
        if it == c.iterations:
            break
        # (seeds * n, B) with replacement: seed s's rows come from its own generator
        idx = torch.cat([torch.randint(0, len(x), (n, c.batch_size), generator=g) for g in generators]).to(x.device)
        rows = idx.reshape(-1)
        fam.step(x.index_select(0, rows).reshape(*idx.shape, -1), y.index_select(0, rows).reshape(idx.shape),
                 lr=lr, mixing=mixing)


def run_fig2(cfg, ctx, shard):
    reuse_freed_memory()  # a process per job: no page faults for the big per-round tensors
    from reprosuite.papers.topology import fig2_seeds

    c = cfg.fig2
    data = image_dataset(c.dataset, ctx.data_dir)
    ctx.use_dataset(data.name, stand_in_for="mnist" if data.name != "mnist" else None)
    x, y = _features(data)
    x, y = x.to(ctx.device), y.to(ctx.device)
    of = {"kronecker": c.kronecker_members, "spectral": c.spectral_members}
    members = [(family, member) for family in shard["families"] for member in of[family]]
    seeds = fig2_seeds(cfg)
    for model in shard["models"]:
        # seed s's minibatch stream: the 'batches' stage of a job with that seed (ctx.seed_for), the
        # same for every model and member (common random numbers)
        generators = [torch.Generator().manual_seed(derive_seed(ctx.paper, ctx.experiment, s, "batches")) for s in seeds]
        yield from run_model(c, model=model, members=members, seeds=seeds, x=x, y=y, generators=generators,
                             device=ctx.device, progress=lambda it, m=model: ctx.progress(it, desc=f"fig2 {m}"))


__all__ = ["run_fig2", "ridge_loss"]
