"""Checks behind experiments/certified/claims.yaml. Thresholds come from the YAML.

Tables: ``accounting`` (kind = table / geometry), ``nft`` (row = summary / curve / reference),
``mechanism`` (energy per draw), ``models`` (row = epoch / final). Seed-dependent claims are
decided on intervals (``reprosuite.stats``); accounting and geometry are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reprosuite.claims import Outcome
from reprosuite.stats import (
    Decision,
    Estimate,
    bootstrap_ci,
    cell_level,
    decide,
    decide_within,
    mean_ci,
    paired_diff_ci,
)


def _acct(tables, constants="reference"):
    t = tables["accounting"]
    return t[(t["kind"] == "table") & (t["constants"] == constants)]


def accounting_table(tables, table: dict, q_tol: float, eps_q_tol: float, sigma_tol: float, argmin_tol: float, **_):
    """Claim 1: q*, ε_q and σ (shared, k = 1, 2, 4, 10) reproduce the pinned table; q* = numeric argmin."""
    t = _acct(tables)
    t = t[t["block_constants"] == "shared"]
    worst = {"q": 0.0, "eps_q": 0.0, "sigma": 0.0, "argmin": 0.0}
    missing = []
    for eps, (q_ref, eq_ref, sigmas) in table.items():
        g = t[np.isclose(t["epsilon"], float(eps))]
        if g.empty:
            missing.append(eps)
            continue
        worst["q"] = max(worst["q"], abs(g["q"].iloc[0] - q_ref))
        worst["eps_q"] = max(worst["eps_q"], abs(g["eps_q"].iloc[0] - eq_ref))
        worst["argmin"] = max(worst["argmin"], float((g["q"] - g["q_numeric"]).abs().max()))
        for k, s_ref in zip((1, 2, 4, 10), sigmas):
            row = g[g["k"] == k]
            worst["sigma"] = max(worst["sigma"], abs(row["sigma"].iloc[0] - s_ref) if len(row) else math.inf)
    ok = not missing and worst["q"] <= q_tol and worst["eps_q"] <= eps_q_tol and worst["sigma"] <= sigma_tol \
        and worst["argmin"] <= argmin_tol
    return Outcome(ok, f"max |Δq*| {worst['q']:.2g}, |Δε_q| {worst['eps_q']:.2g}, |Δσ| {worst['sigma']:.2g}, "
                       f"|q* − argmin| {worst['argmin']:.2g}" + (f"; missing ε {missing}" if missing else ""),
                   f"<= {q_tol}, {eps_q_tol}, {sigma_tol}, {argmin_tol}")


def koloskova_consistency(tables, rtol_xstar: float, rtol_tft: float, **_):
    """Claim 2: σ equals Koloskova's λ > 0 formula at x* (rel rtol_xstar) and at T = T_ft (rtol_tft)."""
    t = tables["accounting"]
    t = t[(t["kind"] == "table") & (t["k"] == 1)]
    ref = t[t["constants"] == "reference"]  # integer T_ft = 106 there; at a small T_ft rounding dominates
    r1 = float(((t["sigma_koloskova_xstar"] / t["sigma_k1"]) - 1).abs().max())
    r2 = float(((ref["sigma_koloskova_tft"] / ref["sigma_k1"]) - 1).abs().max())
    return Outcome(bool(len(ref)) and r1 <= rtol_xstar and r2 <= rtol_tft,
                   f"max rel. error at x*: {r1:.2g} ({len(t)} cells); at T_ft (reference constants): {r2:.2g}",
                   f"<= {rtol_xstar}, <= {rtol_tft}")


def composition(tables, tol: float, rtol_sigma: float, **_):
    """Claim 3: Σ ε_q,i = ε_q and Mironov(Σ) = ε; scaled σ_k = σ_1 with equal T_ft; shared σ_k = √k σ_1."""
    t = tables["accounting"]
    t = t[t["kind"] == "table"]
    e1 = float((t["eps_q_composed"] - t["eps_q"]).abs().max())
    e2 = float((t["eps_composed"] - t["epsilon"]).abs().max())
    sc, sh = t[t["block_constants"] == "scaled"], t[t["block_constants"] == "shared"]
    r_sc = float((sc["sigma"] / sc["sigma_k1"] - 1).abs().max())
    t1 = {(c, e): v for c, e, v in t[t["k"] == 1][["constants", "epsilon", "t_ft"]].itertuples(index=False)}
    t_same = all(t1[(c, e)] == v for c, e, v in sc[["constants", "epsilon", "t_ft"]].itertuples(index=False))
    r_sh = float((sh["sigma"] / (np.sqrt(sh["k"]) * sh["sigma_k1"]) - 1).abs().max())
    ok = bool(len(t)) and e1 <= tol and e2 <= tol and r_sc <= rtol_sigma and r_sh <= rtol_sigma and t_same
    return Outcome(ok, f"|Σε_q,i − ε_q| {e1:.2g}, |ε − ε_DP| {e2:.2g}, scaled σ_k/σ_1 − 1 {r_sc:.2g} (T_ft equal: "
                       f"{t_same}), shared σ_k/(√k σ_1) − 1 {r_sh:.2g}", f"<= {tol}; rel <= {rtol_sigma}")


def geometry(tables, ortho_tol: float, cov_rtol: float, **_):
    """Claim 4: AᵀA = I and Σ AAᵀ = I (float32); empirical noise covariance σ²Pᵢ within cov_rtol."""
    g = tables["accounting"]
    g = g[g["kind"] == "geometry"]
    o = float(g[["orthonormality_error", "partition_error"]].max().max()) if len(g) else math.inf
    c = float(g["covariance_rel_error"].max()) if len(g) else math.inf
    return Outcome(bool(len(g)) and o <= ortho_tol and c < cov_rtol,
                   f"max orthonormality/partition error {o:.2g}; covariance rel. error {c:.3f} "
                   f"({', '.join(g['blocks_mode'].astype(str))}; {int(g['draws'].max()) if len(g) else 0} draws)",
                   f"<= {ortho_tol}; < {cov_rtol}")


def _summ(tables, variant=None) -> pd.DataFrame:
    s = tables["nft"]
    s = s[s["row"] == "summary"]
    return s if variant is None else s[s["variant"] == variant]


def nft_collapses(tables, drop: float, variant: str = "shared", level: float = 0.95, **_):
    """Claim 5: at the smallest ε of each row NFT's post-noise accuracy is >= drop below the base."""
    s = _summ(tables, variant)
    s = s[s["k"] == 1]
    cells = [(row, g[g["epsilon"] == g["epsilon"].min()]) for row, g in s.groupby("row_key")]
    lvl = cell_level(level, len(cells))
    decisions = [decide(mean_ci(g["base_accuracy"] - g["post_noise_accuracy"], lvl), drop, ">=",
                        name=f"{row} ε={g['epsilon'].iloc[0]:g} base − NFT") for row, g in cells]
    return Outcome.decided(decisions, expected=f"base − NFT post-noise >= {drop}")


def _paired(g: pd.DataFrame, k: int, base: pd.Series, col: str) -> tuple[np.ndarray, np.ndarray]:
    v = g[g["k"] == k].set_index("seed")[col].reindex(base.index)
    keep = v.notna().to_numpy() & base.notna().to_numpy()
    return v.to_numpy()[keep], base.to_numpy()[keep]


def block_avoids_collapse(tables, variant: str, gain: float, lo_acc: float, base_margin: float,
                          ks: list, k_max: int, level: float = 0.95, **_):
    """Claim 6: at every ε where NFT's post-noise mean lies in [lo_acc, base − base_margin]:
    max_k (block − NFT) >= gain (some k's paired interval clears it) and block k_max − NFT >= 0."""
    s = _summ(tables, variant)
    cells = []
    for (row, eps), g in s.groupby(["row_key", "epsilon"]):
        nft = g[g["k"] == 1].set_index("seed")["post_noise_accuracy"]
        base = g["base_accuracy"].iloc[0]
        if lo_acc <= nft.mean() <= base - base_margin:
            cells.append((row, eps, g, nft))
    if not cells:
        means = {f"{r} ε={e:g}": round(float(g[g['k'] == 1]['post_noise_accuracy'].mean()), 3)
                 for (r, e), g in s.groupby(["row_key", "epsilon"])}
        return Outcome(False, f"no qualifying ε (NFT post-noise means {means})",
                       f"NFT in [{lo_acc}, base − {base_margin}] at some ε")
    lvl = cell_level(level, len(cells) * (len(ks) + 1))
    decisions = []
    for row, eps, g, nft in cells:
        per_k = [(k, decide(paired_diff_ci(*_paired(g, k, nft, "post_noise_accuracy"), level=lvl), gain, ">=",
                            name=f"{row} ε={eps:g} k={k} − NFT")) for k in ks if (g["k"] == k).any()]
        if any(d.passed for _, d in per_k):
            passed, (k, d) = True, next((k, d) for k, d in per_k if d.passed)
        elif per_k and all(d.passed is False for _, d in per_k):
            passed, (k, d) = False, max(per_k, key=lambda kd: kd[1].estimate.value)
        else:
            passed, (k, d) = None, max(per_k, key=lambda kd: kd[1].estimate.value)
        decisions.append(Decision(passed, d.estimate, f"max_k >= {gain:g}", d.seeds_needed,
                                  f"{row} ε={eps:g} max_k (best k={k}) − NFT"))
        decisions.append(decide(paired_diff_ci(*_paired(g, k_max, nft, "post_noise_accuracy"), level=lvl), 0.0,
                                ">=", name=f"{row} ε={eps:g} k={k_max} − NFT"))
    return Outcome.decided(decisions, expected=f"max_k block − NFT >= {gain}, k={k_max} − NFT >= 0",
                           detail=f"{variant}: {len(cells)} qualifying (row, ε); Bonferroni over {len(decisions) + len(cells) * (len(ks) - 1)} tests")


def mechanism_equivalence(tables, k_ref: int, k_test: int, rtol: float, policy: str = "scaled", level: float = 0.95, **_):
    """Claim 6b: with the loss gradient off, mean ‖x_end − x₀‖² at k_test equals k_ref within rtol."""
    m = tables["mechanism"]
    m = m[m["block_constants"] == policy]
    a = m[m["k"] == k_test]["energy"].to_numpy(float)
    b = m[m["k"] == k_ref]["energy"].to_numpy(float)
    if len(a) < 2 or len(b) < 2:
        return Outcome(False, f"{len(a)} / {len(b)} draws", f"ratio in [1 ± {rtol}]")
    est = bootstrap_ci((a, b), lambda x, y: x.mean() / y.mean(), paired=False, level=level)
    d = decide_within(est, 1 - rtol, 1 + rtol, name=f"{policy} E‖Δ‖² k={k_test} / k={k_ref}")
    return Outcome.decided([d], expected=f"ratio in [{1 - rtol:g}, {1 + rtol:g}]",
                           detail=f"{len(a)} + {len(b)} draws; means {a.mean():.4g} vs {b.mean():.4g}")


def _grid_curve(curves: pd.DataFrame, grid: np.ndarray) -> np.ndarray:
    c = curves.sort_values("step")
    return np.interp(grid, np.r_[0, c["step"].to_numpy(float)], np.r_[c["test_accuracy"].iloc[0], c["test_accuracy"].to_numpy(float)])


def better_curve(tables, variant: str, frac_min: float, n_grid: int = 100, level: float = 0.95, **_):
    """Claim 7: the best block-NFT's step-averaged accuracy (AUC) exceeds NFT's (paired interval > 0)
    and its seed-mean curve is at or above NFT's at >= frac_min of the grid points."""
    t = tables["nft"]
    cur = t[(t["row"] == "curve") & (t["variant"] == variant)]
    cells = list(cur.groupby(["row_key", "epsilon"]))
    if not cells:
        return Outcome(False, "no curves", f"AUC gain > 0 and >= {frac_min} of checkpoints")
    lvl = cell_level(level, len(cells))
    decisions = []
    for (row, eps), g in cells:
        grid = np.linspace(0, g["step"].max(), n_grid)
        auc = {(k, s): float(_grid_curve(c, grid).mean()) for (k, s), c in g.groupby(["k", "seed"])}
        mean_curve = {k: np.mean([_grid_curve(c, grid) for _, c in gk.groupby("seed")], axis=0) for k, gk in g.groupby("k")}
        seeds = sorted({s for _, s in auc})
        ks = [k for k in mean_curve if k > 1]
        best = max(ks, key=lambda k: np.mean([auc[(k, s)] for s in seeds if (k, s) in auc]))
        est = paired_diff_ci([auc[(best, s)] for s in seeds], [auc[(1, s)] for s in seeds], level=lvl)
        frac = float((mean_curve[best] >= mean_curve[1] - 1e-12).mean())
        d = decide(est, 0.0, ">", name=f"{row} ε={eps:g} AUC k={best} − NFT (curve above on {frac:.0%})")
        if frac < frac_min and d.passed is not False:
            d = Decision(False, d.estimate, d.expected, None, d.name + f" FAIL: {frac:.0%} < {frac_min:.0%}")
        decisions.append(d)
    return Outcome.decided(decisions, expected=f"AUC gain > 0 and curve above on >= {frac_min:.0%}")


def _max_abs_cells(frame: pd.DataFrame, cols: list, value: str, ref: str, level: float) -> Estimate:
    """max over cells of |seed-mean(value − ref)|, with a bootstrap over seeds (paired across cells)."""
    piv = (frame.assign(d=frame[value] - frame[ref]).pivot_table(index="seed", columns=cols, values="d")).dropna()
    arrays = tuple(piv[c].to_numpy(float) for c in piv.columns)
    return bootstrap_ci(arrays, lambda *xs: max(abs(x.mean()) for x in xs), level=level)


def ends_near_retrain(tables, variant: str, tol_pp: float, level: float = 0.95, **_):
    """Claim 8: after fine-tuning every run's final test accuracy is within tol of the retrain
    (the largest |seed-mean gap| over (ε, k) cells, per row, decided on a seed bootstrap)."""
    s = _summ(tables, variant)
    s = s[s["finetuned"].astype(bool)]
    rows = list(s.groupby("row_key"))
    lvl = cell_level(level, len(rows))
    decisions = [decide(_max_abs_cells(g, ["epsilon", "k"], "test_accuracy_final", "retrain_test_accuracy", lvl),
                        tol_pp / 100, "<=", name=f"{row} max |final − retrain|") for row, g in rows]
    return Outcome.decided(decisions, expected=f"<= {tol_pp} pp in every (ε, k) cell")


def mia_close(tables, variant: str, tol: float, level: float = 0.95, **_):
    """Claim 9: |SVC-MIA(block-NFT) − SVC-MIA(retrain)| <= tol points on the random forget set."""
    s = _summ(tables, variant)
    s = s[s["finetuned"].astype(bool) & (s["k"] > 1)]
    rows = list(s.groupby("row_key"))
    lvl = cell_level(level, len(rows))
    decisions = [decide(_max_abs_cells(g, ["epsilon", "k"], "mia_svc", "retrain_mia_svc", lvl), tol, "<=",
                        name=f"{row} max |MIA − retrain|") for row, g in rows]
    return Outcome.decided(decisions, expected=f"<= {tol} points in every (ε, k) cell")


def cheap(tables, ratio_max: float, **_):
    """Claim 10: gradient steps of every NFT/block-NFT run <= ratio_max × the retrain's (deterministic)."""
    s = _summ(tables)
    s = s[s["finetuned"].astype(bool)]
    m = tables["models"]
    m = m[(m["row"] == "final") & (m["role"] == "retrain")].groupby("row_key")["train_steps"].max()
    ratios = {row: float(g["gradient_steps"].max() / m[row]) for row, g in s.groupby("row_key") if row in m}
    worst = max(ratios.values()) if ratios else math.inf
    return Outcome(bool(ratios) and worst <= ratio_max,
                   ", ".join(f"{r}: {v:.3f}" for r, v in ratios.items()) + " (largest gradient steps / retrain steps)",
                   f"<= {ratio_max}")


def sanity(tables, chance_margin: float, **_):
    """Claim 11: finite accuracies; base beats chance by >= chance_margin; λC₀ < C₁ everywhere."""
    s = _summ(tables)
    acc = s[["post_noise_accuracy", "base_accuracy"]].to_numpy(float)
    finite = bool(len(s)) and bool(np.isfinite(acc).all())
    n_classes = 10
    beat = float((s["base_accuracy"] - 1 / n_classes).min()) if len(s) else -1.0
    lam_ok = bool((s["lam"] * s["c0"] < s["c1"]).all()) and bool(tables["accounting"]["lam_c0_lt_c1"].dropna().astype(bool).all())
    return Outcome(finite and beat >= chance_margin and lam_ok,
                   f"finite {finite}; base − chance {beat:.3f}; λC₀ < C₁ {lam_ok}", f"finite; >= {chance_margin}; true")


CHECKS = {f.__name__: f for f in (accounting_table, koloskova_consistency, composition, geometry, nft_collapses,
                                  block_avoids_collapse, mechanism_equivalence, better_curve, ends_near_retrain,
                                  mia_close, cheap, sanity)}
