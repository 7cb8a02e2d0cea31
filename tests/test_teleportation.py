"""Tests of the teleportation paper: configs, experiments on tiny grids, checks on real records."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from reprosuite.config import load_config
from reprosuite.registry import get_paper

from .conftest import FakeContext

PAPER = get_paper("teleportation")


def Ctx():  # noqa: N802 (reads like the class it stands for)
    return FakeContext(experiment="x", paper="teleportation", shard="s")


@pytest.mark.parametrize("scale", ["smoke", "default", "paper"])
def test_configs_load_at_every_scale(scale):
    cfg = load_config(PAPER, scale)
    assert cfg.fig2.lrs and all(k <= cfg.tab2.n_nodes for k in cfg.tab2.tele_ks)


@pytest.mark.parametrize("section, key, value, match", [
    ("tab2", "lr", 0.0, "lr = 0.0 must be > 0"),
    ("tab2", "tele_ks", (30,), "k = 30; must be in"),
    ("tab2", "alphas", (0.0,), "alphas"),
    ("tab2", "arch", "lenet_gn", "tab2.arch = 'lenet_gn' does not take tab2.dataset = 'cifar10'; allowed: lenet_gn with "
                                 "fashion_mnist, vgg_gn with cifar10"),
    ("fig2", "sigma", -1.0, "sigma"),
    ("fig2", "dsgd_graphs", ("torus",), "dsgd_graphs"),
    ("alg2", "horizon", 0, "horizon"),
])
def test_bad_values_are_refused(section, key, value, match):
    cfg = PAPER.config()
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(getattr(cfg, section), **{key: value})


def _tiny():
    cfg = load_config(PAPER, "smoke")
    return dataclasses.replace(cfg, fig2=dataclasses.replace(cfg.fig2, n_values=(8, 16), ks=(1, 4, 8, 16), iterations=300,
                                                             lrs=(0.05, 0.01), seeds=(0, 1, 2)),
                               alg2=dataclasses.replace(cfg.alg2, horizon=100, schedules=("parallel_waves", "doubling")))


def test_mixing_experiment_and_claims():
    from reprosuite.papers.teleportation import checks, synthetic, tables

    cfg = _tiny()
    df = pd.DataFrame(list(synthetic.run_mixing(cfg, Ctx(), {})))
    tab = tables.tab_mixing({"mixing": df}, cfg)
    assert checks.k_equals_n({"tab_mixing": tab}, tol=0.0).passed
    ring = tab[(tab["kind"] == "slot") & (tab["graph"] == "ring")].set_index("k")["p"]
    assert ring[16] == pytest.approx(0.09892, abs=5e-6) and ring[1] == ring[2] == 1.0
    out = checks.mixing_matrices({"tab_mixing": tab}, ring_p={16: 0.09892}, p_atol=5e-6, stoch_tol=1e-12, consensus_tol=1e-12)
    assert out.passed, out


def test_fig2_records_and_tables():
    from reprosuite.papers.teleportation import plots, synthetic, tables

    cfg = _tiny()
    df = pd.DataFrame(list(synthetic.run_fig2(cfg, Ctx(), {"n_values": list(cfg.fig2.n_values)})))
    assert set(df["method"]) == {"dsgd", "tele"} and (df["dataset"] == "synthetic").all()
    assert (df["iterations_to_target"] <= cfg.fig2.iterations).all()
    assert len(df) == len(cfg.fig2.lrs) * len(cfg.fig2.seeds) * df.groupby(["method", "graph", "n", "k"]).ngroups
    tab = tables.tab_fig2({"fig2": df}, cfg)
    assert tab["best_k"].sum() == 2  # one best k per n for the ring slot graph
    fig = plots.fig2({"fig2": df}, cfg)
    assert fig.axes[0].get_xlabel() == "number of nodes n"
    plots.fig_k({"fig2": df}, cfg)


def test_alg2_within_budget_and_costs():
    from reprosuite.papers.teleportation import synthetic, tables

    cfg = _tiny()
    df = pd.DataFrame(list(synthetic.run_alg2(cfg, Ctx(), {"n_values": [16]})))
    s = df[df["kind"] == "search"]
    assert (s["search_iterations"] <= s["budget"]).all() and (s["budget"] == 2 * cfg.alg2.horizon).all()
    waves = s[s["schedule"] == "parallel_waves"]
    assert (waves["search_iterations"] == 2 * cfg.alg2.horizon).all()
    assert (waves["search_node_steps"] == cfg.alg2.horizon * 31).all()  # K = 1, 2, 4, 8, 16
    assert (waves["grid_iterations"] == 5 * cfg.alg2.horizon).all()
    assert set(s["chosen_k"]) <= {1, 2, 4, 8, 16}
    tab = tables.tab_alg2({"alg2": df}, cfg)
    assert set(tab["schedule"]) == {"parallel_waves", "doubling"}


def test_tab2_run_resumes_and_accounts(tmp_path):
    """One tiny TELEPORTATION run on synthetic images: k distinct nodes, accounting, resume."""
    from reprosuite.data import ImageData
    from reprosuite.papers.teleportation import nn as tele_nn

    rng = np.random.default_rng(0)
    fake = ImageData("fashion_mnist", rng.integers(0, 255, (640, 28, 28), dtype=np.uint8), rng.integers(0, 10, 640),
                     rng.integers(0, 255, (200, 28, 28), dtype=np.uint8), rng.integers(0, 10, 200))
    cfg = load_config(PAPER, "smoke")
    cfg = dataclasses.replace(cfg, tab2=dataclasses.replace(cfg.tab2, n_train=None, n_test=None, n_test_nodes=100,
                                                            n_nodes=8, epochs=2, tele_ks=(3,)))
    shard = {"methods": [["tele", "ring", 3]], "alphas": [0.1], "rounds_factor": 1}
    orig = tele_nn.image_dataset
    tele_nn.image_dataset = lambda name, data_dir=None: fake
    try:
        full = list(tele_nn.run_tab2(cfg, Ctx(), shard))
        ctx = Ctx()
        gen = tele_nn.run_tab2(cfg, ctx, shard)
        first = next(gen)
        gen.close()
        resumed = list(tele_nn.run_tab2(cfg, ctx, shard))
    finally:
        tele_nn.image_dataset = orig
    assert resumed[0] == first and len(resumed) == len(full) == 2
    assert resumed[-1]["test_accuracy_xbar"] == pytest.approx(full[-1]["test_accuracy_xbar"])
    last = full[-1]
    assert last["node_steps"] == last["rounds"] * 3 and last["samples_processed"] == last["rounds"] * 3 * 32
    assert last["sim_time"] > 0 and last["k"] == 3


def test_every_claim_has_a_check():
    from pathlib import Path

    from reprosuite.claims import load_claims
    from reprosuite.papers.teleportation.checks import CHECKS

    claims = load_claims(Path(__file__).resolve().parents[1] / "experiments" / "teleportation" / "claims.yaml")
    assert {c["check"] for c in claims} <= set(CHECKS)
    assert set(CHECKS) <= {c["check"] for c in claims}
