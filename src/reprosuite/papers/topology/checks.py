"""Claim checks of the topology paper; thresholds come from claims.yaml params.

The claims and their sources are listed in docs/papers/topology.md. Deterministic quantities
(spectra, transient exponents) are compared exactly. Everything measured over seeds or Monte
Carlo draws is decided on a confidence interval (reprosuite.stats): PASS when the interval lies
on the passing side, FAIL when it lies on the failing side, INCONCLUSIVE when it straddles. A
claim over several cells keeps a family-wise level (95% unless params say otherwise) by
Bonferroni (``cell_level``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from reprosuite.claims import Outcome
from reprosuite.gossip.spectra import loglog_slope
from reprosuite.stats import (
    LEVEL,
    Decision,
    Estimate,
    bootstrap_ci,
    cell_level,
    decide,
    decide_rel,
    exact,
    paired_diff_ci,
)

from .tables import final_losses


def _half_unit(value: float) -> float:
    """Half a unit in the last printed digit of a YAML number (e.g. 11.76 -> 0.005)."""
    text = repr(float(value))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 6
    return 0.5 * 10.0**-decimals


def spectral_table(tables, *, reference, printed=(), rtol, p_atol, stoch_tol, ring_weight=1 / 3):
    """Claim 1 (deterministic): p, (1-p)/p, T_new match the reference tables; W symmetric/doubly stochastic; ring = 1/3."""
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
    """Claim 2 (deterministic): T_new <= (1-p)/p everywhere; equality only for the complete graph (both 0)."""
    df = tables["fig1"]
    excess = float((df["T_new"] - df["T_gap"]).max())
    equal = df[np.abs(df["T_new"] - df["T_gap"]) <= tol]
    others = sorted(set(equal["topology"]) - {"complete"})
    ok = excess <= tol and not others
    return Outcome(ok, {"max(T_new - T_gap)": excess, "equality_rows": sorted(set(equal["topology"]))},
                   f"<= {tol}; equality only for complete", f"equality also for {others}" if others else "")


def scaling_slopes(tables, *, min_n, bounds, hypercube_t_new_max=None):
    """Claim 3 (deterministic): log-log slopes of (1-p)/p and T_new on n >= min_n; hypercube T_new bounded."""
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
    """Claim 4 (deterministic): numeric slopes of max(n³X², n/p²) (tab1) in the stated ranges."""
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


def _t_estimate(mean: float, se: float, dof: int, level: float) -> Estimate:
    """A mean with its Student-t interval from a standard error and degrees of freedom."""
    if not np.isfinite(se) or dof < 1:
        return Estimate(float(mean), -np.inf, np.inf, int(dof) + 1, level)
    if se == 0.0:
        return Estimate(float(mean), float(mean), float(mean), int(dof) + 1, level)
    lo, hi = sps.t.interval(level, dof, loc=mean, scale=se)
    return Estimate(float(mean), float(lo), float(hi), int(dof) + 1, level)


def _units(df: pd.DataFrame) -> pd.Series:
    """Independent samples behind each fig2a row: chains × coordinates when recorded, else chains."""
    return df["units"] if "units" in df else df["chains"]


def _consensus_cells(df: pd.DataFrame, *, tol: float, abs_tol_zero: float, level: float) -> list[Decision]:
    """One decision per W: |measured / predicted − 1| <= tol on a t interval (exact for prediction 0)."""
    out = []
    for r, units in zip(df.itertuples(), _units(df)):
        name = f"{r.topology} n={r.n}"
        if r.predicted <= 1e-9:  # complete graph: W = J/n removes every deviation exactly
            out.append(decide(exact(abs(r.measured - r.predicted)), abs_tol_zero, "<=", name))
        else:
            est = _t_estimate(r.measured, r.measured_se, int(units) - 1, level)
            out.append(decide_rel(est, r.predicted, tol, name))
    return out


def consensus_identity(tables, *, tol, min_r2, abs_tol_zero=1e-9, min_topologies=None, families=(), level=LEVEL):
    """Claim 5: measured stationary consensus / (d η² σ²) equals the prediction (T_new) within ``tol``.

    Every W is one cell (relative deviation on a t interval over the independent chains ×
    coordinates, Bonferroni over the cells). Without ``min_topologies`` every W must PASS. With
    it, at least that many distinct topologies (every n) and every listed fixed-p family (every
    member) must PASS. R² of measured vs T_new is a point check (its noise is far below 1 − min_r2).
    """
    df = tables["fig2a"].reset_index(drop=True)
    cells = _consensus_cells(df, tol=tol, abs_tol_zero=abs_tol_zero, level=cell_level(level, len(df)))
    r2_new, r2_gap = _r2(df["T_new"], df["measured"]), _r2(df["T_gap"], df["measured"])
    r2 = decide(exact(r2_new), min_r2, ">=", "R² vs T_new")
    nonzero = df["predicted"] > 1e-9
    measured = {"max_rel_err": float(df.loc[nonzero, "rel_err"].max()) if nonzero.any() else 0.0,
                "R2_T_new": r2_new, "R2_T_gap": r2_gap,
                "cells_pass": f"{sum(d.passed is True for d in cells)}/{len(cells)}"}
    expected = {"rel_tol": tol, "R2_T_new_min": min_r2, "family_level": level}
    if min_topologies is None:
        return Outcome.decided([*cells, r2], measured=measured, expected=expected)
    df["passed"] = [d.passed for d in cells]
    topo = df[(df["kind"] == "topology") & nonzero]
    status = {t: (True if all(v is True for v in g["passed"]) else False if any(v is False for v in g["passed"]) else None)
              for t, g in topo.groupby("topology")}
    good = sorted(t for t, v in status.items() if v is True)
    maybe = sorted(t for t, v in status.items() if v is None)
    count = True if len(good) >= min_topologies else (False if len(good) + len(maybe) < min_topologies else None)
    fam_cells = [c for c, fam in zip(cells, df["family"]) if fam in families]
    missing = [f for f in families if f not in set(df["family"])]
    measured |= {"topologies_within_tol": len(good), "undecided_topologies": maybe}
    expected["min_topologies"] = min_topologies
    count_est = exact(len(good))
    decisions = [Decision(count, count_est, f">= {min_topologies} topologies", None, "topologies within tol"),
                 *fam_cells, r2]
    if missing:
        decisions.append(Decision(False, exact(0), "present", None, f"family {missing[0]} missing"))
    return Outcome.decided(decisions, measured=measured, expected=expected,
                           detail=f"topologies within tol at every n: {good}")


def fixed_p_spread(tables, *, n, p_tol, min_ratio, level=LEVEL):
    """Claim 6: identical p inside each family (exact); stationary consensus max/min >= min_ratio.

    The ratio of the largest to the smallest member's measured mean is decided on a normal
    interval of its logarithm (delta method, the two means independent), Bonferroni over families.
    """
    df = tables["fig2a"]
    lvl = cell_level(level, len(min_ratio))
    z = float(sps.norm.ppf(0.5 + lvl / 2))
    measured, decisions = {}, []
    for family, ratio in min_ratio.items():
        g = df[(df["family"] == family) & (df["n"] == n)]
        if g.empty:
            decisions.append(Decision(False, exact(0), "present", None, f"no {family} rows at n = {n}"))
            continue
        p_spread = float(g["p"].max() - g["p"].min())
        decisions.append(decide(exact(p_spread), p_tol, "<=", f"{family} p spread"))
        hi, lo = g.loc[g["measured"].idxmax()], g.loc[g["measured"].idxmin()]
        value = float(hi["measured"] / lo["measured"])
        log_se = float(np.hypot(hi["measured_se"] / hi["measured"], lo["measured_se"] / lo["measured"]))
        units = int(min(_units(g)))
        est = Estimate(value, value * np.exp(-z * log_se), value * np.exp(z * log_se), units, lvl, "delta")
        decisions.append(decide(est, ratio, ">=", f"{family} max/min"))
        measured[f"{family}.p_spread"], measured[f"{family}.ratio"] = p_spread, value
        measured[f"{family}.ratio_interval"] = [float(est.lo), float(est.hi)]
    return Outcome.decided(decisions, measured=measured, expected={"p_tol": p_tol, "min_ratio": min_ratio,
                                                                     "family_level": level})


def loss_ordered(tables, *, metric="loss_node_mean", level=LEVEL):
    """Claim 7: per (model, family), the final loss increases with T_new at fixed p.

    Members of a family share each seed's minibatch stream (common random numbers), so every
    comparison is a paired difference over seeds with a t interval: each adjacent pair (in T_new
    order) must be > 0, and so must largest − smallest T_new member. A significantly negative
    difference is FAIL; a straddling one is INCONCLUSIVE. Bonferroni over all cells of the claim.
    """
    per_seed = final_losses(tables["fig2"])
    comparisons = []  # (name, lower member, upper member, group)
    for (model, family), g in per_seed.groupby(["model", "family"]):
        order = g.groupby("member")["T_new"].first().sort_values().index.tolist()
        wide = g.pivot_table(index="seed", columns="member", values=metric).dropna()
        pairs = list(zip(order[:-1], order[1:]))
        if len(order) > 2:
            pairs.append((order[0], order[-1]))
        comparisons += [(f"{model}/{family} {b} − {a}", wide[a], wide[b]) for a, b in pairs]
    lvl = cell_level(level, len(comparisons))
    decisions, measured = [], {}
    for name, low, high in comparisons:
        est = paired_diff_ci(high.to_numpy(), low.to_numpy(), lvl)
        decisions.append(decide(est, 0.0, ">", name))
        measured[name] = f"{est.value:.3g} [{est.lo:.3g}, {est.hi:.3g}]"
    seeds = int(per_seed["seed"].nunique()) if len(per_seed) else 0
    return Outcome.decided(decisions, measured=measured | {"seeds": seeds},
                           expected=f"every adjacent pair and max − min T_new member > 0 ({metric}; "
                                    f"paired t, {level:.0%} family-wise over {len(comparisons)} cells)")


def _final_acc(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Final-epoch accuracy per (α, topology, seed)."""
    return df[df["epoch"] == df.groupby(["alpha", "topology", "seed"])["epoch"].transform("max")]


def _seed_means(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    return _final_acc(df, metric).groupby(["alpha", "topology", "T_new"], as_index=False)[metric].mean()


def _by_seed(df: pd.DataFrame, alpha: float, metric: str) -> pd.DataFrame:
    """(seed × topology) final accuracies at one α, topologies in T_new order; seeds present in all."""
    g = _final_acc(df, metric)
    g = g[np.isclose(g["alpha"], alpha)]
    order = g.groupby("topology")["T_new"].first().sort_values().index
    return g.pivot_table(index="seed", columns="topology", values=metric)[order].dropna()


def _spearman_of_means(t_new):
    """Spearman correlation of the seed means with T_new: Pearson correlation of the ranks (scipy's
    ``rankdata``, ties averaged), the definition ``spearmanr`` uses, without its per-call overhead
    (the bootstrap calls it thousands of times)."""
    t_rank = sps.rankdata(t_new)

    def stat(*cols):
        ranks = sps.rankdata([np.mean(c) for c in cols])
        if np.ptp(ranks) == 0:
            return float("nan")
        return round(float(np.corrcoef(ranks, t_rank)[0, 1]), 12)  # one swap of 4 is exactly -0.8
    return stat


def nn_accuracy_tnew(tables, *, max_spearman, complete_minus_ring_min=None, at_alpha=0.1,
                     metric="test_accuracy_xbar", level=LEVEL):
    """Claim 8: per α, Spearman(seed-mean accuracy, T_new) <= max_spearman; complete − ring gap.

    Spearman of the seed means gets a bootstrap interval over seeds (seeds resampled jointly
    across topologies: a seed fixes the partition and the initialisation); the complete − ring
    gap (percentage points) a paired t interval. Bonferroni over the cells.
    """
    df = tables["fig3"]
    alphas = sorted(df["alpha"].unique())
    m = len(alphas) + (complete_minus_ring_min is not None)
    lvl = cell_level(level, m)
    t_new = df.groupby("topology")["T_new"].first()
    decisions, measured = [], {}
    for alpha in alphas:
        wide = _by_seed(df, alpha, metric)
        est = bootstrap_ci(tuple(wide[c].to_numpy() for c in wide.columns), _spearman_of_means(t_new[wide.columns].to_numpy()),
                           level=lvl)
        decisions.append(decide(est, max_spearman, "<=", f"Spearman α={alpha:g}"))
        measured[f"spearman_alpha{alpha:g}"] = est.value
    if complete_minus_ring_min is not None:
        wide = _by_seed(df, at_alpha, metric)
        if not {"complete", "ring"} <= set(wide.columns):
            return Outcome(False, measured, {"complete_minus_ring_pp_min": complete_minus_ring_min},
                           f"complete or ring has no run at α = {at_alpha:g} with every seed")
        est = paired_diff_ci(100 * wide["complete"].to_numpy(), 100 * wide["ring"].to_numpy(), lvl)
        decisions.append(decide(est, complete_minus_ring_min, ">=", f"complete − ring pp α={at_alpha:g}"))
        measured[f"complete_minus_ring_pp_alpha{at_alpha:g}"] = est.value
    measured["seeds"] = int(df["seed"].nunique())
    return Outcome.decided(decisions, measured=measured,
                           expected={"spearman_max": max_spearman, "complete_minus_ring_pp_min": complete_minus_ring_min,
                                     "family_level": level})


def heterogeneity_spread(tables, *, low_alpha=0.1, high_alpha=10.0, metric="test_accuracy_xbar", level=LEVEL):
    """Claim 9: max − min seed-mean accuracy over topologies is larger at low α than at high α.

    The difference of spreads (pp) gets a bootstrap interval over seeds (a seed is resampled with
    all its runs, both α); decided > 0.
    """
    df = tables["fig3"]
    lo_w, hi_w = _by_seed(df, low_alpha, metric), _by_seed(df, high_alpha, metric)
    seeds = lo_w.index.intersection(hi_w.index)
    lo_w, hi_w = lo_w.loc[seeds], hi_w.loc[seeds]
    k = lo_w.shape[1]

    def stat(*cols):
        a = np.array([np.mean(c) for c in cols[:k]])
        b = np.array([np.mean(c) for c in cols[k:]])
        return 100.0 * float((a.max() - a.min()) - (b.max() - b.min()))

    cols = tuple(lo_w[c].to_numpy() for c in lo_w.columns) + tuple(hi_w[c].to_numpy() for c in hi_w.columns)
    est = bootstrap_ci(cols, stat, level=level)
    spread = {a: 100.0 * float(w.mean().max() - w.mean().min()) for a, w in ((low_alpha, lo_w), (high_alpha, hi_w))}
    return Outcome.decided([decide(est, 0.0, ">", f"spread(α={low_alpha:g}) − spread(α={high_alpha:g}) pp")],
                           measured={f"spread_alpha{low_alpha:g}_pp": spread[low_alpha],
                                     f"spread_alpha{high_alpha:g}_pp": spread[high_alpha],
                                     "difference_pp": est.value, "seeds": len(seeds)},
                           expected=f"spread(α={low_alpha:g}) − spread(α={high_alpha:g}) > 0")


def star_below_ring(tables, *, metric="test_accuracy_xbar", level=LEVEL):
    """Claim 10 (report-only prediction): ring − star accuracy > 0 at every α (paired t, Bonferroni)."""
    df = tables["fig3"]
    alphas = sorted(df["alpha"].unique())
    lvl = cell_level(level, len(alphas))
    decisions, measured = [], {}
    for alpha in alphas:
        wide = _by_seed(df, alpha, metric)
        if not {"ring", "star"} <= set(wide.columns):
            return Outcome(False, measured, "ring − star > 0 at every α", f"ring or star has no run at α = {alpha:g}")
        est = paired_diff_ci(100 * wide["ring"].to_numpy(), 100 * wide["star"].to_numpy(), lvl)
        decisions.append(decide(est, 0.0, ">", f"ring − star pp α={alpha:g}"))
        measured[f"ring_minus_star_pp_alpha{alpha:g}"] = est.value
    return Outcome.decided(decisions, measured=measured, expected="ring − star > 0 at every α")


REQUIRED_COLUMNS = ("dataset", "topology", "n", "p", "T_gap", "T_new", "alpha", "seed", "lr")


def sanity(tables, *, min_accuracy, metric_pairs):
    """Claim 11 (smoke gate, no interval: any failing run fails it): finite losses; fig3 x̄ accuracy > min_accuracy; rows carry all columns."""
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
