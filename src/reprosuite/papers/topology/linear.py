"""Fig. 2 of the topology paper: logistic and ridge regression with fixed-p families.

Homogeneous data: every node samples its minibatch from the whole training set. Every member of
a family runs with the same minibatch stream (common random numbers), so differences between
members come from the mixing matrix only. Losses are recorded at x̄ and averaged over nodes.
"""

from __future__ import annotations

import torch
from torch import nn

from reprosuite.data import image_dataset
from reprosuite.gossip import spectra, topologies
from reprosuite.gossip.simulator import GossipSimulator, cross_entropy


def ridge_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example (1/2) ‖out − onehot(y)‖²: (..., C), (...) -> (...) (l2 is weight decay)."""
    target = nn.functional.one_hot(y, out.shape[-1]).to(out.dtype)
    return 0.5 * ((out - target) ** 2).sum(-1)


def _features(data) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(data.x_train.reshape(len(data.x_train), -1), dtype=torch.float32) / 255.0  # (N, features)
    return x, torch.as_tensor(data.y_train)


def run_family(c, *, model: str, family: str, member: str, x, y, generator_fn, device: str):
    """Train one family member; yield a record every ``eval_every`` iterations."""
    w = topologies.family_matrix(family, member, n=c.n_nodes)
    lams = spectra.eigenvalues(w)
    lr = c.lr_logistic if model == "logistic" else c.lr_ridge
    l2 = 0.0 if model == "logistic" else c.l2_ridge
    loss_fn = cross_entropy if model == "logistic" else ridge_loss
    linear = nn.Linear(x.shape[1], int(y.max()) + 1)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)  # convex problems: every node starts at x^(0) = 0
    sim = GossipSimulator(linear, n_slots=c.n_nodes, loss_fn=loss_fn, weight_decay=l2, device=device)
    wt = sim.as_matrix(w)
    gen = generator_fn()
    base = {"family": family, "member": member, "topology": f"{family}:{member}", "model": model,
            "n": c.n_nodes, "p": spectra.spectral_gap(lams), "T_gap": spectra.t_gap(lams),
            "T_new": spectra.t_new(lams), "alpha": "iid", "lr": lr, "l2": l2, "batch_size": c.batch_size}
    for it in range(c.iterations + 1):
        if it % c.eval_every == 0 or it == c.iterations:
            loss_x, _ = sim.evaluate(x, y, at="xbar")
            loss_n, _ = sim.evaluate(x, y, at="nodes")
            reg_x = 0.5 * l2 * float((sim.xbar() ** 2).sum())
            reg_n = 0.5 * l2 * float((sim.flat**2).sum(dim=1).mean())
            yield {**base, "iteration": it, "loss_xbar": float(loss_x) + reg_x,
                   "loss_node_mean": float(loss_n.mean()) + reg_n, "consensus_distance": sim.consensus_distance()}
        if it == c.iterations:
            break
        idx = torch.randint(0, len(x), (c.n_nodes, c.batch_size), generator=gen)  # (n, B), with replacement
        sim.step(x[idx], y[idx], lr=lr, w=wt)


def run_fig2(cfg, ctx, shard):
    c = cfg.fig2
    data = image_dataset(c.dataset, ctx.data_dir)
    ctx.use_dataset(data.name, stand_in_for="mnist" if data.name != "mnist" else None)
    x, y = _features(data)
    x, y = x.to(ctx.device), y.to(ctx.device)
    members = {"kronecker": c.kronecker_members, "spectral": c.spectral_members}[shard["family"]]
    for member in ctx.progress(members, desc="fig2"):
        yield from run_family(c, model=shard["model"], family=shard["family"], member=member, x=x, y=y,
                              generator_fn=lambda: ctx.torch_generator("batches"), device=ctx.device)


__all__ = ["run_fig2", "ridge_loss"]
