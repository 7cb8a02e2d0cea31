"""Unit tests of the gossip core: mixing matrices, spectra (docs/papers/topology.md tables), families, partition,
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
def test_spectral_table(name, n, p, t_gap, t_new):  # docs/papers/topology.md
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
def test_kronecker_family_same_p(member, t_new):  # docs/papers/topology.md
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


def test_stationary_identity_small_case():  # docs/papers/topology.md
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


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_linear_closed_form_gradients_equal_autograd(bias, dtype, tol):
    """The nn.Linear shortcut (∂L/∂out by autograd, then (∂L/∂out)ᵀ x) gives the autograd
    gradients through functional_call; a wrong transpose or a dropped bias term would not."""
    torch.manual_seed(0)
    lin = nn.Linear(6, 3, bias=bias)
    sim = GossipSimulator(lin, n_slots=5, loss_fn=cross_entropy, dtype=dtype)
    sim.flat = sim.flat + torch.randn_like(sim.flat)
    x, y = torch.randn(5, 7, 6, dtype=dtype), torch.randint(0, 3, (5, 7))
    got, losses = sim.local_gradients(x, y)
    leaf = sim.flat.detach().requires_grad_(True)
    out = torch.stack([nn.functional.linear(x[i], *(p[i] for p in sim.unflatten(leaf).values())) for i in range(5)])
    ref_losses = nn.functional.cross_entropy(out.reshape(-1, 3), y.reshape(-1), reduction="none").reshape(5, 7).mean(1)
    (ref,) = torch.autograd.grad(ref_losses.sum(), leaf)
    assert got.shape == ref.shape == (5, 6 * 3 + 3 * bias)
    assert torch.allclose(got, ref, atol=tol, rtol=0) and torch.allclose(losses, ref_losses.detach(), atol=tol)


# --- teleportation additions: small-k mixing, time-varying graphs, spectra of products, cost ----

def test_mixing_matrix_one_and_two_slots():
    assert np.array_equal(topologies.mixing_matrix("ring", n=1), np.ones((1, 1)))
    for name in ("ring", "sym_exp", "complete"):
        assert np.allclose(topologies.mixing_matrix(name, n=2), np.full((2, 2), 0.5))
    assert np.allclose(topologies.mixing_matrix("ring", n=3), np.full((3, 3), 1 / 3))


@pytest.mark.parametrize("n", [2, 4, 8, 16, 64])
def test_one_peer_exponential_exact_consensus_after_log2_n_rounds(n):
    from reprosuite.gossip.timevarying import one_peer_exponential

    mats = one_peer_exponential(n)
    assert len(mats) == int(np.log2(n))
    x = np.random.default_rng(0).standard_normal((n, 3))
    for w in mats:
        assert np.allclose(w.sum(0), 1) and np.allclose(w.sum(1), 1)
        assert set(np.unique(w)) <= {0.0, 0.5, 1.0}
        x = w @ x
    assert np.allclose(x, x.mean(0), atol=1e-12)
    assert spectra.product_gap(mats) == pytest.approx(1.0)
    if n > 2:  # one round alone is not consensus, and it is not symmetric
        assert spectra.product_gap(mats[0]) < 1.0
        with pytest.raises(ValueError, match="not symmetric"):
            spectra.eigenvalues(mats[0])


def test_one_peer_exponential_non_power_of_two_is_not_exact():
    from reprosuite.gossip.timevarying import one_peer_exponential

    gap = spectra.product_gap(one_peer_exponential(12))
    assert 0.0 < gap < 1.0


@pytest.mark.parametrize("n, k", [(8, 1), (9, 2), (27, 2), (16, 3), (25, 4)])
def test_base_graph_exact_consensus(n, k):
    from reprosuite.gossip.timevarying import base_graph

    mats = base_graph(n, k)
    x = np.random.default_rng(1).standard_normal((n, 2))
    for w in mats:
        assert np.allclose(w, w.T) and np.allclose(w.sum(1), 1)
        assert ((w > 0).sum(1) <= k + 1).all()  # at most k peers per round
        x = w @ x
    assert np.allclose(x, x.mean(0), atol=1e-12)
    with pytest.raises(ValueError, match="n = \\(k\\+1\\)\\^m"):
        base_graph(10, 1)


def test_product_gap_equals_symmetric_gap():
    w = topologies.mixing_matrix("ring", n=16)
    assert spectra.product_gap(w) == pytest.approx(spectra.spectral_gap(spectra.eigenvalues(w)), abs=1e-12)


def test_cost_model():
    from reprosuite.gossip.cost import gossip_time, link_costs, teleport_time

    c = link_costs(8, tau=5.0)
    assert c[0, 1] == c[7, 0] == 1.0 and c[0, 2] == 5.0 and c[3, 3] == 0.0
    ring = topologies.mixing_matrix("ring", n=8)
    assert gossip_time(ring, np.arange(8), c) == 1.0  # D-SGD on the preferred ring
    assert gossip_time(ring, np.array([0, 2, 4, 6, 1, 3, 5, 7]), c) == 5.0
    assert teleport_time(np.array([0, 1]), np.array([1, 2]), c) == 1.0
    assert teleport_time(np.array([0, 1]), np.array([0, 1]), c) == 0.0
    assert teleport_time(np.array([0]), np.array([1]), c, mode="tau") == 5.0


@pytest.mark.parametrize("sampling", ["uniform", "permutation_cycle"])
def test_sampler_k_distinct_nodes_every_round(sampling):
    from reprosuite.gossip.teleport import SlotSampler

    s = SlotSampler(10, 4, sampling=sampling, rng=np.random.default_rng(0))
    seen = set()
    for _ in range(200):
        v = s.next()
        assert len(v) == 4 and len(set(v.tolist())) == 4 and v.min() >= 0 and v.max() < 10
        seen |= set(v.tolist())
    assert seen == set(range(10))
    with pytest.raises(ValueError):
        SlotSampler(4, 3, sampling="identity", rng=np.random.default_rng(0))


def test_batched_sampler_k_distinct_nodes():
    from reprosuite.gossip.quadratic import uniform_sampler

    draw = uniform_sampler(16, 5, 3, torch.Generator().manual_seed(0))
    vs = draw(0, 50)
    assert vs.shape == (50, 3, 5)
    assert all(len(set(row.tolist())) == 5 for v in vs for row in v)


def test_momentum_stays_with_the_node():
    model = nn.Linear(2, 2, bias=False)
    sim = GossipSimulator(model, n_slots=2, loss_fn=cross_entropy, momentum=0.5, momentum_home="stays", n_nodes=4)
    assert sim.buf.shape == (4, 4)
    grad = torch.ones(2, 4)
    sim.apply(grad, lr=0.1, w=None, nodes=torch.tensor([3, 1]))
    assert torch.equal(sim.buf[3], torch.ones(4)) and torch.equal(sim.buf[0], torch.zeros(4))
    sim.apply(grad, lr=0.1, w=None, nodes=torch.tensor([0, 3]))  # node 3's buffer follows node 3
    assert torch.allclose(sim.buf[3], torch.full((4,), 1.5)) and torch.equal(sim.buf[0], torch.ones(4))
    travel = GossipSimulator(model, n_slots=2, loss_fn=cross_entropy, momentum=0.5)
    travel.apply(grad, lr=0.1, w=None, nodes=torch.tensor([3, 1]))
    travel.apply(grad, lr=0.1, w=None, nodes=torch.tensor([0, 3]))
    assert torch.allclose(travel.buf, torch.full((2, 4), 1.5))  # the slot's buffer moved with it


class _Quad(nn.Module):
    """f(x) = ½ Σ h (x - b)² - zᵀx for an input row [h, b, z] (gradient h(x - b) - z)."""

    def __init__(self, d):
        super().__init__()
        self.x = nn.Parameter(torch.zeros(d, dtype=torch.float64))

    def forward(self, inp):  # (B, 3d) -> (B, 1)
        h, b, z = inp.chunk(3, dim=-1)
        return (0.5 * (h * (self.x - b) ** 2).sum(-1) - (z * self.x).sum(-1))[..., None]


@pytest.mark.parametrize("k, graph", [(4, "ring"), (8, "ring"), (1, "ring"), (2, "ring")])
def test_quadratic_kernel_equals_autograd_simulator(k, graph):
    from reprosuite.gossip.quadratic import Quadratics, simulate, uniform_sampler
    from reprosuite.gossip.teleport import slot_mixing

    n, d, rounds, sigma, lr = 8, 3, 12, 0.5, 0.1
    prob = Quadratics.toy(n=n, d=d, seeds=[0])
    noise = torch.randn(rounds, 1, 1, k, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    draws = uniform_sampler(n, k, 1, torch.Generator().manual_seed(5))(0, rounds)  # (rounds, 1, k)
    sampler = None if k == n else (lambda t0, count: draws[t0:t0 + count])
    w = slot_mixing(graph, k)
    out = simulate(prob, lrs=[lr], sigma=sigma, iterations=rounds, mixing=w, sampler=sampler,
                   noise=lambda t0, count, shape: noise[t0:t0 + count], trace=True)
    sim = GossipSimulator(_Quad(d), n_slots=k, loss_fn=lambda out, y: out[..., 0], dtype=torch.float64)
    for t in range(rounds):
        v = torch.arange(n) if sampler is None else draws[t][0]
        inp = torch.cat([prob.h[0, v], prob.b[0, v], -sigma * noise[t][0, 0]], dim=-1)[:, None, :]  # (k, 1, 3d)
        sim.step(inp, torch.zeros(k, 1), lr=lr, w=torch.tensor(w))
    assert torch.allclose(out["X"][0, 0], sim.flat, atol=1e-10)


def test_teleportation_k_equals_n_identity_is_dsgd():
    """TELEPORTATION with k = n, sampling off and the identity assignment reproduces D-SGD."""
    from reprosuite.gossip.quadratic import Quadratics, fixed_sampler, simulate

    prob = Quadratics.toy(n=16, d=4, seeds=[0, 1])
    w = topologies.mixing_matrix("ring", n=16)
    a = simulate(prob, lrs=[0.1, 0.05], sigma=0.5, iterations=50, mixing=w, trace=True,
                 generator=torch.Generator().manual_seed(0))
    b = simulate(prob, lrs=[0.1, 0.05], sigma=0.5, iterations=50, mixing=w, trace=True,
                 sampler=fixed_sampler(torch.arange(16).expand(2, 16)), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(a["X"], b["X"], atol=1e-6)
    assert torch.equal(a["X"], b["X"])  # bit-for-bit: same arithmetic on the same values


def test_training_loop_teleport_identity_equals_dsgd():
    """The NN loop: TELEPORTATION (k = n, identity sampler) and D-SGD give the same parameters."""
    from reprosuite.gossip.teleport import SlotSampler
    from reprosuite.gossip.training import EvalSets, MixingPlan, train

    class Ctx:
        state = None

        def load_state(self):
            return None

        def save_state(self, s):
            self.state = s

        def progress(self, it, total=None, desc=""):
            return it

    class HP:
        epochs, lr, lr_min, warmup_epochs, warmup_lr, eval_every, eval_on = 2, 0.1, 0.0, 0, 0.0, 1, "both"

    n = 4
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(80, 3, generator=gen)
    y = torch.randint(0, 2, (80,), generator=gen)
    shards = [np.arange(i * 20, (i + 1) * 20) for i in range(n)]
    test = EvalSets(x[:10], y[:10], torch.arange(5))
    w = topologies.mixing_matrix("ring", n=n)
    flats = []
    for sampler in (None, SlotSampler(n, n, sampling="identity", rng=np.random.default_rng(0))):
        torch.manual_seed(1)
        sim = GossipSimulator(nn.Linear(3, 2), n_slots=n, momentum=0.9)
        plan = MixingPlan(w, n_nodes=n, sampler=sampler, account=True, batch_size=5)
        rows = list(train(Ctx(), sim=sim, batches=NodeBatches(shards, batch_size=5), gen=torch.Generator().manual_seed(2),
                          x_train=x, y_train=y, test=test, hp=HP, plan=plan, base={}))
        flats.append(sim.flat)
        assert rows[-1]["node_steps"] == 2 * 4 * n and rows[-1]["samples_processed"] == 2 * 4 * n * 5
    assert torch.allclose(flats[0], flats[1], atol=1e-6)


def test_search_never_exceeds_budget():
    from reprosuite.gossip.search import candidates, grid_cost, search_k

    calls = []

    def run(k, iters, block):
        calls.append((k, iters, block))
        return abs(np.log2(k) - 3)  # best k = 8

    for n in (1, 5, 16, 64, 256):
        for schedule in ("parallel_waves", "doubling"):
            calls.clear()
            res = search_k(n, 100, run, schedule=schedule)
            assert res.iterations <= res.budget == 200
            if schedule == "parallel_waves":
                blocks = [b for _, _, b in calls if b is not None]
                assert sum(hi - lo for lo, hi in blocks) < max(n, 2)  # wave 1 fits in n nodes
            if n >= 8:
                assert res.chosen_k == 8
    assert grid_cost(candidates(64), 100) == (700, 12700)


def test_pool_relu_is_max_pool_of_relu_bit_for_bit():
    """LeNet-GN's pool (models/lenet.py) gives max_pool2d(relu(x), 2)'s values and gradients exactly,
    ties included (integer inputs: many equal maxima, many windows <= 0)."""
    from reprosuite.models.lenet import pool_relu

    gen = torch.Generator().manual_seed(0)
    for x in (torch.randint(-2, 3, (3, 5, 8, 12), generator=gen).float(), torch.randn(3, 5, 8, 12, generator=gen)):
        g = torch.randn(3, 5, 4, 6, generator=gen)
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        want = nn.functional.max_pool2d(nn.functional.relu(a), 2)
        got = pool_relu(b)
        want.backward(g)
        got.backward(g)
        assert torch.equal(got, want) and torch.equal(b.grad, a.grad)
        with torch.no_grad():  # evaluation: strided slices instead of ATen's pooling kernel
            assert torch.equal(pool_relu(x), want)


def _stack_ctx():
    class Ctx:
        state = None

        def load_state(self):
            return self.state

        def save_state(self, s):
            self.state = s

        def progress(self, it, total=None, desc=""):
            return it

    return Ctx()


@pytest.mark.parametrize("home", ["travels", "stays"])
def test_stacked_runs_equal_separate_runs(home):
    """train_runs with a D-SGD run and a TELEPORTATION run on two data streams gives the records of
    each run trained alone, bit for bit, and resumes from its checkpoint to the same records."""
    from reprosuite.gossip.teleport import SlotSampler
    from reprosuite.gossip.training import EvalSets, MixingPlan, Run, train, train_runs

    class HP:
        epochs, lr, lr_min, warmup_epochs, warmup_lr, eval_every, eval_on = 3, 0.1, 0.0, 0, 0.0, 1, "both"

    n, gen = 4, torch.Generator().manual_seed(0)
    x, y = torch.randn(80, 3, generator=gen), torch.randint(0, 2, (80,), generator=gen)
    test = EvalSets(x[:10], y[:10], torch.arange(5))
    shards = {"a": [np.arange(i * 20, (i + 1) * 20) for i in range(n)], "b": [np.arange(i, 80, n) for i in range(n)]}
    inits = {"a": nn.Linear(3, 2), "b": nn.Linear(3, 2)}
    kinds = [("a", None), ("b", 3), ("a", 2)]  # (stream, k): D-SGD on stream a, TELEPORTATION k = 3 and 2

    def plan(k, i):
        if k is None:
            return MixingPlan(topologies.mixing_matrix("ring", n=n), n_nodes=n, account=True, batch_size=5)
        return MixingPlan(topologies.mixing_matrix("ring", n=k), n_nodes=n, account=True, batch_size=5,
                          sampler=SlotSampler(n, k, rng=np.random.default_rng(i)))

    def sim(model, slots):
        return GossipSimulator(model, n_slots=slots, momentum=0.9, momentum_home=home, n_nodes=n * len(kinds))

    def streams():
        return {key: (NodeBatches(s, batch_size=5), torch.Generator().manual_seed(ord(key))) for key, s in shards.items()}

    alone = []
    for i, (key, k) in enumerate(kinds):
        p = plan(k, i)
        one = GossipSimulator(inits[key], n_slots=p.k, momentum=0.9, momentum_home=home, n_nodes=n)
        batches, g = streams()[key]
        alone.append(list(train(_stack_ctx(), sim=one, batches=batches, gen=g, x_train=x, y_train=y, test=test, hp=HP,
                                plan=p, base={"run": i})))

    def stacked(ctx):
        runs = [Run(plan(k, i), key, {"run": i}) for i, (key, k) in enumerate(kinds)]
        both = sim(inits["a"], sum(r.plan.k for r in runs))
        start = 0
        for run, (key, _) in zip(runs, kinds):
            both.start_from(inits[key], slice(start, start + run.plan.k))
            start += run.plan.k
        return train_runs(ctx, sim=both, runs=runs, streams=streams(), x_train=x, y_train=y, test=test, hp=HP)

    rows = list(stacked(_stack_ctx()))
    for i in range(len(kinds)):
        assert [r for r in rows if r["run"] == i] == alone[i]
    ctx = _stack_ctx()
    it = stacked(ctx)
    first = [next(it) for _ in kinds]
    it.close()  # killed after epoch 1
    assert ctx.state["epoch"] == 1
    assert list(stacked(ctx)) == rows and rows[: len(kinds)] == first


def test_block_diagonal_gossip_equals_per_block():
    model = nn.Linear(3, 2)
    sim = GossipSimulator(model, n_slots=7, loss_fn=cross_entropy)
    sim.flat = torch.randn(7, 8)
    blocks = [torch.tensor(topologies.mixing_matrix("ring", n=4), dtype=torch.float32), torch.full((3, 3), 1 / 3)]
    want = torch.cat([blocks[0] @ sim.flat[:4], blocks[1] @ sim.flat[4:]])
    sim.apply(torch.zeros(7, 8), lr=0.1, w=blocks)
    assert torch.equal(sim.flat, want)
    with pytest.raises(ValueError, match="cover 7 slots; expected 8"):
        GossipSimulator(model, n_slots=8).apply(torch.zeros(8, 8), lr=0.1, w=blocks)


@pytest.mark.parametrize("family, members", [("kronecker", ("complete", "hypercube", "ring")), ("spectral", ("spike", "flat", "graded"))])
def test_mixing_operators_equal_dense_w(family, members):
    """Structured gossip (gossip/operators.py): low rank + αI, Kronecker, sparse, for I_S ⊗ W."""
    from reprosuite.gossip.operators import mixing_operator

    x = torch.randn(3 * 64, 20, generator=torch.Generator().manual_seed(0))
    kinds = set()
    for member in members:
        w = topologies.family_matrix(family, member, n=64)
        op = mixing_operator(w, repeat=3)
        kinds.add(op.kind)
        assert len(op) == 192
        assert torch.allclose(op(x), torch.tensor(np.kron(np.eye(3), w), dtype=torch.float32) @ x, atol=1e-5)
    assert kinds == ({"lowrank", "kronecker"} if family == "kronecker" else {"lowrank", "dense"})
    assert mixing_operator(topologies.mixing_matrix("ring", n=64)).kind == "sparse"


@pytest.mark.parametrize("loss", ["cross_entropy", "ridge"])
def test_linear_family_equals_simulator(loss):
    """LinearFamily (members' gradients in one matmul, structured W) = GossipSimulator per member."""
    from reprosuite.gossip.linear import LinearFamily
    from reprosuite.gossip.operators import mixing_operator
    from reprosuite.papers.topology.linear import ridge_loss

    fn, l2 = (cross_entropy, 0.0) if loss == "cross_entropy" else (ridge_loss, 1e-2)
    n, seeds, f, c = 8, 2, 6, 3
    ws = [topologies.mixing_matrix("ring", n=n), topologies.mixing_matrix("complete", n=n)]
    fam = LinearFamily(len(ws), n * seeds, f, c, loss_fn=fn, weight_decay=l2)
    ops = [mixing_operator(w, repeat=seeds) for w in ws]
    sims = []
    for w in ws:
        lin = nn.Linear(f, c)
        nn.init.zeros_(lin.weight)
        nn.init.zeros_(lin.bias)
        sims.append((GossipSimulator(lin, n_slots=n * seeds, loss_fn=fn, weight_decay=l2),
                     [torch.tensor(w, dtype=torch.float32)] * seeds))
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        x, y = torch.randn(n * seeds, 5, f, generator=gen), torch.randint(0, c, (n * seeds, 5), generator=gen)
        fam.step(x, y, lr=0.3, mixing=ops)
        for sim, blocks in sims:
            sim.step(x, y, lr=0.3, w=blocks)
    xe, ye = torch.randn(50, f, generator=gen), torch.randint(0, c, (50,), generator=gen)
    for m, (sim, _) in enumerate(sims):
        assert torch.allclose(fam.params(m), sim.flat, atol=1e-6)
        assert torch.allclose(fam.node_losses(m, xe, ye), sim.evaluate(xe, ye, at="nodes")[0], atol=1e-6)
        assert torch.allclose(fam.mean_loss(m, slice(0, n), xe, ye), sim.evaluate(xe, ye, at="xbar", slots=slice(0, n))[0])
