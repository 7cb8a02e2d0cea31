"""Fig. 3 of the topology paper: LeNet-GN D-SGD on Fashion-MNIST, accuracy vs T_new.

One job per (topology, α, seed). The Dirichlet split and the initial model depend on (seed, α)
only, so every topology of a seed starts from the same model and data shards. Resumable: the
simulator state, the batch generator and the records so far are checkpointed every epoch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from reprosuite.data import image_dataset, stratified_indices
from reprosuite.gossip import spectra, topologies
from reprosuite.gossip.partition import dirichlet_shards
from reprosuite.gossip.simulator import GossipSimulator, NodeBatches, cross_entropy
from reprosuite.models.lenet import LeNetGN

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST pixel statistics


def _images(x: np.ndarray, device: str) -> torch.Tensor:
    x = torch.as_tensor(np.array(x), dtype=torch.float32, device=device) / 255.0
    return ((x - MEAN) / STD).unsqueeze(1)  # (N, 1, H, W)


def learning_rate(c, *, round_: int, rounds_per_epoch: int) -> float:
    """Linear warm-up from warmup_lr, then cosine from lr to lr_min (per round)."""
    warm = c.warmup_epochs * rounds_per_epoch
    total = c.epochs * rounds_per_epoch
    if round_ < warm:
        return c.warmup_lr + (c.lr - c.warmup_lr) * round_ / warm
    frac = (round_ - warm) / max(1, total - warm)
    return c.lr_min + 0.5 * (c.lr - c.lr_min) * (1.0 + math.cos(math.pi * frac))


def run_fig3(cfg, ctx, shard):
    c = cfg.fig3
    data = image_dataset(c.dataset, ctx.data_dir)
    ctx.use_dataset(data.name, stand_in_for=None)
    train = stratified_indices(data.y_train, c.n_train or len(data.y_train), seed=0)
    x_train, y_train = _images(data.x_train[train], ctx.device), torch.as_tensor(data.y_train[train], device=ctx.device)
    test = stratified_indices(data.y_test, c.n_test or len(data.y_test), seed=0)
    x_test, y_test = _images(data.x_test[test], ctx.device), torch.as_tensor(data.y_test[test], device=ctx.device)
    sub = torch.as_tensor(stratified_indices(y_test.cpu().numpy(), c.n_test_nodes, seed=0), device=ctx.device)
    alpha, name, n = float(shard["alpha"]), shard["topology"], c.n_nodes
    shards = dirichlet_shards(data.y_train[train], n_nodes=n, alpha=alpha, partitioner=c.partitioner,
                              seed=ctx.seed_for(f"partition-a{alpha:g}"))
    batches = NodeBatches(shards, batch_size=c.batch_size, device=ctx.device)
    w = topologies.mixing_matrix(name, n=n)
    lams = spectra.eigenvalues(w)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed_for(f"init-a{alpha:g}"))  # same x^(0) for every topology
        model = LeNetGN(data.n_classes)
    sim = GossipSimulator(model, n_slots=n, loss_fn=cross_entropy, momentum=c.momentum,
                          weight_decay=c.weight_decay, mix_momentum=c.mix_momentum, device=ctx.device)
    wt = sim.as_matrix(w)
    gen = ctx.torch_generator(f"batches-a{alpha:g}", device=ctx.device)
    base = {"topology": name, "n": n, "p": spectra.spectral_gap(lams), "T_gap": spectra.t_gap(lams),
            "T_new": spectra.t_new(lams), "alpha": alpha, "lr": c.lr, "partitioner": c.partitioner,
            "batch_size": c.batch_size, "momentum": c.momentum, "train_size": len(train)}
    rows, start = [], 0
    state = ctx.load_state()
    if state is not None:
        sim.load_state_dict(state["sim"])
        gen.set_state(state["generator"])
        rows, start = state["rows"], state["epoch"]
        yield from rows
    rpe = batches.rounds_per_epoch
    for epoch in ctx.progress(range(start, c.epochs), total=c.epochs - start, desc=f"fig3 {ctx.shard}"):
        losses = []
        for r, idx in enumerate(batches.epoch(gen)):  # idx (n, B)
            lr = learning_rate(c, round_=epoch * rpe + r, rounds_per_epoch=rpe)
            losses.append(sim.step(x_train[idx], y_train[idx], lr=lr, w=wt))
        row = {**base, "epoch": epoch + 1, "rounds": (epoch + 1) * rpe,
               "train_loss_node_mean": float(torch.stack(losses).mean()), "consensus_distance": sim.consensus_distance()}
        if (epoch + 1) % c.eval_every == 0 or epoch + 1 == c.epochs:
            if c.eval_on in ("xbar", "both"):
                loss, acc = sim.evaluate(x_test, y_test, at="xbar")
                row |= {"test_loss_xbar": float(loss), "test_accuracy_xbar": float(acc)}
            if c.eval_on in ("nodes", "both"):
                loss, acc = sim.evaluate(x_test[sub], y_test[sub], at="nodes")
                row |= {"test_loss_node_mean": float(loss.mean()), "test_accuracy_node_mean": float(acc.mean()),
                        "test_accuracy_node_min": float(acc.min())}
        rows.append(row)  # every epoch: train loss and consensus distance; test metrics at eval epochs
        ctx.save_state({"sim": sim.state_dict(), "generator": gen.get_state(), "rows": rows, "epoch": epoch + 1})
        yield row
