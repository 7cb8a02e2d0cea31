"""Fig. 3 of the topology paper: LeNet-GN D-SGD on Fashion-MNIST, accuracy vs T_new.

One job per seed trains every (topology, α) run of that seed, stacked in one simulator (one
batched forward/backward per round, W block-diagonal; ``gossip.training.train_runs``): the data
set is loaded once and start-up is paid once. The Dirichlet split, the initial model and the
minibatch stream depend on (seed, α) only, so every topology of a seed starts from the same model
and data shards and reads the same batches, exactly as separate jobs did. The training loop (LR
schedule, evaluation of x̄ and of the nodes, checkpoint and resume) is the gossip core's.
"""

from __future__ import annotations

from reprosuite.data import image_dataset
from reprosuite.gossip import spectra, topologies
from reprosuite.gossip.partition import dirichlet_shards
from reprosuite.gossip.simulator import (
    GossipSimulator,
    NodeBatches,
    cross_entropy,
    reuse_freed_memory,
)
from reprosuite.gossip.training import MixingPlan, Run, image_split, learning_rate, train_runs
from reprosuite.models import seeded
from reprosuite.models.lenet import LeNetGN

__all__ = ["learning_rate", "run_fig3"]


def run_fig3(cfg, ctx, shard):
    reuse_freed_memory()  # a process per job: no page faults for the big per-round tensors
    c, n = cfg.fig3, cfg.fig3.n_nodes
    data = image_dataset(c.dataset, ctx.data_dir)
    ctx.use_dataset(data.name, stand_in_for=None)
    split = image_split(data, n_train=c.n_train, n_test=c.n_test, n_test_nodes=c.n_test_nodes, device=ctx.device)
    streams, inits, runs = {}, {}, []
    for alpha in shard["alphas"]:
        key = f"a{alpha:g}"
        shards = dirichlet_shards(split.y_train_np, n_nodes=n, alpha=alpha, partitioner=c.partitioner,
                                  seed=ctx.seed_for(f"partition-{key}"))
        streams[key] = (NodeBatches(shards, batch_size=c.batch_size, device=ctx.device),
                        ctx.torch_generator(f"batches-{key}", device=ctx.device))
        inits[key] = seeded(ctx.seed_for(f"init-{key}"), lambda: LeNetGN(data.n_classes))  # same x^(0) for every topology
    for name in shard["topologies"]:
        w = topologies.mixing_matrix(name, n=n)
        lams = spectra.eigenvalues(w)
        for alpha in shard["alphas"]:
            base = {"topology": name, "n": n, "p": spectra.spectral_gap(lams), "T_gap": spectra.t_gap(lams),
                    "T_new": spectra.t_new(lams), "alpha": alpha, "lr": c.lr, "partitioner": c.partitioner,
                    "batch_size": c.batch_size, "momentum": c.momentum, "train_size": len(split.train_idx)}
            runs.append(Run(MixingPlan(w, n_nodes=n), f"a{alpha:g}", base))
    sim = GossipSimulator(inits[runs[0].stream], n_slots=n * len(runs), loss_fn=cross_entropy, momentum=c.momentum,
                          weight_decay=c.weight_decay, mix_momentum=c.mix_momentum, device=ctx.device)
    for r, run in enumerate(runs):
        sim.start_from(inits[run.stream], slice(r * n, (r + 1) * n))
    yield from train_runs(ctx, sim=sim, runs=runs, streams=streams, x_train=split.x_train, y_train=split.y_train,
                          test=split.test, hp=c, desc=f"fig3 {ctx.shard}")
