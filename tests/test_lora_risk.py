"""lora_risk: math invariants and pinned values, Monte Carlo vs closed form, peft behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from reprosuite.papers.lora_risk import montecarlo, theory


def _task(seed, dx=4, dy=3, n=6, true_rank=2, sigma=0.5):
    _, delta, x, e = theory.draw_task(seed, dx=dx, dy=dy, n=n, true_rank=true_rank, spectrum="gaussian", sigma=sigma)
    return delta @ x + e, x, delta


@pytest.mark.parametrize("n", [6, 3])
def test_lora_is_best_rank1_correction_by_brute_force(n):
    """For rank 1, D = b aᵀ with the optimal b for each unit direction a: scan the sphere densely."""
    resid, x, _ = _task(7, n=n)
    closed = theory.training_loss(theory.lora_estimate(resid, x, rank=1), resid, x)
    a = np.random.default_rng(0).standard_normal((200_000, x.shape[0]))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    z = a @ x  # (k, n): aᵀ X
    zz = np.einsum("kn,kn->k", z, z)
    b = resid @ z.T / np.where(zz > 1e-12, zz, np.inf)  # (dy, k) optimal b per direction
    losses = np.sum(resid**2) - np.einsum("dk,dk->k", b, resid @ z.T)
    assert closed <= losses.min() + 1e-9  # nothing found beats the closed form
    assert losses.min() <= closed * (1 + 1e-3)  # and the scan gets arbitrarily close to it


def test_svd_form_equals_authors_form_and_full_rank_is_fft():
    for seed, n in ((1, 10), (2, 3)):
        resid, x, _ = _task(seed, n=n)
        ours, authors = theory.lora_estimate(resid, x, rank=1), theory.lora_estimate_authors(resid, x, rank=1)
        assert theory.training_loss(ours, resid, x) == pytest.approx(theory.training_loss(authors, resid, x), rel=1e-9)
        m = min(n, x.shape[0])
        np.testing.assert_allclose(theory.lora_estimate(resid, x, rank=min(3, m)), theory.fft_estimate(resid, x), atol=1e-10)


def test_lora_at_r_equal_dy_equals_fft_in_monte_carlo():
    """The rank-r estimator is computed at full rank (not copied from FFT) and agrees to rounding."""
    delta, x, e = montecarlo.draw_batch(seeds=range(5), dx=8, dy=4, n=20, true_rank=2, spectrum="gaussian",
                                        scale=1.0, decay=0.5)
    errs = montecarlo.Design(delta, x).errors(e, ranks=(2, 4, 6))
    assert errs[4] is not errs["fft"]
    np.testing.assert_allclose(errs[4], errs["fft"], rtol=1e-10)
    np.testing.assert_allclose(errs[6], errs["fft"], rtol=1e-10)
    assert not np.allclose(errs[2], errs["fft"])  # a real rank restriction differs


def test_fft_cells_draws_match_the_exact_formula():
    """c2's fast draws (Wishart eigenvalues + Gaussian block) reproduce the exact FFT risk, both regimes."""
    from reprosuite.papers.lora_risk import cells

    fams = [cells.Family("t", "gaussian", 3, 1.0, 0.0, {}), cells.Family("t", "fast_decay", 10, 5.0, 0.5, {})]
    for n in (40, 8):  # dx = 20: over- and underdetermined
        for risk, formula in cells._draw(np.random.default_rng(1), 4000, 1000, dx=20, dy=6, n=n, sigma=0.7,
                                         families=fams):
            se = risk.std(ddof=1) / np.sqrt(len(risk))
            assert abs(risk.mean() - formula.mean()) < 4 * se + 1e-9


def test_antithetic_flip_changes_only_the_null_space_part():
    """A_init(2P − I) keeps A_init·P and negates A_init·P⊥, so the GD path of B and A·P is the same."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 4))  # dx = 10 > n = 4
    ux = np.linalg.svd(x, full_matrices=False)[0]
    p = ux @ ux.T
    a = rng.standard_normal((2, 10))
    flipped = a @ (2 * p - np.eye(10))
    np.testing.assert_allclose(flipped @ p, a @ p, atol=1e-12)
    np.testing.assert_allclose(flipped @ (np.eye(10) - p), -a @ (np.eye(10) - p), atol=1e-12)
    np.testing.assert_allclose(flipped @ x, a @ x, atol=1e-12)


@pytest.mark.parametrize("section, key, value", [("gd", "n_seeds", 1), ("fft_cells", "min_gap", 2),
                                                 ("hybrid", "near_seeds", 0), ("fig3", "sigma", [0.0])])
def test_bad_config_values_are_refused(section, key, value):
    from reprosuite.config import ConfigError, load_config
    from reprosuite.registry import get_paper

    with pytest.raises((ValueError, ConfigError), match=key):
        load_config(get_paper("lora_risk"), "smoke", extra={section: {key: value}})


@pytest.mark.parametrize("dx, dy, n", [(10, 5, 40), (20, 10, 100), (8, 8, 30),  # overdetermined
                                       (40, 10, 10), (30, 6, 8), (50, 12, 20)])  # underdetermined
def test_fft_exact_risk_matches_monte_carlo_within_3_percent(dx, dy, n):
    rows = list(montecarlo.sweep(dx=dx, dy=dy, ns=(n,), sigmas=(1.0,), true_ranks=(3,), decays=(0.5,),
                                 spectrum="gaussian", scale=1.0, ranks=(1,), n_seeds=3000, base_seed=0))
    fft = next(r for r in rows if r["method"] == "fft")
    assert fft["risk_mean"] == pytest.approx(fft["theory_exact"], rel=0.03)


def test_pinned_closed_forms():
    # first-order table of docs/papers/lora_risk.md, formula column (dx = dy = 60, r = 3, σ = 1)
    got = [round(theory.inspan_first_order(n=n, dx=60, dy=60, sigma=1.0, rank=3), 2) for n in (10, 30, 70, 120)]
    assert got == [3.67, 6.16, 22.59, 4.52]
    assert theory.inspan_first_order(n=45, dx=60, dy=60, sigma=1.0, rank=None) == pytest.approx(192.857, rel=1e-4)
    # F4 FFT = 0.25 * 1600 / 159 and F2 FFT (n = 30 < dx = 40, E‖Δ‖² = 1600)
    assert theory.fft_risk_exact(n=200, dx=40, dy=40, sigma=0.5, delta_fro2=1.0) == pytest.approx(2.516, abs=1e-3)
    assert theory.fft_risk_exact(n=30, dx=40, dy=40, sigma=2.0, delta_fro2=1600.0) == pytest.approx(933.3, abs=0.1)
    assert theory.fft_risk_exact(n=40, dx=40, dy=40, sigma=1.0, delta_fro2=1.0) == np.inf
    # rank rule (docs/papers/lora_risk.md): s_i = 5 e^{-a i}, dx = dy = 40, n = 200, σ = 0.5
    rule = [theory.rank_rule(svals=theory.spectrum_values(kind="fast_decay", true_rank=40, scale=5.0, decay=a),
                             n=200, dx=40, dy=40, sigma=0.5) for a in (0.5, 1.0, 1.5)]
    assert rule == [6, 3, 2]


def test_crossover_root_and_vectorised_hybrid():
    sv = theory.spectrum_values(kind="fast_decay", true_rank=100, scale=5.0, decay=0.5)
    nstar = theory.crossover_n(svals=sv, rank=1, dx=100, dy=100, sigma=1.0)
    lora = theory.tail_energy(sv, rank=1) + (1 * 100 / (nstar - 101) + 99 / (nstar - 2))
    assert lora == pytest.approx(100 * 100 / (nstar - 101), rel=1e-8)
    for n in (30.0, 200.0):
        vec = theory.hybrid_risk_ranks(n=n, dx=40, dy=50, sigma=1.5, svals=sv[:10] * 4, max_rank=35)
        ref = [theory.hybrid_risk(n=n, dx=40, dy=50, sigma=1.5, svals=sv[:10] * 4, rank=r) for r in range(1, 36)]
        np.testing.assert_allclose(vec, ref, rtol=1e-12)


def test_peft_linear_freezes_base_and_trains_r_times_in_plus_out():
    import torch

    from reprosuite.papers.lora_risk import gd

    a0 = np.random.default_rng(0).standard_normal((5, 7))  # (d_out, d_in)
    model = gd.lora_linear(a0, rank=2)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 2 * (7 + 5)
    x = np.random.default_rng(1).standard_normal((7, 20))
    gd.fit(model, x, a0 @ x + 1.0, optimizer="gd", max_iter=20, warmup_steps=0)
    layer = model.base_model.model.proj
    np.testing.assert_array_equal(layer.base_layer.weight.detach().numpy(), a0)  # base frozen
    assert float(torch.linalg.matrix_norm(layer.lora_B["default"].weight)) > 0  # the adapter trained
    assert not np.allclose(gd.effective_weight(model), a0)


def test_minilm_trainable_counts_claim12():
    import copy

    from reprosuite.config import load_config
    from reprosuite.papers.lora_risk import practical
    from reprosuite.registry import get_paper

    p = load_config(get_paper("lora_risk"), "default").practical
    encoder, _ = practical.load_encoder()
    counts = {}
    for method, rank in (("fft", 0), ("lora", 1), ("lora", 8), ("lora", 64), ("head", 0)):
        model = practical.adapt(practical.build_classifier(copy.deepcopy(encoder), pooling="mean", seed=0),
                                method=method, rank=rank, p=p)
        counts[f"{method}{rank or ''}"] = practical.trainable_count(model)
    assert counts == {"fft": 22_713_986, "lora1": 43_010, "lora8": 338_690, "lora64": 2_704_130, "head": 770}


def test_rotten_tomatoes_split_matches_plan():
    from reprosuite.papers.lora_risk import practical

    frame, train, val, test = practical.split_rotten_tomatoes(fractions=(0.7, 0.1, 0.2), seed=0)
    assert (len(train), len(test)) == (8894, 2518)
    assert frame["label"].to_numpy()[test].mean() == pytest.approx(0.579, abs=1e-3)
    movies = frame["movie_name"].to_numpy()
    assert not set(movies[train]) & set(movies[test])


def test_paper_config_loads_and_offline_llm_error_names_paths(monkeypatch, tmp_path):
    from reprosuite.config import load_config
    from reprosuite.data import DataUnavailable
    from reprosuite.papers.lora_risk import llm
    from reprosuite.registry import get_paper, iter_runs

    paper = get_paper("lora_risk")
    cfg = load_config(paper, "paper")
    jobs = list(iter_runs(paper, cfg))
    assert any(e == "llm" for e, _, _ in jobs) and cfg.llm.model == "Qwen/Qwen2.5-0.5B"
    assert not any(e == "llm" for e, _, _ in iter_runs(paper, load_config(paper, "default")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataUnavailable, match="models--Qwen--Qwen2.5-0.5B") as err:
        llm.load_task("boolq", model=cfg.llm.model, cache_dir=str(tmp_path))
    assert "google/boolq" in str(err.value) and str(tmp_path) in str(err.value)


def test_chunked_samples_equal_the_sweep_and_hybrid_runs_at_smoke():
    """montecarlo.samples (chunks of seeds) gives the sweep's numbers; run_hybrid yields every cell."""
    from reprosuite.config import load_config
    from reprosuite.papers.lora_risk import synthetic
    from reprosuite.registry import get_paper

    kw = dict(dx=12, dy=8, true_rank=2, spectrum="gaussian", scale=1.0, decay=0.5)
    errs, null, svals, m = montecarlo.samples(seeds=range(7), n=20, sigmas=(0.5,), ranks=(1, 8), chunk=3, **kw)
    rows = list(montecarlo.sweep(ns=(20,), sigmas=(0.5,), true_ranks=(2,), decays=(0.5,), ranks=(1, 8), n_seeds=7,
                                 base_seed=0, **{k: v for k, v in kw.items() if k not in ("true_rank", "decay")}))
    assert rows[0]["risk_mean"] == pytest.approx(float(np.mean(errs[0.5]["fft"] + null)), rel=1e-12)
    assert rows[1]["risk_mean"] == pytest.approx(float(np.mean(errs[0.5][1] + null)), rel=1e-12)

    class Ctx:
        def use_dataset(self, *a, **k):
            pass

        def progress(self, it, **k):
            return it

    cfg = load_config(get_paper("lora_risk"), "smoke")
    got = list(synthetic.run_hybrid(cfg, Ctx(), {"cells": ["f1like"]}))
    assert len(got) == len(synthetic.HYBRID_CELLS["f1like"]["cells"])
    assert all(r["n_seeds"] == 20 and "over_rule" in r and "gap" in r for r in got)


def test_packed_features_are_the_padded_forward_with_the_same_dropout_stream():
    """Training skips the padding (practical.packed_features): the same features as the model's padded
    forward, eval and train mode (the same dropout masks, drawn from the same stream), and LoRA's
    gradients agree to float rounding."""
    import copy

    import torch

    from reprosuite.config import load_config
    from reprosuite.papers.lora_risk import practical
    from reprosuite.registry import get_paper

    encoder, tok = practical.load_encoder()
    texts = ["a fine film, rough edges and a great cast that keeps it going to the very end", "bad",
             "not good at all, really", "an utter mess that never finds its footing and wastes every actor"] * 2
    x, m = practical.pad(practical.tokenize(tok, texts, 64), tok.pad_token_id)
    assert (m == 0).float().mean() > 0.3  # the batch is padded
    model = practical.build_classifier(copy.deepcopy(encoder), pooling="mean", seed=1)
    for mode in ("eval", "train"):
        getattr(model, mode)()
        torch.manual_seed(7)
        want, stream = model.features(x, m), torch.get_rng_state()
        torch.manual_seed(7)
        got = practical.packed_features(model.encoder, x, m)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert torch.equal(torch.get_rng_state(), stream)  # as many draws, in the same order
    p = load_config(get_paper("lora_risk"), "default").practical
    lora = practical.adapt(practical.build_classifier(copy.deepcopy(encoder), pooling="mean", seed=1),
                           method="lora", rank=8, p=p)
    lora.train()
    net, labels, grads = lora.get_base_model(), torch.tensor([0, 1] * 4), []
    for features in (lambda: net.features(x, m), lambda: practical.packed_features(net.encoder, x, m)):
        torch.manual_seed(3)
        lora.zero_grad()
        torch.nn.functional.cross_entropy(net.classifier(features()), labels).backward()
        grads.append({k: w.grad.clone() for k, w in lora.named_parameters() if w.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == 2 * 36 + 2  # A, B per Linear; the head
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-4, atol=1e-7)


def test_practical_job_per_n_gives_the_cells_records_and_resumes_after_a_kill(tmp_path):
    """practical.jobs = n runs an n's cells in one job, each seeded as a job of its own (peft draws
    LoRA's A from the global stream): the records of the per-cell jobs; killed mid-way (a checkpoint
    of its last cell), it resumes to them."""
    import dataclasses

    import pandas as pd
    import torch

    from reprosuite.config import load_config
    from reprosuite.papers.lora_risk import _practical_shards, practical
    from reprosuite.registry import get_paper
    from reprosuite.runner import RunContext

    base = load_config(get_paper("lora_risk"), "smoke")
    small = dict(methods=("head", "lora"), ranks=(8,), ns=(16,), max_steps=2, checkpoint_steps=1, test_subset=20)
    by_cell = dataclasses.replace(base, practical=dataclasses.replace(base.practical, **small, jobs="cell"))
    by_n = dataclasses.replace(base, practical=dataclasses.replace(base.practical, **small, jobs="n"))
    assert list(_practical_shards(by_n)) == ["n16"]
    wall = ["model_load_s", "train_time_s", "eval_time_s", "wall_time_s"]

    def run(cfg, shard, params):
        torch.manual_seed(12345)  # whatever the runner left: each cell reseeds
        ctx = RunContext(paper="lora_risk", experiment="practical", shard=shard, seed=0, scale="smoke",
                         device="cpu", results=tmp_path / cfg.practical.jobs, config_hash="test")
        return pd.DataFrame(list(practical.run_practical(cfg, ctx, params))).drop(columns=wall), ctx

    cells = pd.concat([run(by_cell, name, params)[0] for name, params in _practical_shards(by_cell).items()],
                      ignore_index=True)
    (params,) = _practical_shards(by_n).values()
    grouped, ctx = run(by_n, "n16", params)
    pd.testing.assert_frame_equal(grouped, cells)

    (ctx.dir / "state.pt").unlink()  # the runner's job, once the records are written
    saves = []

    def killed(state, save=ctx.save_state):
        save(state)
        saves.append(state["step"])
        if state.get("cell") == "lora8-n16":
            raise KeyboardInterrupt  # killed once the last cell has a checkpoint

    ctx.save_state = killed
    with pytest.raises(KeyboardInterrupt):
        list(practical.run_practical(by_n, ctx, params))
    assert saves == [1, 3]  # the job's steps: head at 1, then LoRA at 1 (2 steps a cell)
    resumed, _ = run(by_n, "n16", params)
    pd.testing.assert_frame_equal(resumed, cells)
