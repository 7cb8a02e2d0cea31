"""Check cases of `topology`: for every check, tables that must PASS, FAIL and (where the check
decides on an interval) be INCONCLUSIVE. Tables are small and synthetic, except the spectral
rows, which are computed (deterministic and cheap)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprosuite.papers.topology.spectral import spectral_row

REFERENCE = [{"topology": "ring", "n": 16, "p": 0.098919, "T_gap": 9.10931, "T_new": 1.47208},
             {"topology": "torus", "n": 16, "p": 0.640000, "T_gap": 0.5625, "T_new": 0.201823},
             {"topology": "complete", "n": 16, "p": 1.0, "T_gap": 0.0, "T_new": 0.0}]
SPECTRAL = {"rtol": 1e-4, "p_atol": 1e-5, "stoch_tol": 1e-12, "reference": REFERENCE}
SLOPES = {"min_n": 64, "bounds": {"ring.T_gap": [1.9, 2.1], "ring.T_new": [0.9, 1.15]}}


def _fig1(ns=(16,), topologies=("ring", "torus", "complete")) -> pd.DataFrame:
    return pd.DataFrame([spectral_row(t, n=n) for t in topologies for n in ns])


def _ring_slopes(scale_new: bool = False) -> pd.DataFrame:
    df = _fig1(ns=(64, 100, 144, 196, 256), topologies=("ring",))
    if scale_new:  # T_new growing like n² instead of n
        df["T_new"] = df["T_new"] * df["n"]
    return df


def _tab1(torus_thm1: float) -> pd.DataFrame:
    return pd.DataFrame([{"topology": "ring", "prop1_slope": 7.0, "thm1_slope": 5.06},
                         {"topology": "torus", "prop1_slope": 5.12, "thm1_slope": torus_thm1}])


def _fig2a(ring_factor: float, ring_rel_se: float, *, kron_ratio: float = 2.99, kron_rel_se: float = 0.002) -> pd.DataFrame:
    """Consensus measurements: three topologies at n = 16 and a Kronecker family at n = 64."""
    rows = [("topology", "none", "ring", 16, 0.0989, 9.109, 1.472, ring_factor, ring_rel_se),
            ("topology", "none", "torus", 16, 0.64, 0.5625, 0.2018, 1.001, 0.002),
            ("topology", "none", "complete", 16, 1.0, 0.0, 0.0, 1.0, 0.0),
            ("fixed_p", "kronecker", "kronecker:complete", 64, 0.3524, 1.8, 0.0639, 1.0, kron_rel_se),
            ("fixed_p", "kronecker", "kronecker:ring", 64, 0.3524, 1.8, 0.0639 * kron_ratio, 1.0, kron_rel_se)]
    out = []
    for kind, family, topo, n, p, tg, tn, factor, rel_se in rows:
        measured = tn * factor
        out.append({"kind": kind, "family": family, "topology": topo, "n": n, "p": p, "T_gap": tg, "T_new": tn,
                    "predicted": tn, "measured": measured, "measured_se": rel_se * tn,
                    "rel_err": abs(measured - tn) / tn if tn else abs(measured - tn), "chains": 4, "units": 40})
    return pd.DataFrame(out)


CONSENSUS = {"tol": 0.03, "min_r2": 0.99}
SPREAD = {"n": 64, "p_tol": 1e-9, "min_ratio": {"kronecker": 2.9}}


def _fig2(gaps: tuple[float, float], noise: float, seeds: int = 6) -> pd.DataFrame:
    """Final losses of a three-member family; members share each seed's batches (common noise)."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        common = 0.01 * rng.standard_normal()
        own = noise * rng.standard_normal(3)
        losses = np.cumsum([0.28, *gaps]) + common + own
        for (member, t_new), loss in zip((("complete", 0.064), ("hypercube", 0.115), ("ring", 0.191)), losses):
            for it in (0, 900, 1000):
                rows.append({"model": "logistic", "family": "kronecker", "member": member, "seed": seed,
                             "T_new": t_new, "p": 0.3524, "iteration": it, "loss_node_mean": loss,
                             "loss_xbar": loss - 0.001})
    return pd.DataFrame(rows)


T_NEW = {"complete": 0.0, "torus": 0.27, "ring": 2.58, "star": 10.81}
T_GAP = {"complete": 0.0, "torus": 1.10, "ring": 23.13, "star": 11.76}


def _fig3(acc: dict[float, dict[str, float]], noise: float, seeds: int = 5) -> pd.DataFrame:
    """Final x̄ accuracies per (α, topology, seed): the given means plus independent noise."""
    rng = np.random.default_rng(1)
    rows = []
    for alpha, means in acc.items():
        for topo, mean in means.items():
            for seed in range(seeds):
                a = mean + noise * rng.standard_normal()
                rows.append({"alpha": alpha, "topology": topo, "seed": seed, "epoch": 8, "T_new": T_NEW[topo],
                             "T_gap": T_GAP[topo], "p": 1 / (1 + T_GAP[topo]), "test_accuracy_xbar": a, "test_accuracy_node_mean": a - 0.01})
    return pd.DataFrame(rows)


ORDERED = {10.0: {"complete": 0.85, "torus": 0.83, "ring": 0.81, "star": 0.79},
           0.1: {"complete": 0.84, "torus": 0.80, "ring": 0.76, "star": 0.70}}
REVERSED = {a: dict(zip(m, reversed(list(m.values())))) for a, m in ORDERED.items()}
NN = {"max_spearman": -0.8, "complete_minus_ring_min": 3.0, "at_alpha": 0.1}
EQUAL_SPREAD = {10.0: {"complete": 0.84, "torus": 0.82, "ring": 0.80, "star": 0.78},
                0.1: {"complete": 0.84, "torus": 0.82, "ring": 0.80, "star": 0.775}}


def _sanity(accuracy: float) -> dict[str, pd.DataFrame]:
    common = {"dataset": "digits", "topology": "ring", "n": 16, "p": 0.1, "T_gap": 9.1, "T_new": 1.5, "seed": 0, "lr": 0.05}
    fig2 = pd.DataFrame([{**common, "alpha": "iid", "iteration": 200, "loss_xbar": 0.5, "loss_node_mean": 0.6}])
    fig3 = pd.DataFrame([{**common, "alpha": 0.1, "epoch": 2, "test_accuracy_xbar": accuracy,
                          "test_accuracy_node_mean": accuracy - 0.05, "train_loss_node_mean": 1.0}])
    return {"fig2": fig2, "fig3": fig3}


SANITY = {"min_accuracy": 0.30, "metric_pairs": {"fig2": ["loss_xbar", "loss_node_mean"],
                                                 "fig3": ["test_accuracy_xbar", "test_accuracy_node_mean"]}}


def _wrong_reference():
    return [{**REFERENCE[0], "T_new": 1.5}, *REFERENCE[1:]]


def _ring_equals_gap():
    df = _fig1()
    df.loc[df["topology"] == "ring", "T_new"] = df.loc[df["topology"] == "ring", "T_gap"]
    return df


CASES = {
    "spectral_table": {
        "PASS": lambda: ({"fig1": _fig1()}, SPECTRAL),
        "FAIL": lambda: ({"fig1": _fig1()}, {**SPECTRAL, "reference": _wrong_reference()}),
    },
    "tnew_le_tgap": {
        "PASS": lambda: ({"fig1": _fig1()}, {"tol": 1e-12}),
        "FAIL": lambda: ({"fig1": _ring_equals_gap()}, {"tol": 1e-12}),
    },
    "scaling_slopes": {
        "PASS": lambda: ({"fig1": _ring_slopes()}, SLOPES),
        "FAIL": lambda: ({"fig1": _ring_slopes(scale_new=True)}, SLOPES),
    },
    "transient_exponents": {
        "PASS": lambda: ({"tab1": _tab1(3.65)}, {"bounds": {"ring.prop1_slope": [6.8, 7.2]}, "torus_gain_min": 1.0}),
        "FAIL": lambda: ({"tab1": _tab1(4.9)}, {"bounds": {"ring.prop1_slope": [6.8, 7.2]}, "torus_gain_min": 1.0}),
    },
    "consensus_identity": {
        "PASS": lambda: ({"fig2a": _fig2a(1.002, 0.002)}, CONSENSUS),
        "FAIL": lambda: ({"fig2a": _fig2a(1.10, 0.002)}, CONSENSUS),
        "INCONCLUSIVE": lambda: ({"fig2a": _fig2a(1.02, 0.01)}, CONSENSUS),
    },
    "fixed_p_spread": {
        "PASS": lambda: ({"fig2a": _fig2a(1.0, 0.002)}, SPREAD),
        "FAIL": lambda: ({"fig2a": _fig2a(1.0, 0.002, kron_ratio=2.0)}, SPREAD),
        "INCONCLUSIVE": lambda: ({"fig2a": _fig2a(1.0, 0.002, kron_ratio=2.95, kron_rel_se=0.02)}, SPREAD),
    },
    "loss_ordered": {
        "PASS": lambda: ({"fig2": _fig2((0.0006, 0.0009), 0.00005)}, {}),
        "FAIL": lambda: ({"fig2": _fig2((0.0006, -0.0009), 0.00005)}, {}),
        "INCONCLUSIVE": lambda: ({"fig2": _fig2((0.0006, 0.0009), 0.0008)}, {}),
    },
    "nn_accuracy_tnew": {
        "PASS": lambda: ({"fig3": _fig3(ORDERED, 0.003)}, NN),
        "FAIL": lambda: ({"fig3": _fig3(REVERSED, 0.003)}, NN),
        "INCONCLUSIVE": lambda: ({"fig3": _fig3(ORDERED, 0.03)}, NN),
    },
    "heterogeneity_spread": {
        "PASS": lambda: ({"fig3": _fig3(ORDERED, 0.003)}, {}),
        "FAIL": lambda: ({"fig3": _fig3({10.0: ORDERED[0.1], 0.1: ORDERED[10.0]}, 0.003)}, {}),
        "INCONCLUSIVE": lambda: ({"fig3": _fig3(EQUAL_SPREAD, 0.02)}, {}),
    },
    "star_below_ring": {
        "PASS": lambda: ({"fig3": _fig3(ORDERED, 0.003)}, {}),
        "FAIL": lambda: ({"fig3": _fig3(REVERSED, 0.003)}, {}),
        "INCONCLUSIVE": lambda: ({"fig3": _fig3(EQUAL_SPREAD, 0.05)}, {}),
    },
    "sanity": {
        "PASS": lambda: (_sanity(0.5), SANITY),
        "FAIL": lambda: (_sanity(0.2), SANITY),
    },
}
