"""Unit tests of the gossip core: mixing matrices, spectra (spec §3.5 table), families, partition,
and the batched simulator against a plain per-node loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from reprosuite.gossip import spectra, topologies
from reprosuite.gossip.partition import dirichlet_shards
from reprosuite.gossip.reference import LoopDSGD
from reprosuite.gossip.simulator import GossipSimulator, NodeBatches, cross_entropy
from reprosuite.models.lenet import N_PARAMETERS, LeNetGN

SIZES = {"ring": 12, "path": 9, "torus": 16, "grid": 25, "hypercube": 16, "star": 10, "complete": 7, "sym_exp": 25}


@pytest.mark.parametrize("name", list(topologies.GRAPHS))
def test_mixing_matrix_symmetric_doubly_stochastic(name):
    w = topologies.mixing_matrix(name, n=SIZES[name])
    assert np.allclose(w, w.T, atol=1e-15)
    assert np.abs(w.sum(axis=0) - 1).max() < 1e-12 and np.abs(w.sum(axis=1) - 1).max() < 1e-12
    assert w.min() >= 0
    lams = spectra.eigenvalues(w)
    assert lams[0] == pytest.approx(1.0) and spectra.t_new(lams) <= spectra.t_gap(lams) + 1e-12


def test_ring_weights_are_one_third():
    w = topologies.mixing_matrix("ring", n=16)
    assert np.allclose(w[w > 0], 1 / 3)


@pytest.mark.parametrize("name,n,p,t_gap,t_new", [
    ("ring", 16, 0.098919, 9.10931, 1.47208), ("torus", 16, 0.64, 0.5625, 0.201823),
    ("ring", 25, 0.041450, 23.1252, 2.58301), ("torus", 25, 0.476393, 1.09911, 0.269091),
    ("ring", 64, 0.006410, 155.005, 7.44278), ("torus", 64, 0.220589, 3.53332, 0.439999),
    ("hypercube", 64, 0.489796, 1.04167, 0.199154), ("ring", 100, 0.002629, 379.33, 11.9393),
    ("torus", 256, 0.059969, 15.6752, 0.70777), ("hypercube", 256, 0.395062, 1.53125, 0.16378),
])
def test_spectral_table(name, n, p, t_gap, t_new):  # spec §3.5
    lams = spectra.eigenvalues(topologies.mixing_matrix(name, n=n))
    assert spectra.spectral_gap(lams) == pytest.approx(p, abs=1e-5)
    assert spectra.t_gap(lams) == pytest.approx(t_gap, rel=1e-4)
    assert spectra.t_new(lams) == pytest.approx(t_new, rel=1e-4)


def test_complete_is_j_over_n():
    lams = spectra.eigenvalues(topologies.mixing_matrix("complete", n=9))
    assert spectra.spectral_gap(lams) == pytest.approx(1.0) and spectra.t_new(lams) < 1e-20


def test_undefined_topologies_raise():
    assert not topologies.defined("torus", n=20) and not topologies.defined("hypercube", n=24)
    with pytest.raises(KeyError, match="known"):
        topologies.graph("moebius", n=8)


@pytest.mark.parametrize("member,t_new", [("complete", 0.0639), ("hypercube", 0.1148), ("ring", 0.1912)])
def test_kronecker_family_same_p(member, t_new):  # spec §3.6
    lams = spectra.eigenvalues(topologies.kronecker_family(member, n=64))
    assert spectra.spectral_gap(lams) == pytest.approx(0.352397, abs=1e-6)
    assert spectra.t_new(lams) == pytest.approx(t_new, abs=5e-5)


def test_kronecker_rejects_member_that_changes_p():
    with pytest.raises(ValueError, match="change p"):
        topologies.kronecker_family("grid", n=200)


@pytest.mark.parametrize("tail,t_new", [("spike", 0.0666), ("graded", 0.650), ("flat", 4.197)])
def test_spectral_family(tail, t_new):
    w = topologies.spectral_family(tail, n=64)
    lams = spectra.eigenvalues(w)
    assert np.abs(w.sum(axis=1) - 1).max() < 1e-12
    assert spectra.spectral_gap(lams) == pytest.approx(0.19, abs=1e-9)
    assert spectra.t_new(lams) == pytest.approx(t_new, abs=5e-4)
    if tail == "flat":
        assert np.allclose(w, 0.9 * np.eye(64) + 0.1 / 64)


@pytest.mark.parametrize("partitioner", ["relaysgd_equal", "plain_dirichlet"])
@pytest.mark.parametrize("alpha", [0.1, 10.0])
def test_dirichlet_split_covers_every_example_once(partitioner, alpha):
    labels = np.random.default_rng(0).integers(0, 10, size=2503)
    shards = dirichlet_shards(labels, n_nodes=25, alpha=alpha, seed=1, partitioner=partitioner)
    allidx = np.concatenate(shards)
    assert len(shards) == 25 and np.array_equal(np.sort(allidx), np.arange(len(labels)))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_dirichlet_small_alpha_is_skewed():
    labels = np.repeat(np.arange(10), 300)
    skew = {}
    for alpha in (0.1, 100.0):
        shards = dirichlet_shards(labels, n_nodes=10, alpha=alpha, seed=0)
        skew[alpha] = np.mean([np.bincount(labels[s], minlength=10).max() / len(s) for s in shards])
    assert skew[0.1] > skew[100.0] + 0.2


def test_lenet_parameter_count():
    assert sum(p.numel() for p in LeNetGN().parameters()) == N_PARAMETERS == 44_470


@pytest.mark.parametrize("grouped", [True, False])
def test_simulator_equals_per_node_loop(grouped):
    torch.manual_seed(0)
    n, rounds = 4, 3
    model = LeNetGN().double()  # float64: identical math; float32 may flip a near-tie max-pool
    w = torch.tensor(topologies.mixing_matrix("ring", n=n))
    gen = torch.Generator().manual_seed(1)
    xs = [torch.randn(n, 6, 1, 28, 28, generator=gen, dtype=torch.float64) for _ in range(rounds)]
    ys = [torch.randint(0, 10, (n, 6), generator=gen) for _ in range(rounds)]
    loop = LoopDSGD(model, n_nodes=n, momentum=0.9)
    for x, y in zip(xs, ys):
        loop.step(x, y, lr=0.05, w=w)
    sim = GossipSimulator(model, n_slots=n, loss_fn=cross_entropy, momentum=0.9, dtype=torch.float64)
    if not grouped:  # the generic vmap path must agree too
        from torch.func import vmap

        sim._fwd = vmap(sim._forward, in_dims=(0, 0))
    for x, y in zip(xs, ys):
        sim.step(x, y, lr=0.05, w=w)
    assert torch.allclose(sim.flat, loop.flat(), atol=1e-5)


def test_simulator_time_varying_w_and_slots():
    model = nn.Linear(3, 2)
    sim = GossipSimulator(model, n_slots=2, loss_fn=cross_entropy, momentum=0.5)
    x, y = torch.randn(2, 4, 3), torch.randint(0, 2, (2, 4))
    sim.step(x, y, lr=0.1, w=None)  # no gossip: slots diverge
    assert sim.consensus_distance() > 0
    sim.step(x, y, lr=0.0, w=torch.full((2, 2), 0.5))  # exact averaging: consensus
    assert sim.consensus_distance() < 1e-12
    batches = NodeBatches([np.arange(10), np.arange(10, 20), np.arange(20, 31)], batch_size=4)
    idx = batches.draw(torch.tensor([2, 0]), torch.Generator().manual_seed(0))
    assert idx.shape == (2, 4) and (idx[0] >= 20).all() and (idx[1] < 10).all()
    ep = batches.epoch(torch.Generator().manual_seed(0))
    assert ep.shape == (2, 3, 4) and len(torch.unique(ep[:, 0])) == 8


def test_stationary_identity_small_case():  # spec §3.7
    from reprosuite.papers.topology.mechanism import simulate

    w = topologies.mixing_matrix("ring", n=8)
    got = simulate(torch.tensor(w)[None], d=20, chains=2, eta=0.1, sigma=1.0, mu=0.0, iterations=3000,
                   burn_in=0.2, generator=torch.Generator().manual_seed(0))
    ratio = float(got.mean()) / (20 * 0.01)
    assert ratio == pytest.approx(spectra.t_new(spectra.eigenvalues(w)), rel=0.05)
    assert spectra.stationary_consensus(spectra.eigenvalues(w), eta_mu=0.0) == pytest.approx(
        spectra.t_new(spectra.eigenvalues(w)))


def test_linear_grouped_forward_matches_vmap():
    from torch.func import functional_call, vmap

    from reprosuite.gossip.simulator import linear_grouped_forward

    lin = nn.Linear(5, 3)
    sim = GossipSimulator(lin, n_slots=4, loss_fn=cross_entropy)
    sim.flat = sim.flat + torch.randn_like(sim.flat)
    params = sim.unflatten(sim.flat)
    x, xs = torch.randn(4, 7, 5), torch.randn(7, 5)
    ref = vmap(lambda p, xx: functional_call(lin, p, (xx,)))(params, x)
    assert torch.allclose(linear_grouped_forward(params, x), ref, atol=1e-6)
    ref_shared = vmap(lambda p: functional_call(lin, p, (xs,)))(params)
    assert torch.allclose(linear_grouped_forward(params, xs, shared_input=True), ref_shared, atol=1e-6)
