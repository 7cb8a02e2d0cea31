"""Tests of the topology paper package: configs, claims file, experiment math, checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reprosuite.claims import load_claims
from reprosuite.config import ConfigError, apply_overrides, load_config
from reprosuite.registry import get_paper, resolve

ROOT = Path(__file__).resolve().parents[1]


class FakeCtx:
    seed, shard, device, data_dir = 0, "all", "cpu", None

    def progress(self, it, **kw):
        return iter(it)

    def torch_generator(self, stage, device="cpu"):
        import torch

        return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("scale", ["smoke", "default", "paper"])
def test_configs_load_at_every_scale(scale):
    cfg = load_config(get_paper("topology"), scale, root=ROOT)
    assert cfg.fig3.n_nodes >= 2


def test_bad_config_values_fail_early():
    cfg = get_paper("topology").config()
    with pytest.raises(ConfigError, match="moebius"):
        apply_overrides(cfg, {"fig3": {"topologies": ["moebius"]}}, where="test")
    with pytest.raises(ConfigError, match="partitioner"):
        apply_overrides(cfg, {"fig3": {"partitioner": "iid"}}, where="test")


def test_every_claim_has_a_check_and_every_spec_claim_is_present():
    claims = load_claims(ROOT / "experiments" / "topology" / "claims.yaml")
    checks = resolve(get_paper("topology").checks)
    assert all(c["check"] in checks for c in claims)
    ids = {c["id"] for c in claims}
    for needed in ("spectral_table", "tnew_le_tgap", "scaling_slopes", "transient_exponents", "consensus_identity",
                   "fixed_p_spread", "loss_ordered_by_tnew", "nn_accuracy_falls_with_tnew",
                   "heterogeneity_widens_spread", "star_below_ring", "sanity"):
        assert needed in ids


def test_fig1_and_tab1_claims_pass_on_computed_tables():
    from reprosuite.papers.topology import checks, spectral, tables

    cfg = load_config(get_paper("topology"), "smoke", root=ROOT)
    fig1 = pd.DataFrame(list(spectral.run_fig1(cfg, FakeCtx(), {})))
    transient = pd.DataFrame(list(spectral.run_transient(cfg, FakeCtx(), {})))
    tab1 = tables.tab1({"transient": transient}, cfg)
    claims = {c["id"]: c for c in load_claims(ROOT / "experiments" / "topology" / "claims.yaml")}
    for cid, tabs in (("spectral_table", {"fig1": fig1}), ("tnew_le_tgap", {"fig1": fig1}),
                      ("scaling_slopes_ring", {"fig1": fig1}), ("transient_exponents", {"tab1": tab1})):
        out = checks.CHECKS[claims[cid]["check"]](tabs, **claims[cid].get("params", {}))
        assert out.passed, (cid, out)
    assert set(tab1["topology"]) == {"ring", "torus", "hypercube"}


def test_spectral_table_check_catches_a_wrong_value():
    from reprosuite.papers.topology import checks, spectral

    fig1 = pd.DataFrame([spectral.spectral_row("ring", n=16)])
    ref = [{"topology": "ring", "n": 16, "p": 0.098919, "T_gap": 9.10931, "T_new": 1.5}]
    out = checks.spectral_table({"fig1": fig1}, reference=ref, rtol=1e-4, p_atol=1e-5, stoch_tol=1e-12)
    assert not out.passed


def test_loss_ordering_check():
    from reprosuite.papers.topology import checks

    rows = []
    for seed in (0, 1, 2):
        for member, tn, loss in (("a", 0.1, 1.0), ("b", 0.5, 1.2), ("c", 4.0, 1.5)):
            for it in (0, 80, 100):
                rows.append({"model": "ridge", "family": "spectral", "member": member, "seed": seed, "T_new": tn,
                             "p": 0.19, "iteration": it, "loss_node_mean": loss + 0.01 * seed, "loss_xbar": 1.0})
    df = pd.DataFrame(rows)
    assert checks.loss_ordered({"fig2": df}).passed
    assert not checks.loss_ordered({"fig2": df}, metric="loss_xbar").passed  # flat: no gap


def test_nn_checks_on_pilot_numbers():  # spec §7 pilot accuracies
    from reprosuite.papers.topology import checks

    pilot = {10.0: {"complete": (0.837, 0.838), "torus": (0.814, 0.814), "ring": (0.808, 0.814), "star": (0.789, 0.786)},
             0.1: {"complete": (0.834, 0.842), "torus": (0.801, 0.817), "ring": (0.745, 0.788), "star": (0.702, 0.705)}}
    t_new = {"complete": 0.0, "torus": 0.27, "ring": 2.58, "star": 10.81}
    rows = [{"alpha": a, "topology": t, "seed": s, "epoch": 8, "T_new": t_new[t], "test_accuracy_xbar": accs[s]}
            for a, d in pilot.items() for t, accs in d.items() for s in (0, 1)]
    df = pd.DataFrame(rows)
    assert checks.nn_accuracy_tnew({"fig3": df}, max_spearman=-0.8, complete_minus_ring_min=3.0).passed
    assert checks.heterogeneity_spread({"fig3": df}).passed
    assert checks.star_below_ring({"fig3": df}).passed


def test_learning_rate_schedule():
    from reprosuite.papers.topology import Fig3Config
    from reprosuite.papers.topology.nn import learning_rate

    c = Fig3Config(epochs=10, lr=0.1, lr_min=1e-4, warmup_epochs=2, warmup_lr=5e-5)
    lrs = [learning_rate(c, round_=r, rounds_per_epoch=10) for r in range(100)]
    assert lrs[0] == pytest.approx(5e-5) and max(lrs) == pytest.approx(0.1)
    assert np.all(np.diff(lrs[20:]) <= 1e-12) and lrs[-1] > 1e-4


def test_fig2a_matrices_cover_families():
    from reprosuite.papers.topology import Fig2aConfig
    from reprosuite.papers.topology.mechanism import matrices

    grid = matrices(Fig2aConfig(n_values=(16,), topologies=("ring", "torus")))
    kinds = {(g["family"], g["n"]) for g in grid}
    assert ("kronecker", 64) in kinds and ("spectral", 64) in kinds and ("none", 16) in kinds


def test_fig3_resumes_from_checkpoint_identically():
    """A run killed after epoch 1 and resumed gives the same records as an uninterrupted run."""
    import dataclasses

    from reprosuite.papers.topology import nn as nn_exp

    cfg = get_paper("topology").config()
    cfg = dataclasses.replace(cfg, fig3=dataclasses.replace(
        cfg.fig3, n_train=640, n_test=400, n_test_nodes=200, n_nodes=4, topologies=("ring",), alphas=(10.0,), epochs=2,
        batch_size=32, eval_every=1))

    class Ctx(FakeCtx):
        experiment, paper, shard = "fig3", "topology", "ring-a10"

        def __init__(self):
            self.state, self.datasets = None, {}

        def use_dataset(self, name, stand_in_for=None):
            self.datasets[name] = stand_in_for

        def seed_for(self, stage):
            from reprosuite.runner import derive_seed

            return derive_seed("test", stage)

        def torch_generator(self, stage, device="cpu"):
            import torch

            return torch.Generator().manual_seed(self.seed_for(stage))

        def save_state(self, state):
            self.state = state

        def load_state(self):
            return self.state

    shard = {"topology": "ring", "alpha": 10.0}
    full = list(nn_exp.run_fig3(cfg, Ctx(), shard))
    ctx = Ctx()
    gen = nn_exp.run_fig3(cfg, ctx, shard)
    first = next(gen)
    gen.close()  # "killed" after epoch 1 (its checkpoint was written)
    assert ctx.state is not None and ctx.state["epoch"] == 1
    resumed = list(nn_exp.run_fig3(cfg, ctx, shard))
    assert resumed[0] == first and len(resumed) == len(full) == 2
    assert resumed[-1]["test_accuracy_xbar"] == pytest.approx(full[-1]["test_accuracy_xbar"])
    assert resumed[-1]["train_loss_node_mean"] == pytest.approx(full[-1]["train_loss_node_mean"])
