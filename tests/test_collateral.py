"""Tests of the collateral paper package (declarations, split, synthetic ripple, checks); fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reprosuite.config import load_config
from reprosuite.registry import get_paper, iter_runs


@pytest.fixture(scope="module")
def paper():
    return get_paper("collateral")


@pytest.mark.parametrize("scale", ["smoke", "default", "paper"])
def test_configs_load_and_unlearn_jobs_need_shared_models(paper, scale):
    cfg = load_config(paper, scale)
    jobs = list(iter_runs(paper, cfg))
    models = {s for e, s, _ in jobs if e == "models"}
    for exp, shard, seed in jobs:
        for need_exp, need_shard, _ in paper.experiment(exp).needs(cfg, shard, seed):
            assert need_shard in (models if need_exp == "models" else paper.experiment(need_exp).shards(cfg))
    unlearn = [j for j in jobs if j[0] == "unlearn"]  # one job per cell runs every (method, seed)
    assert len(unlearn) == len(cfg.main.forget_classes) * len(cfg.main.forget_fracs) * len(cfg.main.model_seeds)
    assert all(("teacher", s, 0) in paper.experiment("unlearn").needs(cfg, s, 0) for _, s, _ in unlearn)
    names = [e for e, _, _ in jobs]
    assert names.index("models") < names.index("reference") < names.index("unlearn")  # run_paper order
    assert names.index("models") < names.index("teacher") < names.index("unlearn")


def test_several_model_seeds_address_their_own_bank_runs(paper):
    import dataclasses

    cfg = load_config(paper, "smoke")
    cfg = dataclasses.replace(cfg, main=dataclasses.replace(cfg.main, model_seeds=(0, 5)))
    jobs = list(iter_runs(paper, cfg))
    assert {k for e, s, k in jobs if e == "models" and s == "original"} == {0, 5}
    needs = paper.experiment("unlearn").needs(cfg, "c2-f0.5-m5", 0)
    assert needs == [("models", "original", 5), ("models", "c2-f0.5-r0", 5), ("reference", "c2-f0.5-m5", 0),
                     ("teacher", "c2-f0.5-m5", 0)]
    assert paper.experiment("teacher").needs(cfg, "c2-f0.5-m5", 0) == [("models", "original", 5)]
    with pytest.raises(ValueError, match="model_seeds"):
        dataclasses.replace(cfg.main, model_seeds=())


def test_default_forget_set_is_first_half_of_pullover(paper):
    from reprosuite.data import fashion_mnist, stratified_indices
    from reprosuite.unlearning.splits import partial_class_split

    cfg = load_config(paper, "default").main
    y = fashion_mnist().y_train
    sub = stratified_indices(y, cfg.n_train, seed=cfg.subset_seed)
    assert np.all(np.diff(sub) > 0)  # data-set order kept
    ys = y[sub]
    s = partial_class_split(ys, 2, 0.5)
    assert len(s.forget) == 1500 and np.array_equal(s.forget, np.flatnonzero(ys == 2)[:1500])


def test_ga_ripple_is_quadratic_with_minimum_at_zero():
    from reprosuite.papers.collateral.checks import ripple_ga
    from reprosuite.papers.collateral.synthetic import _binned, ga_linear_run

    rng = np.random.default_rng(0)
    runs = [ga_linear_run(rng, 300, 10, 300, 0.01, 0.5, 2000) for _ in range(5)]
    rho, gap = np.concatenate([r[0] for r in runs]), np.concatenate([r[1] for r in runs])
    rows = pd.DataFrame(_binned(rho, {"sq_gap": gap}, np.linspace(-1, 1, 31))).assign(kind="ga_linear")
    rows["sq_gap_norm"] = rows["sq_gap"] / rows["sq_gap"].max()
    assert ripple_ga({"fig1": rows}, r2_min=0.9).passed


def test_cifar100_offline_gives_clear_error(tmp_path):
    from reprosuite.data import DataUnavailable, cifar100

    try:
        cifar100(tmp_path)
    except DataUnavailable as err:
        assert "cifar100" in str(err) and str(tmp_path) in str(err)
    else:  # pragma: no cover - a machine with internet
        pytest.skip("CIFAR-100 downloaded; online machine")


def test_editing_fig1_or_fig5_does_not_retrain_the_bank(paper):
    import dataclasses

    from reprosuite.workflow import experiment_hashes

    cfg = load_config(paper, "default")
    before = experiment_hashes(paper, cfg, list(iter_runs(paper, cfg)))
    edited = dataclasses.replace(cfg, fig1=dataclasses.replace(cfg.fig1, n_runs=7),
                                 fig5=dataclasses.replace(cfg.fig5, support_sizes=(250,)))
    after = experiment_hashes(paper, edited, list(iter_runs(paper, edited)))
    assert {e for e in before if before[e] != after.get(e)} == {"fig1", "ablation"}
    # another unlearning seed adds unlearning jobs; the bank (its own model seeds) stays trained
    more = dataclasses.replace(cfg, seeds=(*cfg.seeds, max(cfg.seeds) + 1))
    after = experiment_hashes(paper, more, list(iter_runs(paper, more)))
    assert after["models"] == before["models"] and after["reference"] == before["reference"]


def test_jobs_that_loop_over_seeds_draw_what_one_job_per_seed_drew(paper):
    """unlearn, teacher and fig2 run several seeds in one job; each seed's streams are those of a
    job of that seed alone (records of the earlier one-job-per-seed layout stay the same)."""
    from reprosuite.papers.collateral.main import ltd_seed, seed_of
    from reprosuite.runner import RunContext

    def ctx(experiment, seed=0):
        return RunContext(paper="collateral", experiment=experiment, shard="x", seed=seed, scale="default",
                          device="cpu", results=None)

    for k in (0, 1, 2):
        assert seed_of(ctx("unlearn"), k, "unlearn-ga") == ctx("unlearn", k).seed_for("unlearn-ga")
        assert seed_of(ctx("unlearn"), k, "mia") == ctx("unlearn", k).seed_for("mia")
        assert ltd_seed(ctx("teacher"), k) == ctx("unlearn", k).seed_for("unlearn-ltd")


def test_ablation_reuses_the_ltd_teacher_only_at_ltds_own_setting(paper):
    from reprosuite.papers.collateral import ablation_points

    cfg = load_config(paper, "default")
    points = ablation_points(cfg)
    assert [p for p, _ in points] == [(250, "closest", 0.99), (1000, "closest", 0.99), (6000, "closest", 0.99)]
    assert [ltd == cfg.main.hp.ltd for _, ltd in points] == [False, False, True]
    assert ("teacher", "c2-f0.5", 0) in paper.experiment("ablation").needs(cfg, "c2-f0.5", 0)


@pytest.mark.parametrize("make, message", [
    (lambda c: c.Fig1Config(ga_lr=0.0), "fig1.ga_lr = 0.0 must be > 0"),
    (lambda c: c.Fig5Config(teacher_thresholds=(0.5, 1.2)), "fig5.teacher_thresholds"),
    (lambda c: c.MainConfig(n_train=0), "main.n_train = 0 must be >= 1"),
    (lambda c: c.MainConfig(forget_fracs=(0.0,)), "forget_fracs"),
    (lambda c: c.MethodsConfig(ga=c.GAConfig(epochs=0)), "epochs = 0 must be >= 1"),
])
def test_bad_values_are_refused_on_construction(make, message):
    import reprosuite.papers.collateral as c

    with pytest.raises(ValueError, match=message):
        make(c)


def test_unlearn_job_killed_between_runs_resumes_to_the_uninterrupted_records(paper, tmp_path, monkeypatch):
    """The unlearn job runs every (method, seed) of a cell; a kill after the first finished run
    resumes at the second (the first is not run again) and the records equal an uninterrupted job's,
    RTE aside. Tiny: sklearn digits, one epoch."""
    import dataclasses
    import shutil

    import reprosuite.papers.collateral.main as main_mod
    from reprosuite.runner import run_job

    cfg = load_config(paper, "smoke")
    hp = cfg.main.hp
    ltd = dataclasses.replace(hp.ltd, n_support=60, teacher=dataclasses.replace(hp.ltd.teacher, epochs=3))
    cfg = dataclasses.replace(cfg, seeds=(0, 1), main=dataclasses.replace(
        cfg.main, dataset="digits", stand_in_for=None, n_train=None, n_test=None, retain_eval_size=200,
        mia_shadow_size=100, methods=("ga", "ltd"), hp=dataclasses.replace(hp, ltd=ltd)))

    def job(results, experiment, shard):
        return run_job(paper, cfg, experiment=experiment, shard=shard, seed=0, scale="smoke", device="cpu",
                       results=results, threads=1)

    for experiment, shard, _ in iter_runs(paper, cfg):
        if experiment in ("models", "reference", "teacher"):
            job(tmp_path / "run", experiment, shard)
    shutil.copytree(tmp_path / "run", tmp_path / "ref")
    want = job(tmp_path / "ref", "unlearn", "c2-f0.5")
    real, calls = main_mod._unlearn_one, []

    def killed_after_one(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt("killed")
        calls.append(args[2:4])
        return real(*args, **kwargs)

    monkeypatch.setattr(main_mod, "_unlearn_one", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        job(tmp_path / "run", "unlearn", "c2-f0.5")
    assert (tmp_path / "run/collateral/runs/unlearn/c2-f0.5/seed0/state.pt").exists()
    resumed_runs = []

    def count(*args, **kwargs):
        resumed_runs.append(args[2:4])
        return real(*args, **kwargs)

    monkeypatch.setattr(main_mod, "_unlearn_one", count)
    got = job(tmp_path / "run", "unlearn", "c2-f0.5")
    assert calls == [("ga", 0)] and resumed_runs == [("ga", 1), ("ltd", 0), ("ltd", 1)]
    assert set(got["seed"]) == {0, 1} and set(got["method"]) == {"ga", "ltd"}
    pd.testing.assert_frame_equal(got.drop(columns=["rte_s"]), want.drop(columns=["rte_s"]))
