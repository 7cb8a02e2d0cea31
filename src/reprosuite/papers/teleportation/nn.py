"""Tab. 2 / Fig. 4 of the teleportation paper: D-SGD vs TELEPORTATION on ``tab2.dataset`` with the
registered model ``tab2.arch`` (VGG-11-GN on CIFAR-10 at paper scale, LeNet-GN on Fashion-MNIST at
default and smoke scale).

One job per seed trains every (method, graph, k, α) run of that seed (of one rounds-per-epoch
class, ``tab2_groups``), stacked in one simulator (one batched forward/backward per round, W
block-diagonal; ``gossip.training.train_runs``): the data set is loaded once and start-up is
paid once. The Dirichlet split, the initial model and the per-node minibatch stream depend on
(seed, α) only, so every method of a seed starts from the same model and reads the same batch of
node v at round t, exactly as separate jobs did. D-SGD is the gossip core's training loop with
slot i = node i; TELEPORTATION is the same loop with k slots on k nodes sampled each round
(``MixingPlan`` with a ``SlotSampler``). Every row also carries samples processed, node-steps
and the simulated time of the heterogeneous network (links of the ring 1, others τ).
"""

from __future__ import annotations

import numpy as np

from reprosuite.data import image_dataset
from reprosuite.gossip import spectra, topologies
from reprosuite.gossip.partition import dirichlet_shards
from reprosuite.gossip.simulator import (
    GossipSimulator,
    NodeBatches,
    cross_entropy,
    reuse_freed_memory,
)
from reprosuite.gossip.teleport import SlotSampler, slot_mixing
from reprosuite.gossip.training import Clock, MixingPlan, Run, image_split, train_runs
from reprosuite.models import build_model


def run_tab2(cfg, ctx, shard):
    reuse_freed_memory()  # a process per job: no page faults for the big per-round tensors
    c, n = cfg.tab2, cfg.tab2.n_nodes
    data = image_dataset(c.dataset, ctx.data_dir)
    ctx.use_dataset(data.name, stand_in_for=None)
    split = image_split(data, n_train=c.n_train, n_test=c.n_test, n_test_nodes=c.n_test_nodes, device=ctx.device)
    channels, side = split.x_train.shape[1], split.x_train.shape[2]  # (N, C, H, W)
    streams, inits, runs = {}, {}, []
    for alpha in shard["alphas"]:
        key = f"a{alpha:g}"
        shards = dirichlet_shards(split.y_train_np, n_nodes=n, alpha=alpha, partitioner=c.partitioner,
                                  seed=ctx.seed_for(f"partition-{key}"))
        streams[key] = (NodeBatches(shards, batch_size=c.batch_size, device=ctx.device),
                        ctx.torch_generator(f"batches-{key}", device=ctx.device))
        inits[key] = build_model(c.arch, n_classes=data.n_classes, in_channels=channels, image_size=side,
                                 generator=ctx.seed_for(f"init-{key}"))  # same x^(0) for every method of a seed
    clock = Clock(n, tau=c.tau, compute_cost=c.compute_cost, preferred=c.preferred_topology,
                  teleport_cost=c.teleport_cost)
    for method, graph, k in shard["methods"]:
        for alpha in shard["alphas"]:
            if method == "dsgd":
                w, sampler, k = topologies.mixing_matrix(graph, n=n), None, n
            else:
                w = slot_mixing(graph, k)
                sampler = SlotSampler(n, k, sampling=c.sampling,
                                      rng=np.random.default_rng(ctx.seed_for(f"slots-{k}-a{alpha:g}")))
            base = {"method": method, "graph": graph, "k": k, "n": n, "p": spectra.spectral_gap(spectra.eigenvalues(w)),
                    "alpha": alpha, "lr": c.lr, "epoch_def": c.epoch_def, "momentum_home": c.momentum_home,
                    "sampling": c.sampling if sampler else "none", "tau": c.tau, "batch_size": c.batch_size,
                    "train_size": len(split.train_idx)}
            plan = MixingPlan(w, n_nodes=n, sampler=sampler, clock=clock, account=True, batch_size=c.batch_size)
            runs.append(Run(plan, f"a{alpha:g}", base))
    sim = GossipSimulator(inits[runs[0].stream], n_slots=sum(run.plan.k for run in runs), loss_fn=cross_entropy,
                          momentum=c.momentum, weight_decay=c.weight_decay, device=ctx.device,
                          momentum_home=c.momentum_home, n_nodes=n * len(runs))
    start = 0
    for run in runs:
        sim.start_from(inits[run.stream], slice(start, start + run.plan.k))
        start += run.plan.k
    rpe = next(iter(streams.values()))[0].rounds_per_epoch * shard["rounds_factor"]
    yield from train_runs(ctx, sim=sim, runs=runs, streams=streams, x_train=split.x_train, y_train=split.y_train,
                          test=split.test, hp=c, rounds_per_epoch=rpe, desc=f"tab2 {ctx.shard}")
