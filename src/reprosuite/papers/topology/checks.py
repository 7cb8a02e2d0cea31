"""Claim checks of the topology paper (spec §6); thresholds come from claims.yaml params."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from reprosuite.claims import Outcome
from reprosuite.gossip.spectra import loglog_slope

from .tables import final_losses


def _half_unit(value: float) -> float:
    """Half a unit in the last printed digit of a YAML number (e.g. 11.76 -> 0.005)."""
    text = repr(float(value))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 6
    return 0.5 * 10.0**-decimals


def spectral_table(tables, *, reference, printed=(), rtol, p_atol, stoch_tol, ring_weight=1 / 3):
    """Claim 1: p, (1-p)/p, T_new match the spec tables; W symmetric/doubly stochastic; ring = 1/3."""
    df = tables["fig1"].set_index(["topology", "n"])
    worst, checked, bad = 0.0, 0, []
    for ref in reference:
        key = (ref["topology"], int(ref["n"]))
        if key not in df.index:
            continue
        row = df.loc[key]
        checked += 1
        if abs(row["p"] - ref["p"]) > p_atol:
            bad.append(f"{key} p {row['p']:.6f} vs {ref['p']}")
        for col in ("T_gap", "T_new"):
            err = abs(row[col] - ref[col]) / max(abs(ref[col]), 1e-300) if ref[col] else abs(row[col])
            worst = max(worst, err)
            if err > rtol:
                bad.append(f"{key} {col} {row[col]:.6g} vs {ref[col]}")
    for ref in printed:  # values printed with 2-4 digits: within half a unit of the last digit
        key = (ref["topology"], int(ref["n"]))
        if key in df.index:
            checked += 1
            for col in ("T_gap", "T_new"):
                if abs(df.loc[key, col] - ref[col]) > _half_unit(ref[col]):
                    bad.append(f"{key} {col} {df.loc[key, col]:.4g} vs printed {ref[col]}")
    stoch = float(df[["symmetry_err", "row_sum_err", "col_sum_err"]].to_numpy().max())
    ring = df.loc["ring"]
    ring_err = float(np.abs(ring[["edge_weight_min", "edge_weight_max", "diag_min", "diag_max"]].to_numpy() - ring_weight).max())
    ok = checked > 0 and not bad and stoch <= stoch_tol and ring_err <= 1e-12
    return Outcome(ok, {"rows_checked": checked, "max_rel_err": worst, "stochasticity_err": stoch,
                        "ring_weight_err": ring_err},
                   f"rel <= {rtol}, p abs <= {p_atol}, W errors <= {stoch_tol}", "; ".join(bad[:4]))


def tnew_le_tgap(tables, *, tol):
    """Claim 2: T_new <= (1-p)/p everywhere; equality only for the complete graph (both 0)."""
    df = tables["fig1"]
    excess = float((df["T_new"] - df["T_gap"]).max())
    equal = df[np.abs(df["T_new"] - df["T_gap"]) <= tol]
    others = sorted(set(equal["topology"]) - {"complete"})
    ok = excess <= tol and not others
    return Outcome(ok, {"max(T_new - T_gap)": excess, "equality_rows": sorted(set(equal["topology"]))},
                   f"<= {tol}; equality only for complete", f"equality also for {others}" if others else "")


def scaling_slopes(tables, *, min_n, bounds, hypercube_t_new_max=None):
    """Claim 3: log-log slopes of (1-p)/p and T_new on n >= min_n; hypercube T_new bounded."""
    df = tables["fig1"]
    measured, bad = {}, []
    for key, (lo, hi) in bounds.items():
        topo, col = key.split(".")
        g = df[(df["topology"] == topo) & (df["n"] >= min_n)].sort_values("n")
        slope = loglog_slope(g["n"], g[col])
        measured[key] = slope
        if (lo is not None and slope < lo) or (hi is not None and slope > hi):
            bad.append(f"{key} slope {slope:.3f} not in [{lo}, {hi}]")
    if hypercube_t_new_max is not None:
        h = df[df["topology"] == "hypercube"].sort_values("n")
        measured["hypercube.T_new_max"] = float(h["T_new"].max())
        monotone = bool(np.all(np.diff(h["T_gap"].to_numpy()) > 0))
        measured["hypercube.T_gap_increasing"] = monotone
        if h["T_new"].max() > hypercube_t_new_max or not monotone:
            bad.append("hypercube T_new not bounded or (1-p)/p not increasing")
    return Outcome(not bad, measured, {"bounds": bounds, "hypercube_T_new_max": hypercube_t_new_max}, "; ".join(bad))


def transient_exponents(tables, *, bounds, torus_gain_min):
    """Claim 4: numeric slopes of max(n³X², n/p²) (tab1) in the spec ranges."""
    tab = tables["tab1"].set_index("topology")
    measured, bad = {}, []
    for key, (lo, hi) in bounds.items():
        topo, col = key.split(".")
        val = float(tab.loc[topo, col])
        measured[key] = val
        if (lo is not None and val < lo) or (hi is not None and val > hi):
            bad.append(f"{key} = {val:.3f} not in [{lo}, {hi}]")
    gain = float(tab.loc["torus", "prop1_slope"] - tab.loc["torus", "thm1_slope"])
    measured["torus.prop1 - thm1"] = gain
    if gain <= torus_gain_min:
        bad.append(f"torus Theorem 1 slope not < Prop. 1 slope - {torus_gain_min}")
    return Outcome(not bad, measured, {"bounds": bounds, "torus_gain_min": torus_gain_min}, "; ".join(bad))


def _r2(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    coef = np.polyfit(x, y, 1)
    resid = y - np.polyval(coef, x)
    return float(1.0 - resid.var() / y.var())


def consensus_identity(tables, *, tol, min_r2, abs_tol_zero=1e-9, min_topologies=None, families=()):
    """Claim 5: measured stationary consensus / (d η² σ²) equals the prediction (T_new).

    Without ``min_topologies`` every W must be within ``tol`` (spec §6.5). With it, at least that
    many distinct topologies and every listed fixed-p family (all members) must be (lead's brief).
    """
    df = tables["fig2a"].copy()
    zero = df["predicted"] <= 1e-9
    df["ok"] = np.where(zero, df["rel_err"] <= abs_tol_zero, df["rel_err"] <= tol)
    r2_new, r2_gap = _r2(df["T_new"], df["measured"]), _r2(df["T_gap"], df["measured"])
    fails = df[~df["ok"]]
    worst = df[~zero].sort_values("rel_err").iloc[-1]
    measured = {"max_rel_err": float(df.loc[~zero, "rel_err"].max()),
                "worst": f"{worst['topology']} n={worst['n']} (±{worst['measured_se'] / worst['predicted']:.3f} s.e.)",
                "R2_T_new": r2_new, "R2_T_gap": r2_gap, "within_tol": f"{int(df['ok'].sum())}/{len(df)}"}
    if min_topologies is None:
        ok = fails.empty and r2_new >= min_r2
        detail = "outside tol: " + ", ".join(f"{r.topology} n={r.n} ({r.rel_err:.3f})" for r in fails.itertuples())
    else:
        topo = df[df["kind"] == "topology"]
        good_topos = {t for t, g in topo.groupby("topology") if g["ok"].all() and not (g["predicted"] <= 1e-9).all()}
        fam_ok = {f: bool(df[df["family"] == f]["ok"].all()) for f in families}
        measured["topologies_within_tol"] = len(good_topos)
        measured["families_within_tol"] = fam_ok
        ok = len(good_topos) >= min_topologies and all(fam_ok.values()) and r2_new >= min_r2
        detail = f"topologies within tol at every n: {sorted(good_topos)}"
    expected = {"rel_tol": tol, "R2_T_new_min": min_r2}
    if min_topologies is not None:
        expected["min_topologies"] = min_topologies
    return Outcome(ok, measured, expected, detail if not fails.empty or min_topologies else "")


def fixed_p_spread(tables, *, n, p_tol, min_ratio):
    """Claim 6: identical p inside each family; stationary consensus spans >= min_ratio[family]."""
    df = tables["fig2a"]
    measured, bad = {}, []
    for family, ratio in min_ratio.items():
        g = df[(df["family"] == family) & (df["n"] == n)]
        if g.empty:
            bad.append(f"no {family} rows at n = {n}")
            continue
        p_spread = float(g["p"].max() - g["p"].min())
        spread = float(g["measured"].max() / g["measured"].min())
        measured[f"{family}.p_spread"], measured[f"{family}.ratio"] = p_spread, spread
        if p_spread > p_tol or spread < ratio:
            bad.append(f"{family}: p spread {p_spread:.2g}, ratio {spread:.3g} (need >= {ratio})")
    return Outcome(not bad, measured, {"p_tol": p_tol, "min_ratio": min_ratio}, "; ".join(bad))


def loss_ordered(tables, *, metric="loss_node_mean", n_se_order=1.0, n_se_gap=2.0, must=()):
    """Claim 7: per (model, family), final loss non-decreasing in T_new (adjacent pairs within
    n_se_order s.e.); largest-T_new member above the smallest by > n_se_gap s.e."""
    per_seed = final_losses(tables["fig2"])
    measured, bad = {}, []
    for (model, family), g in per_seed.groupby(["model", "family"]):
        stats = g.groupby(["member", "T_new"], as_index=False)[metric].agg(["mean", "sem"]).sort_values("T_new")
        stats["sem"] = stats["sem"].fillna(0.0)
        means, ses = stats["mean"].to_numpy(), stats["sem"].to_numpy()
        pairs_ok = all(means[i + 1] >= means[i] - n_se_order * max(ses[i], ses[i + 1]) for i in range(len(means) - 1))
        gap = means[-1] - means[0]
        gap_se = float(np.hypot(ses[0], ses[-1]))
        gap_ok = gap > n_se_gap * gap_se and gap > 0
        measured[f"{model}/{family}"] = {m: float(v) for m, v in zip(stats["member"], means)} | {"gap_over_se": gap / gap_se if gap_se else float("inf")}
        if not (pairs_ok and gap_ok):
            bad.append(f"{model}/{family}: pairs ordered {pairs_ok}, gap {gap:.3g} vs {n_se_gap} s.e. {gap_se:.2g}")
    return Outcome(not bad, measured, f"non-decreasing in T_new; max - min > {n_se_gap} s.e. ({metric})", "; ".join(bad))


def _seed_means(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    final = df[df["epoch"] == df.groupby(["alpha", "topology", "seed"])["epoch"].transform("max")]
    return final.groupby(["alpha", "topology", "T_new"], as_index=False)[metric].mean()


def nn_accuracy_tnew(tables, *, max_spearman, complete_minus_ring_min=None, at_alpha=0.1,
                     metric="test_accuracy_xbar"):
    """Claim 8: per α, Spearman(seed-mean accuracy, T_new) <= max_spearman; complete - ring gap."""
    means = _seed_means(tables["fig3"], metric)
    measured, bad = {}, []
    for alpha, g in means.groupby("alpha"):
        rho = float(spearmanr(g[metric], g["T_new"]).statistic) if len(g) > 2 else float("nan")
        rho = round(rho, 12)  # one adjacent swap of 4 gives exactly -0.8, not -0.7999999999999999
        measured[f"spearman_alpha{alpha:g}"] = rho
        if not rho <= max_spearman:
            bad.append(f"α={alpha:g}: Spearman {rho:.2f} > {max_spearman}")
    if complete_minus_ring_min is not None:
        g = means[np.isclose(means["alpha"], at_alpha)].set_index("topology")[metric]
        gap = 100.0 * float(g["complete"] - g["ring"])
        measured[f"complete_minus_ring_pp_alpha{at_alpha:g}"] = gap
        if gap < complete_minus_ring_min:
            bad.append(f"complete - ring = {gap:.1f} pp < {complete_minus_ring_min}")
    return Outcome(not bad, measured, {"spearman_max": max_spearman, "complete_minus_ring_pp_min": complete_minus_ring_min},
                   "; ".join(bad))


def heterogeneity_spread(tables, *, low_alpha=0.1, high_alpha=10.0, metric="test_accuracy_xbar"):
    """Claim 9: max - min seed-mean accuracy over topologies larger at low α than at high α."""
    means = _seed_means(tables["fig3"], metric)
    spread = {a: float(g[metric].max() - g[metric].min()) for a, g in means.groupby("alpha")}
    lo, hi = spread[low_alpha], spread[high_alpha]
    return Outcome(lo > hi, {f"spread_alpha{low_alpha:g}_pp": 100 * lo, f"spread_alpha{high_alpha:g}_pp": 100 * hi},
                   f"spread(α={low_alpha:g}) > spread(α={high_alpha:g})")


def star_below_ring(tables, *, metric="test_accuracy_xbar"):
    """Claim 10 (report-only prediction): star accuracy < ring accuracy in every regime."""
    means = _seed_means(tables["fig3"], metric)
    measured, ok = {}, True
    for alpha, g in means.groupby("alpha"):
        acc = g.set_index("topology")[metric]
        measured[f"ring_minus_star_pp_alpha{alpha:g}"] = 100 * float(acc["ring"] - acc["star"])
        ok &= bool(acc["star"] < acc["ring"])
    return Outcome(ok, measured, "star < ring at every α")


REQUIRED_COLUMNS = ("dataset", "topology", "n", "p", "T_gap", "T_new", "alpha", "seed", "lr")


def sanity(tables, *, min_accuracy, metric_pairs):
    """Claim 11: finite losses; fig3 x̄ accuracy > min_accuracy; rows carry all columns."""
    measured, bad = {}, []
    for name, (xbar, node) in metric_pairs.items():
        df = tables[name]
        missing = [c for c in (*REQUIRED_COLUMNS, xbar, node) if c not in df]
        if missing:
            bad.append(f"{name} lacks {missing}")
        losses = df[[c for c in df if "loss" in c]].to_numpy(dtype=float)
        losses = losses[~np.isnan(losses)]  # NaN = not evaluated at that epoch; divergence sets status
        finite = bool(np.isfinite(losses).all()) and (df.get("status", pd.Series(["ok"])) == "ok").all()
        measured[f"{name}.finite"] = finite
        if not finite:
            bad.append(f"{name} has non-finite losses or diverged runs")
    fig3 = tables["fig3"]
    acc = float(fig3[fig3["epoch"] == fig3["epoch"].max()]["test_accuracy_xbar"].min())  # after the last epoch
    measured["fig3.min_final_xbar_accuracy"] = acc
    if not acc > min_accuracy:
        bad.append(f"fig3 x̄ accuracy {acc:.3f} <= {min_accuracy}")
    return Outcome(not bad, measured, f"finite; x̄ accuracy > {min_accuracy}; columns {REQUIRED_COLUMNS}", "; ".join(bad))


CHECKS = {
    "spectral_table": spectral_table,
    "tnew_le_tgap": tnew_le_tgap,
    "scaling_slopes": scaling_slopes,
    "transient_exponents": transient_exponents,
    "consensus_identity": consensus_identity,
    "fixed_p_spread": fixed_p_spread,
    "loss_ordered": loss_ordered,
    "nn_accuracy_tnew": nn_accuracy_tnew,
    "heterogeneity_spread": heterogeneity_spread,
    "star_below_ring": star_below_ring,
    "sanity": sanity,
}
