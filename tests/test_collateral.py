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
    unlearn = [j for j in jobs if j[0] == "unlearn"]
    assert len(unlearn) == len(cfg.main.methods) * len(cfg.seeds) * len(cfg.main.forget_classes) * len(cfg.main.forget_fracs)
    names = [e for e, _, _ in jobs]
    assert names.index("models") < names.index("reference") < names.index("unlearn")  # run_paper order


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


def test_localized_check_on_synthetic_curves():
    from reprosuite.papers.collateral.checks import localized, ltd_lower

    rows = []
    curves = {"ga": np.linspace(0.01, 0.3, 10), "rl_nr": np.linspace(0.01, 0.3, 10), "rl": np.linspace(0.005, 0.1, 10),
              "ltd": np.full(10, 0.02), "original": np.full(10, 0.03), "retrain_floor": np.full(10, 0.05)}
    for method, vals in curves.items():
        for b, v in enumerate(vals):
            rows.append({"row": "bin", "split": "test", "binning": "equal_width", "method": method, "seed": 0,
                         "bin": b, "consensus_count": 100, "mismatch_a": v})
    t = pd.DataFrame(rows)
    un, ref = t[~t.method.isin(["original", "retrain_floor"])], t[t.method.isin(["original", "retrain_floor"])]
    out = localized({"unlearn": un, "reference": ref}, methods=["ga", "rl_nr", "rl"], orig_methods=["ga", "rl_nr"],
                    metric="mismatch_a", min_consensus=30, ratio=3.0, floor=0.01, spearman_min=0.6, orig_ratio=2.0)
    assert out.passed, out.measured
    assert ltd_lower({"unlearn": un, "reference": ref}, baselines=["ga", "rl_nr", "rl"], metric="mismatch_a",
                     min_consensus=30, factor=0.5, floor_margin=0.03).passed


def test_cifar100_offline_gives_clear_error(tmp_path):
    from reprosuite.data import DataUnavailable, cifar100

    try:
        cifar100(tmp_path)
    except DataUnavailable as err:
        assert "cifar100" in str(err) and str(tmp_path) in str(err)
    else:  # pragma: no cover - a machine with internet
        pytest.skip("CIFAR-100 downloaded; online machine")
