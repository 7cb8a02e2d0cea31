"""certified: accounting pinned to the paper's constants, subspace blocks, the noisy step loop."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from reprosuite.unlearning import accounting as A
from reprosuite.unlearning.blocks import make_blocks
from reprosuite.unlearning.noisy import (
    NoisySchedule,
    ParamView,
    RetainSampler,
    block_nft,
    injection_sigma,
    noisy_phase,
    perturbation_energy,
)

# Koloskova-like constants of docs/papers/certified.md (η = 1e-4, λ = 10, C₀ = 0.01, C₁ = 1, δ = 1e-5)
K = dict(eta=1e-4, lam=10.0, c0=0.01, c1=1.0)
DELTA = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only contend on a shared machine
    yield
    torch.set_num_threads(before)

# ε: (q*, ε_q, σ for k = 1, 2, 4, 10 under `shared`, σ·sqrt(11.2e6) at k = 1)
TABLE = {
    0.5: (47.55, 0.253, (0.0378, 0.0535, 0.0756, 0.1196), 126.5),
    1.0: (24.52, 0.510, (0.0191, 0.0270, 0.0382, 0.0604), 63.9),
    2.0: (12.99, 1.040, (0.0097,), None),
    3.0: (9.15, 1.587, (0.0066, 0.0094, 0.0132, 0.0209), 22.1),
    5.0: (6.06, 2.725, (0.0041, 0.0058, 0.0082, 0.0130), 13.8),
    7.0: (4.73, 3.914, (0.0030, 0.0043, 0.0061, 0.0096), 10.1),
}


@pytest.mark.parametrize("eps", sorted(TABLE))
def test_accounting_table(eps):
    q_ref, eq_ref, sig_ref, norm_ref = TABLE[eps]
    q = A.optimal_order(eps=eps, delta=DELTA)
    eq = A.rdp_budget(eps=eps, delta=DELTA, q=q)
    assert abs(q - q_ref) <= 0.01 and abs(eq - eq_ref) <= 1e-3
    assert abs(A.optimal_order_numeric(eps=eps, delta=DELTA) - q) <= 1e-6
    for k, s_ref in zip((1, 2, 4, 10), sig_ref):
        p = A.plan(eps=eps, delta=DELTA, k=k, policy="shared", **K)
        assert abs(p.blocks[0].sigma - s_ref) <= 1e-4
        # `scaled` keeps σ_k = σ_1 and T_ft; `shared` gives sqrt(k) σ_1
        s = A.plan(eps=eps, delta=DELTA, k=k, policy="scaled", **K)
        one = A.plan(eps=eps, delta=DELTA, k=1, **K).blocks[0]
        assert s.blocks[0].sigma == pytest.approx(one.sigma, rel=1e-12) and s.blocks[0].t_ft == one.t_ft
        assert p.blocks[0].sigma == pytest.approx(math.sqrt(k) * one.sigma, rel=1e-12)
    if norm_ref is not None:
        assert abs(A.plan(eps=eps, delta=DELTA, k=1, **K).blocks[0].sigma * math.sqrt(11.2e6) - norm_ref) <= 0.1


def test_steps_and_koloskova_consistency():
    assert A.steps_ft(**K) == (106, 212)
    q = A.optimal_order(eps=1.0, delta=DELTA)
    eq = A.rdp_budget(eps=1.0, delta=DELTA, q=q)
    sigma = A.noise_sigma(eps_q=eq, q=q, **K)
    x_star = 1 - K["lam"] * K["c0"] / K["c1"]
    assert A.koloskova_sigma(eps_r=eq / q, x=x_star, **K) == pytest.approx(sigma, rel=1e-9)
    at_t = A.koloskova_sigma(eps_r=eq / q, steps=106, **K)
    assert at_t == pytest.approx(0.0191012, abs=1e-7) and sigma == pytest.approx(0.0191011, abs=1e-7)
    assert at_t == pytest.approx(sigma, rel=1e-4)
    # opacus' Gaussian RDP of the same mechanism spends ε_q (to the rounding of T_ft)
    assert A.koloskova_rdp(sigma=sigma, q=q, steps=106, **K) == pytest.approx(eq, rel=1e-4)


@pytest.mark.parametrize("eps", [0.5, 1.0, 3.0, 7.0])
@pytest.mark.parametrize("k", [1, 2, 4, 10])
def test_composition(eps, k):
    p = A.plan(eps=eps, delta=DELTA, k=k, **K)
    assert A.compose_rdp([b.eps_q_block for b in p.blocks]) == pytest.approx(p.eps_q, abs=1e-12)
    assert abs(p.eps_composed - eps) <= 1e-9
    shares = np.sqrt(np.random.default_rng(k).dirichlet(np.ones(k)))
    for split in ("uniform", "proportional"):
        m = A.plan(eps=eps, delta=DELTA, k=k, policy="measured", shares=shares, split=split, **K)
        assert abs(m.eps_composed - eps) <= 1e-9
    # proportional budgets with measured constants give every block the k = 1 σ
    one = A.plan(eps=eps, delta=DELTA, k=1, **K).blocks[0].sigma
    m = A.plan(eps=eps, delta=DELTA, k=k, policy="measured", shares=shares, split="proportional", **K)
    assert all(b.sigma == pytest.approx(one, rel=1e-9) for b in m.blocks)


def test_conversions_and_refusals():
    q = A.optimal_order(eps=1.0, delta=DELTA)
    eq = A.rdp_budget(eps=1.0, delta=DELTA, q=q)
    assert A.rdp_to_dp(eps_q=eq, q=q, delta=DELTA) == pytest.approx(1.0, abs=1e-12)
    assert A.rdp_to_dp(eps_q=eq, q=q, delta=DELTA, conversion="balle") < 1.0  # tighter
    assert A.chebyshev_c0([2.0, 2.0], rho=0.25) == pytest.approx(2.0)
    for bad in (dict(eps=0.0, delta=DELTA), dict(eps=1.0, delta=1.0)):
        with pytest.raises(ValueError):
            A.optimal_order(**bad)
    with pytest.raises(ValueError, match="c1"):
        A.steps_ft(eta=0.01, lam=10.0, c0=1.0, c1=1.0)
    with pytest.raises(ValueError, match="block_constants"):
        A.block_constants(c0=1, c1=1, k=2, policy="bogus")


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(),
                         nn.Linear(6 * 6 * 6, 20), nn.ReLU(), nn.Linear(20, 5))


@pytest.mark.parametrize("mode", ["qr", "perm_identity", "identity"])
@pytest.mark.parametrize("k", [1, 3, 4])
def test_bases_orthonormal_and_partition(mode, k):
    net = _net()
    blocks = make_blocks(net, k, mode=mode, seed=1)
    for s in blocks.specs.values():
        if s.coordinate:
            idx = torch.cat([b for b in s.bases if b is not None])
            assert sorted(idx.tolist()) == list(range(len(idx)))
            continue
        mats = [b for b in s.bases if b is not None]
        for a in mats:
            assert a.dtype == torch.float32
            assert torch.allclose(a.t() @ a, torch.eye(a.shape[1]), atol=1e-5)
        total = sum(a @ a.t() for a in mats)
        assert torch.allclose(total, torch.eye(total.shape[0]), atol=1e-5)
    assert blocks.dims().sum() == sum(p.numel() for p in net.parameters())
    # projectors partition every tensor: Σᵢ Pᵢ v = v
    v = {n: torch.randn_like(p) for n, p in net.named_parameters()}
    parts = [blocks.project(i, v) for i in range(k)]
    for n in v:
        assert torch.allclose(sum(p[n] for p in parts), v[n], atol=1e-5)


@pytest.mark.parametrize("split,k", [("equal", 3), ("layers", 2), ("head", 2)])
def test_wrapped_model_same_outputs(split, k):
    net = _net().eval()
    x = torch.randn(8, 1, 8, 8)
    blocks = make_blocks(net, k, split=split, seed=2)
    params = {n: p.detach() for n, p in net.named_parameters()}
    rebuilt = blocks.compose(blocks.coefficients(params))
    out = torch.func.functional_call(net, {**rebuilt, **dict(net.named_buffers())}, (x,))
    assert torch.allclose(out, net(x), atol=1e-5)


def test_noise_only_in_active_block():
    net = _net()
    blocks = make_blocks(net, 4, seed=3)
    view = ParamView(net)
    before = view.tensors()
    before = {n: t.clone() for n, t in before.items()}
    x = torch.randn(64, 1, 8, 8)
    y = torch.randint(0, 5, (64,))
    sched = NoisySchedule(eta=0.01, lam=1.0)
    sampler = RetainSampler(x, y, 16, torch.Generator().manual_seed(0), "cpu")
    noisy_phase(net, blocks, 2, sigma=0.5, c1=1.0, t_ft=4, sched=sched, sampler=sampler,
                generator=torch.Generator().manual_seed(1))
    delta = {n: p.detach() - before[n] for n, p in view.named.items()}
    for i in range(4):
        part = blocks.project(i, delta)
        norm = math.sqrt(sum(float((t**2).sum()) for t in part.values()))
        assert (norm > 0.1) if i == 2 else (norm < 1e-4), (i, norm)
    # a layer-owned split leaves the other layers bit-identical
    net2 = _net()
    b2 = make_blocks(net2, 2, split="layers")
    ref = {n: p.detach().clone() for n, p in net2.named_parameters()}
    noisy_phase(net2, b2, 1, sigma=0.5, c1=1.0, t_ft=2, sched=sched, sampler=sampler,
                generator=torch.Generator().manual_seed(1))
    for n, p in net2.named_parameters():
        assert torch.equal(p.detach(), ref[n]) == (b2.specs[n].owner != 1), n


@pytest.mark.parametrize("mode", ["qr", "perm_identity"])
def test_noise_covariance_is_sigma2_projector(mode):
    lin = nn.Linear(6, 8, bias=False)  # weight (8, 6): subspaces of the 6 input features, 8 rows a draw
    blocks = make_blocks(lin, 3, mode=mode, seed=4)
    gen = torch.Generator().manual_seed(5)
    sigma, n = 0.7, 1000
    draws = torch.cat([blocks.noise(1, sigma, {"weight": lin.weight.detach()}, gen)["weight"]
                       for _ in range(n)]).double()  # (8 n, 6)
    cov = draws.t() @ draws / len(draws)
    a = blocks.specs["weight"].bases[1]
    proj = (a @ a.t()).double() if not blocks.specs["weight"].coordinate else torch.diag(
        torch.zeros(6).index_fill(0, a, 1.0)).double()
    target = sigma**2 * proj
    assert float(torch.linalg.norm(cov - target) / torch.linalg.norm(target)) < 0.05


def test_block_nft_runs_and_scaled_energy_equivalent():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))
    x, y = torch.randn(200, 1, 4, 4), torch.randint(0, 3, (200,))
    sched = NoisySchedule(eta=0.005, lam=2.0)
    p = A.plan(eps=2.0, delta=1e-5, k=4, eta=0.005, lam=2.0, c0=0.006, c1=0.15, policy="scaled")
    blocks = make_blocks(net, 4, seed=0)
    logged = []
    info = block_nft(net, blocks, p, sched=sched, retain=(x, y), max_steps=100, seed=0,
                     on_eval=lambda s, ph, b, m: logged.append((s, ph, b)))
    assert info["noisy_steps"] == 4 * 18 and info["total_steps"] == 100
    assert sum(1 for _, ph, _ in logged if ph == "noisy") == 4 * 9
    # claim 6b in miniature: with the loss gradient off the end-of-phase energy is the same for k
    e = {}
    for k in (1, 4):
        pk = A.plan(eps=2.0, delta=1e-5, k=k, eta=0.005, lam=2.0, c0=0.006, c1=0.15, policy="scaled")
        e[k] = np.mean([perturbation_energy(net, make_blocks(net, k, seed=s), pk, sched=sched, seed=s)
                        for s in range(20)])
    assert e[4] == pytest.approx(e[1], rel=0.05)


def _projector_phase(model, blocks, i, *, sigma, c1, t_ft, sched, sampler, generator):
    """The noisy phase written with the projectors Pᵢ (the definition; float64 clip norm):
    x ← x − ηλPᵢx − η clip(Pᵢg) (m − 1 times), then x ← x + Pᵢξ."""
    view = ParamView(model)
    model.train()
    sigma_inj = injection_sigma(sigma, eta=sched.eta, lam=sched.lam, m=sched.m)
    for _ in range(t_ft // (sched.m - 1)):
        for _ in range(sched.m - 1):
            params = view.named
            with torch.no_grad():
                step = {n: sched.eta * sched.lam * d for n, d in blocks.project(i, view.tensors()).items()}
            if sched.use_loss_gradient:
                xb, yb = sampler.next()
                grads = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xb), yb), list(params.values()))
                g = blocks.project(i, dict(zip(params, grads)))
                gnorm = float(torch.sqrt(sum((v.double() ** 2).sum() for v in g.values())))
                scale = min(1.0, c1 / max(gnorm, 1e-30))
                step = {n: step[n] + sched.eta * scale * g[n] for n in step}
            with torch.no_grad():
                for n, p in params.items():
                    p.sub_(step[n])
        with torch.no_grad():
            for n, xi in blocks.noise(i, sigma_inj, view.tensors(), generator).items():
                view.named[n].add_(xi)


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("mode,split,k", [("qr", "equal", 1), ("qr", "equal", 3), ("perm_identity", "equal", 4),
                                          ("identity", "equal", 2), ("qr", "layers", 2), ("qr", "head", 2)])
def test_coordinate_step_loop_equals_projector_form(mode, split, k, m):
    """noisy_phase works in block coordinates (one matmul per parameter, noise drawn in them);
    it follows the projector form step for step, with the same noise numbers (float32 rounding)."""
    net = _net()
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 5, (64,))
    sched = NoisySchedule(eta=0.01, lam=1.0, m=m)
    fast, ref = net, _net()
    blocks = make_blocks(fast, k, mode=mode, split=split, seed=1)
    for i in range(k):
        for model, fn in ((fast, noisy_phase), (ref, _projector_phase)):
            fn(model, blocks, i, sigma=0.05, c1=0.5, t_ft=6, sched=sched,
               sampler=RetainSampler(x, y, 16, torch.Generator().manual_seed(i), "cpu"),
               generator=torch.Generator().manual_seed(10 + i))
    moved = max(float((p - q).abs().max()) for p, q in zip(fast.parameters(), _net().parameters()))
    err = max(float((p - q).abs().max()) for p, q in zip(fast.parameters(), ref.parameters()))
    assert moved > 0.05 and err < 1e-5, (moved, err)
    # the mechanism's shortcut (coordinates only, written once per phase) equals the step loop
    off = NoisySchedule(eta=0.01, lam=1.0, m=m, use_loss_gradient=False)
    p = A.plan(eps=2.0, delta=1e-5, k=k, eta=0.01, lam=1.0, c0=0.1, c1=0.5, policy="scaled", m=m)
    energy = perturbation_energy(net, blocks, p, sched=off, seed=3)
    x0 = ParamView(net).flat().clone()
    gen = torch.Generator().manual_seed(4)
    for b in p.blocks:
        _projector_phase(net, blocks, b.block, sigma=b.sigma, c1=b.c1, t_ft=b.t_ft, sched=off, sampler=None,
                         generator=gen)
    assert energy == pytest.approx(float(((ParamView(net).flat() - x0).double() ** 2).sum()), rel=1e-5)


# jobs: one per row, checkpointed by unit; a killed job resumes into its own settings --------------
def _smoke(**sections):
    from reprosuite.config import load_config
    from reprosuite.registry import get_paper

    paper = get_paper("certified")
    return paper, dataclasses.replace(load_config(paper, "smoke"), **sections)


def _comparable(frame):
    return frame[[c for c in frame.columns if not (c.endswith("_s") or "time" in c)]].reset_index(drop=True)


class _Killed(Exception):
    pass


def _killed_at(paper, cfg, experiment, shard, results, when):
    """Run a job until it saves a checkpoint for which ``when(state)`` holds, and end it there (what a
    kill leaves: ``state.pt``, no records); returns its context."""
    from reprosuite.config import to_dict
    from reprosuite.registry import resolve
    from reprosuite.runner import RunContext, settings_hash

    class Killing(RunContext):
        def save_state(self, state):
            super().save_state(state)
            if when(dict(state)):
                raise _Killed

    exp = paper.experiment(experiment)
    params = dict(exp.shards(cfg)[shard])
    ctx = Killing("certified", experiment, shard, 0, "smoke", "cpu", results,
                  config_hash=settings_hash({"config": to_dict(cfg), "shard_params": params}))
    with pytest.raises(_Killed):
        list(resolve(exp.run)(cfg, ctx, params))
    assert (ctx.dir / "state.pt").exists() and not (ctx.dir / "records.csv").exists()
    return RunContext(**{f.name: getattr(ctx, f.name) for f in dataclasses.fields(RunContext)})


def test_row_jobs_resume_after_their_last_checkpoint(tmp_path):
    """models (one job per row, checkpointed per epoch) and nft (one job per row, per (ε, seed)):
    killed after a checkpoint, the job resumes from it and writes the uninterrupted run's records."""
    from reprosuite.runner import run_job

    paper, cfg = _smoke(seeds=(0, 1))
    cfg = dataclasses.replace(cfg, nft=dataclasses.replace(cfg.nft, variants=("shared", "scaled")))
    kw = dict(seed=0, scale="smoke", device="cpu", threads=1)
    full, part = tmp_path / "full", tmp_path / "part"
    want = {e: run_job(paper, cfg, experiment=e, shard="mnist", results=full, **kw) for e in ("models", "nft")}
    # models: stopped inside the second model (the retrain), after its first epoch
    ctx = _killed_at(paper, cfg, "models", "mnist", part, lambda st: st["done"] == 1 and st["current"] is not None)
    saved = ctx.load_state()
    assert saved["epoch"] == cfg.mnist.epochs + 1 and saved["current"]["model_epoch"] == 1
    got = run_job(paper, cfg, experiment="models", shard="mnist", results=part, **kw)
    pd.testing.assert_frame_equal(_comparable(got), _comparable(want["models"]), check_dtype=False)
    # nft: stopped after its first (ε, seed); the resumed job re-yields the saved unit, makes the second
    ctx = _killed_at(paper, cfg, "nft", "mnist", part, lambda st: st["units"] == 1)
    state = ctx.load_state()
    marked = [{**r, "marker": "saved"} for r in state["records"]]
    ctx.save_state({**state, "records": marked})
    got = run_job(paper, cfg, experiment="nft", shard="mnist", results=part, **kw)
    assert set(got["marker"].dropna()) == {"saved"} and got["marker"].notna().sum() == len(marked)
    assert (got.loc[got["marker"].isna(), "seed"] == 1).all()
    pd.testing.assert_frame_equal(_comparable(got.drop(columns="marker")), _comparable(want["nft"]), check_dtype=False)
    # NFT (k = 1) is one run per seed, recorded under every variant with its own labels
    s = want["nft"][(want["nft"]["row"] == "summary") & (want["nft"]["k"] == 1)]
    assert s.groupby("seed")["post_noise_accuracy"].nunique().eq(1).all()
