"""Tab. 2 / Fig. 4 of the teleportation paper: D-SGD vs TELEPORTATION on ``tab2.dataset`` with the
registered model ``tab2.arch`` (VGG-11-GN on CIFAR-10 at paper scale, LeNet-GN on Fashion-MNIST at
default and smoke scale).

One job per (method, graph, k, α, seed). The Dirichlet split, the initial model and the per-node
minibatch stream depend on (seed, α) only, so every method of a seed starts from the same model
and reads the same batch of node v at round t. D-SGD is the gossip core's training loop with
slot i = node i; TELEPORTATION is the same loop with k slots on k nodes sampled each round
(``MixingPlan`` with a ``SlotSampler``). Every row also carries samples processed, node-steps
and the simulated time of the heterogeneous network (links of the ring 1, others τ).
"""

from __future__ import annotations

import numpy as np

from reprosuite.data import image_dataset
from reprosuite.gossip import spectra, topologies
from reprosuite.gossip.partition import dirichlet_shards
from reprosuite.gossip.simulator import GossipSimulator, NodeBatches, cross_entropy
from reprosuite.gossip.teleport import SlotSampler, slot_mixing
from reprosuite.gossip.training import Clock, MixingPlan, image_split, train
from reprosuite.models import build_model


def run_tab2(cfg, ctx, shard):
    c = cfg.tab2
    data = image_dataset(c.dataset, ctx.data_dir)
    ctx.use_dataset(data.name, stand_in_for=None)
    split = image_split(data, n_train=c.n_train, n_test=c.n_test, n_test_nodes=c.n_test_nodes, device=ctx.device)
    method, graph, k, alpha, n = shard["method"], shard["graph"], int(shard["k"]), float(shard["alpha"]), c.n_nodes
    shards = dirichlet_shards(split.y_train_np, n_nodes=n, alpha=alpha, partitioner=c.partitioner,
                              seed=ctx.seed_for(f"partition-a{alpha:g}"))
    batches = NodeBatches(shards, batch_size=c.batch_size, device=ctx.device)
    channels, side = split.x_train.shape[1], split.x_train.shape[2]  # (N, C, H, W)
    model = build_model(c.arch, n_classes=data.n_classes, in_channels=channels, image_size=side,
                        generator=ctx.seed_for(f"init-a{alpha:g}"))  # same x^(0) for every method of a seed
    clock = Clock(n, tau=c.tau, compute_cost=c.compute_cost, preferred=c.preferred_topology,
                  teleport_cost=c.teleport_cost)
    if method == "dsgd":
        w, sampler, slots = topologies.mixing_matrix(graph, n=n), None, n
        rpe = batches.rounds_per_epoch
    else:
        w, slots = slot_mixing(graph, k), k
        sampler = SlotSampler(n, k, sampling=c.sampling, rng=np.random.default_rng(ctx.seed_for(f"slots-{k}-a{alpha:g}")))
        rpe = batches.rounds_per_epoch * (1 if c.epoch_def == "iterations" else max(1, round(n / k)))
    p = spectra.spectral_gap(spectra.eigenvalues(w))
    sim = GossipSimulator(model, n_slots=slots, loss_fn=cross_entropy, momentum=c.momentum,
                          weight_decay=c.weight_decay, device=ctx.device, momentum_home=c.momentum_home, n_nodes=n)
    plan = MixingPlan(w, n_nodes=n, sampler=sampler, clock=clock, account=True, batch_size=c.batch_size)
    gen = ctx.torch_generator(f"batches-a{alpha:g}", device=ctx.device)
    base = {"method": method, "graph": graph, "k": slots, "n": n, "p": p, "alpha": alpha, "lr": c.lr,
            "epoch_def": c.epoch_def, "momentum_home": c.momentum_home, "sampling": c.sampling if sampler else "none",
            "tau": c.tau, "batch_size": c.batch_size, "train_size": len(split.train_idx)}
    yield from train(ctx, sim=sim, batches=batches, gen=gen, x_train=split.x_train, y_train=split.y_train,
                     test=split.test, hp=c, plan=plan, base=base, rounds_per_epoch=rpe, desc=f"tab2 {ctx.shard}")
