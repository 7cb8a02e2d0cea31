"""Checks behind experiments/collateral/claims.yaml (docs/papers/collateral.md). Thresholds come from the YAML.

The main-experiment tables: ``unlearn`` and ``reference`` (aggregated records; ``row`` is
``bin`` / ``aggregate`` / ``epoch`` / ``split``), ``fig1``, ``fig2``, ``ablation``, ``models``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import bootstrap, norm, pearsonr, rankdata, spearmanr, ttest_ind

from reprosuite.claims import Outcome
from reprosuite.stats import LEVEL, Decision, Estimate, cell_level, decide, decide_within, mean_ci


def _bins(t: pd.DataFrame, split="test", binning="equal_width") -> pd.DataFrame:
    return t[(t["row"] == "bin") & (t["split"] == split) & (t["binning"] == binning)]


def _agg(t: pd.DataFrame) -> pd.DataFrame:
    return t[t["row"] == "aggregate"]


def split_exact(tables, **_):
    """Claim 1: D_f = first floor(frac N_c) of class c; disjoint; D_r keeps the rest of class c."""
    s = tables["reference"]
    s = s[s["row"] == "split"]
    cols = ["forget_is_first_k_of_class", "disjoint", "covers", "retain_keeps_rest_of_class"]
    ok = bool(len(s)) and all(s[c].astype(bool).all() for c in cols) and (s["n_forget"] == s["expected_n_forget"]).all()
    r = s.iloc[0]
    return Outcome(ok, f"|D_f| = {r.n_forget} (expected {r.expected_n_forget}), first-k {bool(r.forget_is_first_k_of_class)}, "
                       f"disjoint {bool(r.disjoint)}, class-c left in D_r {r.retain_class_c}", "all true")


def shared_bins(tables, **_):
    """Claim 2: every model's bins have the same edges and counts, and they match edges and counts
    recomputed from the s(x) that each unlearning job recomputed from the original on its own
    (``point`` rows, one set per unlearning run, i.e. per (method, seed)); counts sum to the split size."""
    t = pd.concat([tables["unlearn"], tables["reference"]], ignore_index=True)
    b = t[t["row"] == "bin"]
    keys = ["cell", "split", "binning", "bin"]
    spread = int(b.groupby(keys)[["bin_lo", "bin_hi", "count", "consensus_count"]].nunique().max().max())
    sums = b.groupby(["cell", "method", "seed", "split", "binning"])["count"].sum().reset_index()
    agg = _agg(t).drop_duplicates("cell").set_index("cell")
    size = {"test": "n_test_eval", "retain": "n_retain_eval"}
    bad_sum = sum(int(r["count"] != agg.loc[r["cell"], size[r["split"]]]) for _, r in sums.iterrows())
    pts = t[t["row"] == "point"]
    bad_recomputed, n_runs = 0, 0
    for (cell, _method, _seed), p in pts.groupby(["cell", "method", "seed"]):
        n_runs += 1
        s = p.sort_values("point")["s"].to_numpy(dtype=float)
        for binning, rows in b[(b["cell"] == cell) & (b["split"] == "test")].groupby("binning"):
            rows = rows.drop_duplicates("bin").sort_values("bin")
            n_bins = len(rows)
            edges = (np.linspace(s.min(), s.max(), n_bins + 1) if binning == "equal_width"
                     else np.quantile(s, np.linspace(0.0, 1.0, n_bins + 1)))
            counts = np.bincount(np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_bins - 1),
                                 minlength=n_bins)
            recorded = np.append(rows["bin_lo"].to_numpy(float), rows["bin_hi"].to_numpy(float)[-1])
            bad_recomputed += int(not np.allclose(recorded, edges, rtol=0, atol=1e-6)
                                  or not np.array_equal(rows["count"].to_numpy(int), counts))
    ok = spread == 1 and bad_sum == 0 and n_runs > 0 and bad_recomputed == 0
    n_models = b.groupby(["method", "seed"]).ngroups
    return Outcome(ok, f"{n_models} models; distinct values per bin: {spread}; splits whose counts miss the size: "
                       f"{bad_sum}; unlearning runs whose s(x), recomputed by their job, gives other edges or counts: "
                       f"{bad_recomputed} of {n_runs}",
                   "1 distinct value per bin; 0 mismatches; >= 1 run with recomputed s(x), 0 disagree")


def ripple_ga(tables, r2_min: float, **_):
    """Claim 3a: GA-linear gap minimal at the bin(s) touching ρ = 0; c ρ^2 fit with R^2 >= r2_min."""
    g = tables["fig1"]
    g = g[(g["kind"] == "ga_linear") & g["sq_gap_norm"].notna()].sort_values("bin")
    m = g.loc[g["sq_gap_norm"].idxmin()]
    at_zero = m.bin_lo <= 0.0 <= m.bin_hi
    rho, val = g["bin_centre"].to_numpy(), g["sq_gap_norm"].to_numpy()
    c = (val * rho**2).sum() / (rho**4).sum()
    r2 = 1 - ((val - c * rho**2) ** 2).sum() / ((val - val.mean()) ** 2).sum()
    return Outcome(bool(at_zero and r2 >= r2_min), f"min bin [{m.bin_lo:.3f}, {m.bin_hi:.3f}], R2 = {r2:.3f}",
                   f"min bin contains 0, R2 >= {r2_min}")


def ripple_rl(tables, spearman_min: float, min_count: int, **_):
    """Claim 3b: RL-logistic flip rate rises with |ρ| (Spearman over bins > spearman_min)."""
    g = tables["fig1"]
    g = g[(g["kind"] == "rl_logistic") & (g["level"] == "all") & (g["count"] >= min_count)]
    rho = spearmanr(g["bin_centre"].abs(), g["flip_rate"]).statistic
    return Outcome(bool(rho > spearman_min), f"Spearman(|ρ|, flip rate) = {rho:.3f} over {len(g)} bins",
                   f"> {spearman_min}")


def ripple_finite(tables, **_):
    """Claim 3 at smoke: every non-empty bin has a finite gap."""
    g = tables["fig1"]
    v = g.loc[g["count"] > 0, "sq_gap"]
    ok = bool(len(v)) and bool(np.isfinite(v.to_numpy(dtype=float)).all())
    return Outcome(ok, f"{len(v)} non-empty bins, all finite: {ok}", "finite")


def _curves(t, metric, min_consensus, split="test", binning="equal_width"):
    """{(method, seed): per-bin values over bins with >= min_consensus consensus points}."""
    b = _bins(t, split, binning)
    b = b[b["consensus_count"] >= min_consensus].sort_values("bin")
    return {k: g.set_index("bin")[metric] for k, g in b.groupby(["method", "seed"])}


@dataclass(frozen=True)
class BinValue:
    """One method's value in one bin: mean over its seeds with the bin's standard error
    se^2 = s^2_seeds / k + p(1 - p) / N (seed spread plus the sampling of the bin's N test points)."""

    mean: float
    se: float
    k: int  # seeds (1 for the original and the held-out retrain)
    n: int  # consensus points in the bin


def _bin_values(t: pd.DataFrame, metric: str, min_consensus: int, which: str) -> dict[str, BinValue]:
    """Each method's top (nearest) or bottom (farthest) equal-width test bin among the bins with
    >= min_consensus consensus points (the same bins for every method: consensus is the retrains')."""
    b = _bins(t, "test", "equal_width")
    b = b[b["consensus_count"] >= min_consensus]
    if b.empty:
        return {}
    pick = b["bin"].max() if which == "top" else b["bin"].min()
    out = {}
    for method, g in b[b["bin"] == pick].groupby("method"):
        v = g[metric].to_numpy(dtype=float)
        n = int(g["consensus_count"].iloc[0])
        m = float(v.mean())
        var = (float(v.var(ddof=1)) / len(v) if len(v) > 1 else 0.0) + max(m * (1 - m), 0.0) / n
        out[method] = BinValue(m, math.sqrt(var), len(v), n)
    return out


def _linear(terms: list[tuple[float, BinValue]], shift: float, level: float) -> Estimate:
    """sum(c_j X_j) + shift with a normal interval from the bins' standard errors (terms independent)."""
    value = sum(c * x.mean for c, x in terms) + shift
    se = math.sqrt(sum((c * x.se) ** 2 for c, x in terms))
    lo, hi = (value, value) if se == 0 else norm.interval(level, loc=value, scale=se)
    return Estimate(value, float(lo), float(hi), min(x.k for _, x in terms), level, "normal")


def _corr(u: np.ndarray, x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson correlation along ``axis`` (vectorised for scipy.stats.bootstrap); 0 where x is constant."""
    du = u - u.mean(axis=axis, keepdims=True)
    dx = x - x.mean(axis=axis, keepdims=True)
    den = np.sqrt((du**2).sum(axis=axis) * (dx**2).sum(axis=axis))
    num = (du * dx).sum(axis=axis)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _trend(points: pd.DataFrame, method: str, level: float, n_resamples: int) -> Estimate:
    """Pre-registered trend statistic: over consensus test points, the Pearson correlation between
    the proximity rank u = rank(s)/N and the excess discrepancy over the floor averaged over seeds;
    percentile bootstrap over test points (scipy.stats.bootstrap, paired, vectorised: BCa's
    jackknife would hold an N x N array for N = 10,000 points)."""
    p = points[(points["method"] == method) & points["consensus"].astype(bool)]
    p = p[p["excess_a"].notna()]
    if len(p) < 2:
        return Estimate(math.nan, -math.inf, math.inf, 0, level, "bootstrap")
    e = p.groupby("point").agg(s=("s", "first"), e=("excess_a", "mean"), k=("excess_a", "size"))
    u, x = rankdata(e["s"].to_numpy()) / len(e), e["e"].to_numpy(dtype=float)
    value = float(_corr(u, x))
    if np.all(x == x[0]):
        lo = hi = value
    else:
        res = bootstrap((u, x), _corr, paired=True, vectorized=True, confidence_level=level, method="percentile",
                        n_resamples=n_resamples, batch=200, random_state=np.random.default_rng(0))
        lo, hi = (float(v) for v in res.confidence_interval)
    return Estimate(value, lo, hi, int(e["k"].max()), level, "bootstrap")


def localized(tables, methods, orig_methods, metric: str, min_consensus: int, ratio: float, floor: float,
              orig_ratio: float, level: float = LEVEL, n_resamples: int = 2000, **_):
    """Claim 4, pre-registered: for every method (i) trend: rank correlation of the per-point excess
    discrepancy over the held-out floor with proximity > 0 (bootstrap over test points, seeds
    pooled); (ii) top bin >= ratio x max(bottom, floor) and, for ``orig_methods``, top >= orig_ratio
    x the original's top bin, each from the bins' standard errors. Bonferroni over all cells."""
    t = pd.concat([tables["unlearn"], tables["reference"]], ignore_index=True)
    points = t[t["row"] == "point"]
    top, bottom = _bin_values(t, metric, min_consensus, "top"), _bin_values(t, metric, min_consensus, "bottom")
    present = [m for m in methods if m in top]
    n_cells = 2 * len(methods) + len(orig_methods)
    lv = cell_level(level, n_cells)
    decisions, parts = [], []
    for m in methods:
        if m not in present:
            decisions.append(Decision(False, Estimate(math.nan, math.nan, math.nan, 0, lv), "present", None,
                                      f"{m} missing"))
            continue
        tr = _trend(points, m, lv, n_resamples)
        decisions.append(decide(tr, 0.0, ">", f"{m} trend ρ"))
        lo_term = [(-ratio, bottom[m])] if bottom[m].mean > floor else []
        shift = 0.0 if lo_term else -ratio * floor
        d = _linear([(1.0, top[m]), *lo_term], shift, lv)
        decisions.append(decide(d, 0.0, ">=", f"{m} top - {ratio:g} max(bottom, {floor:g})"))
        parts.append(f"{m}: ρ {tr.value:.3f} [{tr.lo:.3f}, {tr.hi:.3f}] (k={tr.n}); bottom {bottom[m].mean:.3f} -> "
                     f"top {top[m].mean:.3f} ± {top[m].se:.3f} (N={top[m].n})")
        if m in orig_methods:
            o = top.get("original")
            if o is None:
                decisions.append(Decision(False, Estimate(math.nan, math.nan, math.nan, 0, lv), "present", None,
                                          "original missing"))
            else:
                d = _linear([(1.0, top[m]), (-orig_ratio, o)], 0.0, lv)
                decisions.append(decide(d, 0.0, ">=", f"{m} top - {orig_ratio:g} original top"))
    if "original" in top:
        parts.append(f"original top {top['original'].mean:.3f} ± {top['original'].se:.3f}")
    return Outcome.decided(decisions, measured="; ".join(parts),
                           expected=f"trend ρ > 0; top >= {ratio:g} x max(bottom, {floor:g}); GA/RL-D_r top >= "
                                    f"{orig_ratio:g} x original's; {n_cells} cells, Bonferroni at {level:g}")


def ltd_lower(tables, baselines, metric: str, min_consensus: int, factor: float, floor_margin: float,
              level: float = LEVEL, **_):
    """Claim 5, one-sided on the bins' standard errors: LTD's top bin <= factor x every baseline's
    top bin (so <= factor x the smallest) and <= held-out floor's top bin + margin. Bonferroni."""
    t = pd.concat([tables["unlearn"], tables["reference"]], ignore_index=True)
    top = _bin_values(t, metric, min_consensus, "top")
    need = ["ltd", "retrain_floor", *baselines]
    missing = [m for m in need if m not in top]
    if missing:
        return Outcome(False, f"no top bin for {', '.join(missing)}", "LTD, floor and every baseline present")
    lv = cell_level(level, len(baselines) + 1)
    ltd, fl = top["ltd"], top["retrain_floor"]
    decisions = [decide(_linear([(1.0, ltd), (-factor, top[m])], 0.0, lv), 0.0, "<=", f"LTD - {factor:g} x {m}")
                 for m in baselines]
    decisions.append(decide(_linear([(1.0, ltd), (-1.0, fl)], -floor_margin, lv), 0.0, "<=",
                            f"LTD - floor - {floor_margin:g}"))
    measured = (f"LTD top {ltd.mean:.3f} ± {ltd.se:.3f} (k={ltd.k}, N={ltd.n}); "
                + ", ".join(f"{m} {top[m].mean:.3f} ± {top[m].se:.3f}" for m in baselines)
                + f"; floor {fl.mean:.3f} ± {fl.se:.3f}")
    return Outcome.decided(decisions, measured=measured,
                           expected=f"<= {factor:g} x each baseline and <= floor + {floor_margin:g}; "
                                    f"{len(decisions)} one-sided cells, Bonferroni at {level:g}")


def _welch(a: np.ndarray, b: np.ndarray, level: float) -> Estimate:
    """mean(a) - mean(b) with a Welch t interval (scipy.stats.ttest_ind)."""
    d = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Estimate(d, -math.inf, math.inf, len(a), level)
    if a.std() == 0 and b.std() == 0:
        return Estimate(d, d, d, len(a), level)
    lo, hi = ttest_ind(a, b, equal_var=False).confidence_interval(level)
    return Estimate(d, float(lo), float(hi), len(a), level)


def ltd_aggregates(tables, ua_margin: float, acc_margin: float, mia_margin: float, level: float = LEVEL, **_):
    """Claim 6 on intervals over seeds (Bonferroni over 4 cells): LTD's mean UA inside the retrains'
    range ± ua_margin; LTD - retrain mean of RA and TA inside ± acc_margin and of SVC-MIA inside
    ± mia_margin (Welch intervals, LTD seeds vs the R retrains)."""
    ltd = _agg(tables["unlearn"]).query("method == 'ltd'")
    ret = _agg(tables["reference"]).query("method in ['retrain', 'retrain_floor']")
    if ltd.empty or ret.empty:
        return Outcome(False, "LTD or retrain aggregates missing", "present")
    lv = cell_level(level, 4)
    lo, hi = ret["ua"].min() - ua_margin, ret["ua"].max() + ua_margin
    decisions = [decide_within(mean_ci(ltd["ua"].to_numpy(float), lv), lo, hi, "UA")]
    for key, margin in (("ra", acc_margin), ("ta", acc_margin), ("mia_svc", mia_margin)):
        decisions.append(decide_within(_welch(ltd[key].to_numpy(float), ret[key].to_numpy(float), lv),
                                       -margin, margin, f"{key.upper()} LTD - retrain"))
    support = ""
    if "support_retained_forget_class" in ltd and ltd["support_retained_forget_class"].notna().any():
        support = (f"; support {ltd['support_size'].mean():.0f} examples, of which "
                   f"{ltd['support_retained_forget_class'].mean():.0f} retained forget-class images")
    m = ltd[["ua", "ra", "ta", "mia_svc"]].mean()
    measured = (f"LTD UA {m.ua:.3f} RA {m.ra:.3f} TA {m.ta:.3f} MIA {m.mia_svc:.1f} (k={len(ltd)}); retrains UA "
                f"{ret.ua.min():.3f}-{ret.ua.max():.3f} RA {ret.ra.mean():.3f} TA {ret.ta.mean():.3f} "
                f"MIA {ret.mia_svc.mean():.1f} (R={len(ret)})" + support)
    return Outcome.decided(decisions, measured=measured,
                           expected=f"UA in [{lo:.3f}, {hi:.3f}]; RA, TA ± {acc_margin:g}; MIA ± {mia_margin:g}; "
                                    f"Bonferroni over 4 at {level:g}")


def aggregates_hide(tables, metric: str, min_consensus: int, acc_tol: float, ratio: float, abs_min: float, **_):
    """Claim 7: a method pair with |ΔRA|, |ΔTA| <= acc_tol but top bins differing >= ratio x and >= abs_min."""
    curves = _curves(tables["unlearn"], metric, min_consensus)
    top = pd.Series({k: v.iloc[-1] for k, v in curves.items()}).groupby(level=0).mean()
    agg = _agg(tables["unlearn"]).groupby("method")[["ra", "ta"]].mean()
    best, hits = None, []
    for a in top.index:
        for b in top.index:
            if a >= b:
                continue
            lo, hi = sorted((top[a], top[b]))
            d_ra, d_ta = abs(agg.loc[a, "ra"] - agg.loc[b, "ra"]), abs(agg.loc[a, "ta"] - agg.loc[b, "ta"])
            cand = (max(d_ra, d_ta), a, b, lo, hi)
            if d_ra <= acc_tol and d_ta <= acc_tol:
                if hi >= ratio * max(lo, 1e-12) and hi - lo >= abs_min:
                    hits.append(f"{a} vs {b}: ΔRA {d_ra:.3f} ΔTA {d_ta:.3f}, top {lo:.3f} vs {hi:.3f}")
                elif best is None or hi - lo > best[4] - best[3]:
                    best = cand
    if hits:
        return Outcome(True, "; ".join(hits), f"some pair: |ΔRA|,|ΔTA| <= {acc_tol}, top ratio >= {ratio}, >= {abs_min}")
    detail = "no pair" if best is None else f"closest: {best[1]} vs {best[2]} max|Δacc| {best[0]:.3f}, top {best[3]:.3f} vs {best[4]:.3f}"
    return Outcome(False, detail, f"some pair: |ΔRA|,|ΔTA| <= {acc_tol}, top ratio >= {ratio}, >= {abs_min}")


def teacher_kl(tables, n_support: int, **_):
    """Claim 8: KL(hist_retrain || hist_teacher) < KL(.. || uniform) and < KL(.. || all class c)."""
    a = tables["ablation"]
    a = a[(a["n_support"] == n_support) & (a["support_mode"] == "closest")]
    a = a[a["teacher_threshold"] == a["teacher_threshold"].max()]
    if a.empty:
        return Outcome(False, f"no ablation row at support {n_support} (closest)", "teacher < both references")
    r = a.iloc[0]
    ok = r.kl_retrain_teacher < r.kl_retrain_uniform and r.kl_retrain_teacher < r.kl_retrain_all_c
    return Outcome(bool(ok), f"KL teacher {r.kl_retrain_teacher:.3f}, uniform {r.kl_retrain_uniform:.3f}, "
                             f"all-c {r.kl_retrain_all_c:.3f} (teacher class-c rate {r.teacher_class_c_rate:.2f}, "
                             f"retrain {r.retrain_class_c_rate:.2f})", "teacher < both references")


def class_similarity(tables, method: str, min_repeats: int, **_):
    """Claim 9: Pearson r (similarity vs accuracy drop, deleted class excluded) > 0 in >= min_repeats."""
    f = tables["fig2"]
    f = f[(f["row"] == "class") & (f["method"] == method)]
    rs, rs_all = [], []
    for _, g in f.groupby("seed"):
        keep = g[g["class"] != g["deleted_class"]]
        rs.append(float(pearsonr(keep["similarity"], keep["acc_drop"]).statistic))
        rs_all.append(float(pearsonr(g["similarity"], g["acc_drop"]).statistic))
    n_pos = sum(r > 0 for r in rs)
    return Outcome(n_pos >= min_repeats, f"r without deleted class {[round(r, 3) for r in rs]}, "
                                         f"with {[round(r, 3) for r in rs_all]}", f"> 0 in >= {min_repeats} repeats")


def sanity(tables, chance_margin: float, n_classes: int, **_):
    """Claim 10: original and retrains beat chance by >= chance_margin; metrics finite; RTE > 0."""
    m = tables["models"]
    acc_ok = bool((m["test_accuracy"] >= 1.0 / n_classes + chance_margin).all())
    agg = _agg(tables["unlearn"])
    finite = bool(np.isfinite(agg[["ra", "ua", "ta", "rte_s", "mia_loss_accuracy"]].to_numpy(dtype=float)).all())
    rte_ok = bool((agg["rte_s"] > 0).all())
    return Outcome(acc_ok and finite and rte_ok, f"min model TA {m.test_accuracy.min():.3f}; finite {finite}; "
                                                 f"min RTE {agg.rte_s.min():.2f} s", f"TA >= {1 / n_classes + chance_margin:.2f}; finite; RTE > 0")


CHECKS = {f.__name__: f for f in (split_exact, shared_bins, ripple_ga, ripple_rl, ripple_finite, localized, ltd_lower,
                                  ltd_aggregates, aggregates_hide, teacher_kl, class_similarity, sanity)}
