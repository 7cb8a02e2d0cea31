"""Fig. 3 of the topology paper: LeNet-GN D-SGD on Fashion-MNIST, accuracy vs T_new.

One job per (topology, α, seed). The Dirichlet split and the initial model depend on (seed, α)
only, so every topology of a seed starts from the same model and data shards. The training loop
(LR schedule, evaluation of x̄ and of the nodes, checkpoint and resume) is the gossip core's
``reprosuite.gossip.training.train``.
"""

from __future__ import annotations

from reprosuite.data import image_dataset
from reprosuite.gossip import spectra, topologies
from reprosuite.gossip.partition import dirichlet_shards
from reprosuite.gossip.simulator import GossipSimulator, NodeBatches, cross_entropy
from reprosuite.gossip.training import MixingPlan, image_split, learning_rate, train
from reprosuite.models import seeded
from reprosuite.models.lenet import LeNetGN

__all__ = ["learning_rate", "run_fig3"]


def run_fig3(cfg, ctx, shard):
    c = cfg.fig3
    data = image_dataset(c.dataset, ctx.data_dir)
    ctx.use_dataset(data.name, stand_in_for=None)
    split = image_split(data, n_train=c.n_train, n_test=c.n_test, n_test_nodes=c.n_test_nodes, device=ctx.device)
    alpha, name, n = float(shard["alpha"]), shard["topology"], c.n_nodes
    shards = dirichlet_shards(split.y_train_np, n_nodes=n, alpha=alpha, partitioner=c.partitioner,
                              seed=ctx.seed_for(f"partition-a{alpha:g}"))
    batches = NodeBatches(shards, batch_size=c.batch_size, device=ctx.device)
    w = topologies.mixing_matrix(name, n=n)
    lams = spectra.eigenvalues(w)
    model = seeded(ctx.seed_for(f"init-a{alpha:g}"), lambda: LeNetGN(data.n_classes))  # same x^(0) for every topology
    sim = GossipSimulator(model, n_slots=n, loss_fn=cross_entropy, momentum=c.momentum,
                          weight_decay=c.weight_decay, mix_momentum=c.mix_momentum, device=ctx.device)
    gen = ctx.torch_generator(f"batches-a{alpha:g}", device=ctx.device)
    base = {"topology": name, "n": n, "p": spectra.spectral_gap(lams), "T_gap": spectra.t_gap(lams),
            "T_new": spectra.t_new(lams), "alpha": alpha, "lr": c.lr, "partitioner": c.partitioner,
            "batch_size": c.batch_size, "momentum": c.momentum, "train_size": len(split.train_idx)}
    yield from train(ctx, sim=sim, batches=batches, gen=gen, x_train=split.x_train, y_train=split.y_train,
                     test=split.test, hp=c, plan=MixingPlan(w, n_nodes=n), base=base, desc=f"fig3 {ctx.shard}")
