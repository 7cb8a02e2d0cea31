"""Checks behind experiments/collateral/claims.yaml (spec §6). Thresholds come from the YAML.

The main-experiment tables: ``unlearn`` and ``reference`` (aggregated records; ``row`` is
``bin`` / ``aggregate`` / ``epoch`` / ``split``), ``fig1``, ``fig2``, ``ablation``, ``models``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from reprosuite.claims import Outcome


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
    """Claim 2: identical bin edges and counts across methods; counts sum to the split size."""
    t = pd.concat([tables["unlearn"], tables["reference"]], ignore_index=True)
    b = t[t["row"] == "bin"]
    keys = ["cell", "split", "binning", "bin"]
    spread = b.groupby(keys)[["bin_lo", "bin_hi", "count", "consensus_count"]].nunique().max().max()
    sums = b.groupby(["cell", "method", "seed", "split", "binning"])["count"].sum().reset_index()
    agg = _agg(t).drop_duplicates("cell").set_index("cell")
    size = {"test": "n_test_eval", "retain": "n_retain_eval"}
    bad = sum(int(r["count"] != agg.loc[r["cell"], size[r["split"]]]) for _, r in sums.iterrows())
    n_models = b.groupby(["method", "seed"]).ngroups
    return Outcome(spread == 1 and bad == 0,
                   f"{n_models} models; distinct values per bin: {spread}; splits whose counts miss the size: {bad}",
                   "1 distinct value per bin; 0 mismatches")


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


def localized(tables, methods, orig_methods, metric: str, min_consensus: int, ratio: float, floor: float,
              spearman_min: float, orig_ratio: float, **_):
    """Claim 4: top bin >= ratio x max(bottom, floor), Spearman >= spearman_min in every seed;
    for ``orig_methods`` also top >= orig_ratio x the original's top bin."""
    curves = _curves(pd.concat([tables["unlearn"], tables["reference"]]), metric, min_consensus)
    orig = next(v for (m, _), v in curves.items() if m == "original")
    ok, parts = True, []
    for (m, seed), v in sorted(curves.items()):
        if m not in methods:
            continue
        top, bottom = v.iloc[-1], v.iloc[0]
        rho = spearmanr(v.index, v.to_numpy()).statistic
        good = top >= ratio * max(bottom, floor) and rho >= spearman_min
        if m in orig_methods:
            good = good and top >= orig_ratio * orig.iloc[-1]
        ok &= bool(good)
        parts.append(f"{m}/s{seed}: {bottom:.3f}->{top:.3f} ρ={rho:.2f}{'' if good else ' ✗'}")
    parts.append(f"original top {orig.iloc[-1]:.3f}")
    return Outcome(ok, "; ".join(parts), f"top >= {ratio}x max(bottom, {floor}), Spearman >= {spearman_min}; "
                                         f"GA/RL-D_r top >= {orig_ratio}x original's")


def ltd_lower(tables, baselines, metric: str, min_consensus: int, factor: float, floor_margin: float, **_):
    """Claim 5: LTD's top bin <= factor x the smallest baseline top bin and <= floor + margin."""
    curves = _curves(pd.concat([tables["unlearn"], tables["reference"]]), metric, min_consensus)
    top = pd.Series({k: v.iloc[-1] for k, v in curves.items()}).groupby(level=0).mean()
    ltd, floor = top["ltd"], top["retrain_floor"]
    smallest = min(top[m] for m in baselines)
    ok = ltd <= factor * smallest and ltd <= floor + floor_margin
    return Outcome(bool(ok), f"LTD top {ltd:.3f}; baselines {', '.join(f'{m} {top[m]:.3f}' for m in baselines)}; "
                             f"floor {floor:.3f}", f"<= {factor} x {smallest:.3f} and <= floor + {floor_margin}")


def ltd_aggregates(tables, ua_margin: float, acc_margin: float, mia_margin: float, **_):
    """Claim 6: LTD's UA within the retrains' range ± ua_margin; RA/TA within acc_margin of the
    retrain mean; SVC-MIA within mia_margin points."""
    ltd = _agg(tables["unlearn"]).query("method == 'ltd'")[["ua", "ra", "ta", "mia_svc"]].mean()
    ret = _agg(tables["reference"]).query("method in ['retrain', 'retrain_floor']")
    ok = (ret["ua"].min() - ua_margin <= ltd["ua"] <= ret["ua"].max() + ua_margin
          and abs(ltd["ra"] - ret["ra"].mean()) <= acc_margin and abs(ltd["ta"] - ret["ta"].mean()) <= acc_margin
          and abs(ltd["mia_svc"] - ret["mia_svc"].mean()) <= mia_margin)
    return Outcome(bool(ok), f"LTD UA {ltd.ua:.3f} RA {ltd.ra:.3f} TA {ltd.ta:.3f} MIA {ltd.mia_svc:.1f}; retrains UA "
                             f"{ret.ua.min():.3f}-{ret.ua.max():.3f} RA {ret.ra.mean():.3f} TA {ret.ta.mean():.3f} "
                             f"MIA {ret.mia_svc.mean():.1f}",
                   f"UA in range ± {ua_margin}; RA, TA ± {acc_margin}; MIA ± {mia_margin}")


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
