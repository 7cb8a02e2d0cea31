"""Check cases of the collateral paper: small synthetic tables with the columns each check reads.

The main-experiment tables are built from per-point data so that bin rows, point rows and
aggregates agree the way the experiments write them: ``_main`` draws, for every model, a 0/1
mismatch per test point with probability ``curve(s)`` (a deterministic low-discrepancy draw, so
the cases do not depend on a random generator), bins s into 10 equal-width and 10 quantile bins
and writes the ``bin``, ``point`` and ``aggregate`` rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprosuite.unlearning.metrics import assign_bins, bin_edges

GOLDEN = (np.sqrt(5) - 1) / 2
LOC = {"params": dict(methods=["ga", "rl_nr", "rl"], orig_methods=["ga", "rl_nr"], metric="mismatch_a",
                      min_consensus=30, ratio=3.0, floor=0.01, orig_ratio=2.0, n_resamples=1000)}
LOWER = dict(baselines=["ga", "rl_nr", "rl"], metric="mismatch_a", min_consensus=30, factor=0.5, floor_margin=0.03)


def _draw(p: np.ndarray, phase: float) -> np.ndarray:
    """Deterministic Bernoulli(p) per point: 1 where frac(i * golden + phase) < p."""
    return (np.mod(np.arange(len(p)) * GOLDEN + phase, 1.0) < p).astype(float)


def _main(curves: dict, n_points: int = 3000, seeds=(0, 1, 2), agg: dict | None = None,
          tamper: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(unlearn, reference) tables. ``curves``: method -> p(s) for s in [0, 1]; must hold
    ``original`` and ``retrain_floor``. ``tamper='count'`` shifts one point between two bins in one
    unlearning job's bin rows; ``tamper='s'`` gives one job a different s(x)."""
    s = np.linspace(0.0, 1.0, n_points)
    floor = _draw(curves["retrain_floor"](s), 0.5)
    ids = {"cell": "c2-f0.5", "forget_class": 2, "frac": 0.5, "dataset": "synthetic"}
    un, ref = [], []

    def rows(method, seed, a, s_job, out, points):
        for binning in ("equal_width", "quantile"):
            edges = bin_edges(s, 10, binning)
            idx = assign_bins(s, edges)
            counts = np.bincount(idx, minlength=10)
            if tamper == "count" and method == "ga" and seed == 0 and binning == "equal_width":
                counts[0], counts[1] = counts[0] - 1, counts[1] + 1
            for b in range(10):
                m = idx == b
                out.append({**ids, "row": "bin", "method": method, "seed": seed, "split": "test", "binning": binning,
                            "bin": b, "bin_lo": edges[b], "bin_hi": edges[b + 1], "bin_centre": 0.5 * (edges[b] + edges[b + 1]),
                            "count": int(counts[b]), "consensus_count": int(m.sum()), "mismatch_a": float(a[m].mean())})
        out.append({**ids, "row": "aggregate", "method": method, "seed": seed, "n_test_eval": n_points,
                    "n_retain_eval": 0, **(agg or {}).get(method, {})})
        if points:
            excess = a - floor
            out.extend({**ids, "row": "point", "method": method, "seed": seed, "split": "test", "point": i,
                        "s": float(s_job[i]), "consensus": True, "excess_a": float(excess[i])} for i in range(n_points))

    for method, curve in curves.items():
        if method in ("original", "retrain_floor"):
            rows(method, 0, _draw(curve(s), 0.5 if method == "retrain_floor" else 0.25), s, ref, False)
            continue
        for seed in seeds:
            s_job = s * 1.05 if tamper == "s" and method == "ltd" and seed == seeds[-1] else s
            rows(method, seed, _draw(curve(s), 0.1 + 0.3 * seed), s_job, un, True)
    return pd.DataFrame(un), pd.DataFrame(ref)


def _rise(lo, hi, power=4):
    return lambda s: lo + (hi - lo) * s**power


def _flat(v):
    return lambda s: np.full_like(s, v)


STRONG = {"ga": _rise(0.02, 0.5), "rl_nr": _rise(0.02, 0.5), "rl": _rise(0.02, 0.3), "ltd": _rise(0.02, 0.05),
          "original": _rise(0.02, 0.1), "retrain_floor": _flat(0.03)}


def _tables(curves, **kw):
    un, ref = _main(curves, **kw)
    return {"unlearn": un, "reference": ref}


# --- main-experiment checks ----------------------------------------------------------------------
def _localized(curves, n_points=3000):
    return lambda: (_tables(curves, n_points=n_points), LOC["params"])


def _lower(curves, n_points=3000):
    return lambda: (_tables(curves, n_points=n_points), LOWER)


def _shared(tamper):
    return lambda: (_tables(STRONG, n_points=300, tamper=tamper), {})


def _agg_case(ltd_ua, ltd_ra, ltd_mia, noisy=False):
    def make():
        ret = pd.DataFrame([{"row": "aggregate", "method": m, "ua": ua, "ra": ra, "ta": ta, "mia_svc": mia}
                            for m, ua, ra, ta, mia in (("retrain", 0.20, 0.900, 0.870, 70.0),
                                                       ("retrain", 0.30, 0.902, 0.871, 70.5),
                                                       ("retrain_floor", 0.40, 0.901, 0.869, 69.5))])
        spread = (-0.02, 0.0, 0.02) if noisy else (-0.001, 0.0, 0.001)
        un = pd.DataFrame([{"row": "aggregate", "method": "ltd", "seed": i, "ua": ltd_ua + d, "ra": ltd_ra + d,
                            "ta": 0.87 + d / 10, "mia_svc": ltd_mia + 100 * d, "support_size": 6000,
                            "support_retained_forget_class": 1500} for i, d in enumerate(spread)])
        return {"unlearn": un, "reference": ret}, dict(ua_margin=0.05, acc_margin=0.03, mia_margin=10.0)
    return make


# --- other checks --------------------------------------------------------------------------------
def _split(ok):
    return lambda: ({"reference": pd.DataFrame([{"row": "split", "method": "split", "n_forget": 1500,
                                                 "expected_n_forget": 1500, "forget_is_first_k_of_class": True,
                                                 "disjoint": ok, "covers": True, "retain_keeps_rest_of_class": True,
                                                 "retain_class_c": 1500}])}, {})


def _ripple_ga(quadratic):
    edges = np.linspace(-1, 1, 31)
    centre = 0.5 * (edges[:-1] + edges[1:])
    val = centre**2 if quadratic else np.abs(centre + 0.5)
    t = pd.DataFrame({"kind": "ga_linear", "bin": range(30), "bin_lo": edges[:-1], "bin_hi": edges[1:],
                      "bin_centre": centre, "sq_gap_norm": val / val.max()})
    return lambda: ({"fig1": t}, {"r2_min": 0.9})


def _ripple_rl(rising):
    centre = np.linspace(-0.9, 0.9, 20)
    flip = np.abs(centre) if rising else 1 - np.abs(centre)
    t = pd.DataFrame({"kind": "rl_logistic", "level": "all", "count": 100, "bin_centre": centre, "flip_rate": flip})
    return lambda: ({"fig1": t}, {"spearman_min": 0.5, "min_count": 20})


def _finite(ok):
    return lambda: ({"fig1": pd.DataFrame({"count": [10, 10], "sq_gap": [0.1, 0.2 if ok else np.inf]})}, {})


def _hide(found):
    def make():
        rows = []
        tops = {"ga_ft": 0.05, "ltd": 0.12 if found else 0.06}
        for m, top in tops.items():
            for b, v in enumerate((0.01, 0.02, top)):
                rows.append({"row": "bin", "split": "test", "binning": "equal_width", "method": m, "seed": 0, "bin": b,
                             "consensus_count": 100, "mismatch_a": v})
            rows.append({"row": "aggregate", "method": m, "seed": 0, "ra": 0.90, "ta": 0.87})
        return {"unlearn": pd.DataFrame(rows)}, dict(metric="mismatch_a", min_consensus=30, acc_tol=0.01, ratio=2.0,
                                                     abs_min=0.02)
    return make


def _kl(ok):
    return lambda: ({"ablation": pd.DataFrame([{"n_support": 1000, "support_mode": "closest", "teacher_threshold": 0.99,
                                                "kl_retrain_teacher": 0.2 if ok else 2.0, "kl_retrain_uniform": 1.3,
                                                "kl_retrain_all_c": 3.4, "teacher_class_c_rate": 0.8,
                                                "retrain_class_c_rate": 0.7}])}, {"n_support": 1000})


def _similarity(positive):
    def make():
        rows = []
        for seed in range(3):
            for k in range(10):
                sim = k / 10
                drop = (sim if positive else -sim) + 0.01 * ((k * 7 + seed) % 3)
                rows.append({"row": "class", "method": "rl", "seed": seed, "class": k, "deleted_class": 9,
                             "similarity": sim, "acc_drop": drop})
        return {"fig2": pd.DataFrame(rows)}, {"method": "rl", "min_repeats": 2}
    return make


def _sanity(ok):
    models = pd.DataFrame({"test_accuracy": [0.88, 0.87 if ok else 0.2]})
    un = pd.DataFrame([{"row": "aggregate", "ra": 0.9, "ua": 0.2, "ta": 0.87, "rte_s": 1.0, "mia_loss_accuracy": 0.6}])
    return lambda: ({"models": models, "unlearn": un}, {"chance_margin": 0.3, "n_classes": 10})


WEAK = {**STRONG, "rl": _rise(0.02, 0.045, 1)}  # small N: RL+D_r's top bin straddles 3x bottom

CASES = {
    "split_exact": {"PASS": _split(True), "FAIL": _split(False)},
    "shared_bins": {"PASS": _shared(None), "FAIL": _shared("count")},
    "ripple_ga": {"PASS": _ripple_ga(True), "FAIL": _ripple_ga(False)},
    "ripple_rl": {"PASS": _ripple_rl(True), "FAIL": _ripple_rl(False)},
    "ripple_finite": {"PASS": _finite(True), "FAIL": _finite(False)},
    "localized": {
        "PASS": _localized(STRONG),
        # discrepancy falls toward D_f: the trend interval lies below 0
        "FAIL": _localized({**STRONG, "ga": lambda s: 0.3 - 0.28 * s}),
        "INCONCLUSIVE": _localized(WEAK, n_points=600),
    },
    "ltd_lower": {
        "PASS": _lower({**STRONG, "ltd": _flat(0.01)}),
        "FAIL": _lower({**STRONG, "ltd": _rise(0.02, 0.4)}),
        "INCONCLUSIVE": _lower({**STRONG, "ltd": _rise(0.02, 0.14)}, n_points=600),
    },
    "ltd_aggregates": {
        "PASS": _agg_case(0.30, 0.903, 70.0),
        "FAIL": _agg_case(0.30, 0.903, 45.0),
        "INCONCLUSIVE": _agg_case(0.30, 0.903, 62.0, noisy=True),
    },
    "aggregates_hide": {"PASS": _hide(True), "FAIL": _hide(False)},
    "teacher_kl": {"PASS": _kl(True), "FAIL": _kl(False)},
    "class_similarity": {"PASS": _similarity(True), "FAIL": _similarity(False)},
    "sanity": {"PASS": _sanity(True), "FAIL": _sanity(False)},
}
