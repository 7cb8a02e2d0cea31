"""Claim checks of the teleportation paper (docs/papers/teleportation.md lists each claim's source).

Thresholds come from claims.yaml params. Quantities that depend on seeds are decided on their
interval (``reprosuite.stats``), with Bonferroni over the cells of a claim; exact quantities
(mixing matrices, equalities, costs, selections) are plain comparisons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from reprosuite.claims import Outcome
from reprosuite.stats import Decision, Estimate, cell_level, decide, exact, mean_ci, paired_diff_ci

from .analysis import best_k, best_lr, dsgd
from .tables import final_rows


def _exact_cell(ok: bool, value: float, expected: str, name: str) -> Decision:
    return Decision(bool(ok), exact(value), expected, None, name)


# --- claims 1, 2, 10: mixing matrices and equalities (deterministic) -------------------------

def mixing_matrices(tables, *, ring_p, p_atol, stoch_tol, consensus_tol):
    """Ring-of-k W symmetric, doubly stochastic, p_k as tabulated; one-peer exp. exact in one period."""
    df = tables["tab_mixing"]
    slot = df[df["kind"] == "slot"]
    bad, checked = [], 0
    for k, p_ref in ring_p.items():
        row = slot[(slot["graph"] == "ring") & (slot["k"] == int(k))]
        if row.empty:
            continue
        checked += 1
        if abs(float(row["p"].iloc[0]) - p_ref) > p_atol:
            bad.append(f"ring k={k}: p {float(row['p'].iloc[0]):.6f} vs {p_ref}")
    stoch = float(slot[["symmetry_err", "row_sum_err", "col_sum_err"]].to_numpy().max())
    prod = float((slot["p"] - slot["p_product"]).abs().max())
    op = df[df["kind"] == "one_peer"]
    pow2 = op[[(int(k) & (int(k) - 1)) == 0 for k in op["k"]]]
    op_bad = [f"one-peer n={int(r.k)}: p {r.p:.3g}, consensus err {r.consensus_err:.2g}" for r in pow2.itertuples()
              if abs(r.p - 1.0) > consensus_tol or r.consensus_err > consensus_tol]
    ok = checked > 0 and not bad and stoch <= stoch_tol and prod <= 1e-9 and not op_bad and len(pow2) > 0
    return Outcome(ok, {"ring_rows_checked": checked, "stochasticity_err": stoch, "product_vs_symmetric_gap": prod,
                        "one_peer_checked": len(pow2)},
                   f"ring p within {p_atol}; W errors <= {stoch_tol}; one-peer p = 1", "; ".join(bad + op_bad))


def _equality(tables, case, tol):
    df = tables["tab_mixing"]
    row = df[(df["kind"] == "equality") & (df["case"] == case)]
    if row.empty:
        return Outcome(False, None, f"<= {tol}", f"no {case} row")
    diff = float(row["max_abs_diff"].iloc[0])
    return Outcome(diff <= tol, diff, f"max |Δx| <= {tol:g}", f"{case} over {int(row['rounds'].iloc[0])} rounds")


def k_equals_n(tables, *, tol):
    """Claim 2: TELEPORTATION(k = n, identity assignment) reproduces D-SGD's iterates."""
    return _equality(tables, "k_eq_n_identity_vs_dsgd", tol)


def sanity(tables, *, tol, min_accuracy):
    """Claim 10: k = 1 is local SGD on resampled nodes; finite losses; every Tab. 2 run above chance."""
    eq = _equality(tables, "k1_vs_local_sgd", tol)
    fin = final_rows(tables["tab2"])
    losses = tables["tab2"]["train_loss_node_mean"].to_numpy(float)
    finite = bool(np.isfinite(losses).all()) and (tables["tab2"].get("status", pd.Series(["ok"])) != "diverged").all()
    worst = float(fin["test_accuracy_xbar"].min()) if len(fin) else float("nan")
    ok = bool(eq.passed) and finite and len(fin) > 0 and worst > min_accuracy
    return Outcome(ok, {"k1_max_abs_diff": eq.measured, "finite": finite, "min_final_accuracy": worst, "runs": len(fin)},
                   f"k=1 diff <= {tol:g}; finite; every run's accuracy > {min_accuracy}")


# --- claims 3-6: Fig. 2 on the quadratic problem ---------------------------------------------

def _ns(best, method, graph):
    return sorted(best[(best["method"] == method) & (best["graph"] == graph)]["n"].unique())


def dsgd_degrades(tables, *, graph="ring", factor=3.0, level=0.95):
    """Claim 3: D-SGD's iterations to target non-decreasing in n; at the largest n >= factor x the smallest
    (or never reached within T)."""
    best = best_lr(tables["fig2"])
    ns = _ns(best, "dsgd", graph)
    if len(ns) < 2:
        return Outcome(False, None, None, f"D-SGD {graph} needs >= 2 values of n; has {ns}")
    m = len(ns)  # (len(ns) - 1) monotonicity cells + 1 ratio cell
    lv = cell_level(level, m)
    cells = []
    for a, b in zip(ns, ns[1:]):
        ra, rb = dsgd(best, graph, a), dsgd(best, graph, b)
        cells.append(decide(paired_diff_ci(rb["iters"], ra["iters"], lv), 0.0, ">=", f"it(n={b}) - it(n={a})"))
    lo, hi = dsgd(best, graph, ns[0]), dsgd(best, graph, ns[-1])
    if not hi["reached"].any():
        cells.append(_exact_cell(True, hi["T"], "not reached within T", f"n={ns[-1]} never reaches"))
    else:
        cells.append(decide(mean_ci(hi["iters"] / lo["iters"], lv), factor, ">=", f"it(n={ns[-1]}) / it(n={ns[0]})"))
    means = {int(n): float(np.mean(dsgd(best, graph, n)["iters"])) for n in ns}
    return Outcome.decided(cells, measured={"mean_iterations": means}, expected=f"non-decreasing; x{factor} or not reached")


def tele_flat(tables, *, graphs=("ring",), factor=1.5, level=0.95):
    """Claim 4: best-k TELEPORTATION at the largest n needs <= factor x the iterations at the smallest n."""
    best = best_lr(tables["fig2"])
    cells, measured = [], {}
    for g in graphs:
        ns = _ns(best, "tele", g)
        if len(ns) < 2:
            return Outcome(False, None, None, f"TELEPORTATION {g} needs >= 2 values of n; has {ns}")
        lo, hi = best_k(best, g, ns[0]), best_k(best, g, ns[-1])
        ratio = hi["iters"] / lo["iters"]
        measured[g] = {"k_small_n": int(lo["k"]), "k_large_n": int(hi["k"]), "ratio": float(np.mean(ratio))}
        cells.append(decide(mean_ci(ratio, cell_level(level, len(graphs))), factor, "<=",
                            f"{g}: it(n={ns[-1]}, k={int(hi['k'])}) / it(n={ns[0]}, k={int(lo['k'])})"))
    return Outcome.decided(cells, measured=measured, expected=f"<= {factor}")


def tele_beats_dsgd(tables, *, graphs=("ring", "sym_exp"), small_n=16, slack=0.10, level=0.95):
    """Claim 5: best-k TELEPORTATION on slot graph G reaches the target no later than D-SGD on G
    (strictly earlier for n > small_n; within slack at n <= small_n); not reached counts as T."""
    best = best_lr(tables["fig2"])
    pairs = [(g, n) for g in graphs for n in _ns(best, "dsgd", g) if best_k(best, g, n) is not None]
    if not pairs:
        return Outcome(False, None, None, "no (graph, n) with both methods")
    lv = cell_level(level, len(pairs))
    cells, measured = [], {}
    for g, n in pairs:
        t, d = best_k(best, g, n), dsgd(best, g, n)
        measured[f"{g} n={n}"] = f"TELE(k={int(t['k'])}) {np.mean(t['iters']):.0f} vs D-SGD {np.mean(d['iters']):.0f}"
        if n <= small_n:
            cells.append(decide(paired_diff_ci(t["iters"], (1 + slack) * d["iters"], lv), 0.0, "<=",
                                f"{g} n={n}: it_TELE - {1 + slack:g} it_DSGD"))
        else:
            cells.append(decide(paired_diff_ci(t["iters"], d["iters"], lv), 0.0, "<", f"{g} n={n}: it_TELE - it_DSGD"))
    return Outcome.decided(cells, measured=measured, expected="TELE earlier (within slack at small n)")


def fig2_scaling(tables, *, dsgd_graph="ring", tele_graph="ring", flat_factor=1.5, level=0.95):
    """Gated Fig. 2 claim: D-SGD's iterations to target grow from the smallest to the largest n (strictly),
    TELEPORTATION's (best k) stay flat or fall (ratio <= flat_factor)."""
    best = best_lr(tables["fig2"])
    ns = _ns(best, "dsgd", dsgd_graph)
    ts = _ns(best, "tele", tele_graph)
    if len(ns) < 2 or len(ts) < 2:
        return Outcome(False, None, None, f"needs >= 2 values of n; D-SGD {ns}, TELE {ts}")
    lv = cell_level(level, 2)
    lo, hi = dsgd(best, dsgd_graph, ns[0]), dsgd(best, dsgd_graph, ns[-1])
    tlo, thi = best_k(best, tele_graph, ts[0]), best_k(best, tele_graph, ts[-1])
    cells = [decide(paired_diff_ci(hi["iters"], lo["iters"], lv), 0.0, ">", f"D-SGD it(n={ns[-1]}) - it(n={ns[0]})"),
             decide(mean_ci(thi["iters"] / tlo["iters"], lv), flat_factor, "<=", f"TELE it(n={ts[-1]}) / it(n={ts[0]})")]
    return Outcome.decided(cells, measured={"dsgd": [float(np.mean(lo["iters"])), float(np.mean(hi["iters"]))],
                                            "tele": [float(np.mean(tlo["iters"])), float(np.mean(thi["iters"]))]},
                           expected=f"D-SGD grows; TELE ratio <= {flat_factor}")


def k_saturates(tables, *, graph="ring", min_n=64, factor=4.0, level=0.95):
    """Claim 6: for n >= min_n the best k is below n (k < n no worse than k = n on the interval), and the
    best k at the largest n is <= factor x the best k at min_n."""
    best = best_lr(tables["fig2"])
    ns = [n for n in _ns(best, "tele", graph) if n >= min_n]
    if not ns:
        return Outcome(False, None, None, f"no n >= {min_n}")
    cells, ks = [], {}
    lv = cell_level(level, len(ns))
    for n in ns:
        below, full = best_k(best, graph, n, below_n=True), best[(best["method"] == "tele") & (best["graph"] == graph)
                                                              & (best["n"] == n) & (best["k"] == n)]
        overall = best_k(best, graph, n)
        ks[int(n)] = int(overall["k"])
        if below is None or full.empty:
            cells.append(_exact_cell(below is not None, 0.0, "k < n exists", f"n={n}"))
            continue
        cells.append(decide(paired_diff_ci(below["iters"], full.iloc[0]["iters"], lv), 0.0, "<=",
                            f"n={n}: it(k={int(below['k'])}) - it(k=n)"))
    ratio = ks[int(ns[-1])] / ks[int(ns[0])]
    cells.append(_exact_cell(ratio <= factor, ratio, f"<= {factor}", f"best k(n={ns[-1]}) / best k(n={ns[0]})"))
    return Outcome.decided(cells, measured={"best_k": ks}, expected=f"best k < n; ratio <= {factor}")


# --- claim 7: Algorithm 2 --------------------------------------------------------------------

def alg2_search(tables, *, schedule="parallel_waves", k_factor=2.0, iter_ratio=1.25, level=0.95):
    """Claim 7: the search's k is within k_factor of the grid-best k (or its iterations to target within
    iter_ratio of the grid best), at <= 2T iterations against T·|K| for the grid."""
    df = tables["alg2"]
    s = df[(df["kind"] == "search") & (df["schedule"] == schedule)]
    if s.empty:
        return Outcome(False, None, None, f"no search rows for schedule {schedule}")
    ns = sorted(s["n"].unique())
    cells, measured = [], {}
    lv = cell_level(level, len(ns))
    for n in ns:
        g = s[s["n"] == n].sort_values("seed")
        within = (g["chosen_k"] <= k_factor * g["grid_best_k"]) & (g["grid_best_k"] <= k_factor * g["chosen_k"])
        budget_ok = bool((g["search_iterations"] <= g["budget"]).all() and (g["search_iterations"] < g["grid_iterations"]).all())
        measured[int(n)] = {"chosen_k": [int(k) for k in g["chosen_k"]], "grid_best_k": int(g["grid_best_k"].iloc[0]),
                            "search_iterations": int(g["search_iterations"].max()),
                            "grid_iterations": int(g["grid_iterations"].iloc[0])}
        cells.append(_exact_cell(budget_ok, float(g["search_iterations"].max()), "<= 2T and < grid", f"n={n} budget"))
        if within.all():
            cells.append(_exact_cell(True, 1.0, f"k within x{k_factor}", f"n={n} k"))
        else:
            ratio = g["chosen_iterations_to_target"].to_numpy(float) / g["best_iterations_to_target"].to_numpy(float)
            cells.append(decide(mean_ci(ratio, lv), iter_ratio, "<=", f"n={n}: it(chosen k) / it(grid-best k)"))
    return Outcome.decided(cells, measured=measured, expected=f"k within x{k_factor} or it ratio <= {iter_ratio}; <= 2T")


# --- claims 8, 9: neural networks ------------------------------------------------------------

def _best_k(tele: pd.DataFrame) -> int:
    """The TELEPORTATION k with the highest mean final x̄ accuracy over seeds."""
    return int(tele.groupby("k")["test_accuracy_xbar"].mean().idxmax())


def _acc(fin, method, graph=None, k=None, alpha=None):
    sel = fin[(fin["method"] == method) & (fin["alpha"] == alpha)]
    if graph is not None:
        sel = sel[sel["graph"] == graph]
    if k is not None:
        sel = sel[sel["k"] == k]
    return sel.sort_values("seed")


def _variance_ratio(a, b, level) -> Estimate:
    """var(a) / var(b) with the F interval (normal samples)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return Estimate(float("nan"), -np.inf, np.inf, min(len(a), len(b)), level, "F")
    va, vb = np.var(a, ddof=1), np.var(b, ddof=1)
    if vb == 0:
        return Estimate(float("inf") if va > 0 else 1.0, 0.0, np.inf, len(a), level, "F")
    r = va / vb
    lo_q, hi_q = sps.f.ppf([(1 - level) / 2, (1 + level) / 2], len(a) - 1, len(b) - 1)
    return Estimate(float(r), float(r / hi_q), float(r / lo_q), min(len(a), len(b)), level, "F")


def nn_heterogeneous(tables, *, alpha=0.1, margin=0.01, baseline="ring", level=0.95):
    """Claim 8: at α, the best TELEPORTATION k has mean test accuracy >= D-SGD baseline - margin (paired over
    seeds) and a seed variance no larger than the baseline's (F interval)."""
    fin = final_rows(tables["tab2"])
    tele = fin[(fin["method"] == "tele") & (fin["alpha"] == alpha)]
    base = _acc(fin, "dsgd", baseline, alpha=alpha)
    if tele.empty or base.empty:
        return Outcome(False, None, None, f"missing TELE or D-SGD {baseline} runs at α = {alpha}")
    k = _best_k(tele)
    t = _acc(fin, "tele", k=k, alpha=alpha)
    common = sorted(set(t["seed"]) & set(base["seed"]))
    ta = t.set_index("seed").loc[common, "test_accuracy_xbar"].to_numpy(float)
    ba = base.set_index("seed").loc[common, "test_accuracy_xbar"].to_numpy(float)
    lv = cell_level(level, 2)
    cells = [decide(paired_diff_ci(ta, ba, lv), -margin, ">=", f"acc TELE(k={k}) - acc D-SGD {baseline}"),
             decide(_variance_ratio(ta, ba, lv), 1.0, "<=", "var TELE / var D-SGD")]
    return Outcome.decided(cells, measured={"k": k, "tele_mean": float(ta.mean()), "dsgd_mean": float(ba.mean()),
                                            "tele_std": float(np.std(ta, ddof=1)) if len(ta) > 1 else None,
                                            "dsgd_std": float(np.std(ba, ddof=1)) if len(ba) > 1 else None},
                           expected=f">= D-SGD - {margin}; variance <=")


def _gain(fin, k, graph, alpha) -> pd.Series:
    """Final x̄ accuracy of TELEPORTATION k minus D-SGD ``graph`` at α, per common seed."""
    t = _acc(fin, "tele", k=k, alpha=alpha).set_index("seed")["test_accuracy_xbar"]
    b = _acc(fin, "dsgd", graph, alpha=alpha).set_index("seed")["test_accuracy_xbar"]
    return (t - b).dropna().astype(float)


def nn_heterogeneous_paper(tables, *, alpha=0.1, homogeneous=10.0, baselines=("ring", "sym_exp"), margin=0.0,
                           level=0.95):
    """Claim 8 at paper scale (Table 2): at α the best TELEPORTATION k has mean test accuracy >= each D-SGD
    baseline - margin, and its gain over each baseline is larger at α than at ``homogeneous`` (best k there);
    paired over seeds, Bonferroni over the 2 x len(baselines) cells."""
    fin = final_rows(tables["tab2"])
    best = {}
    for a in (alpha, homogeneous):
        tele = fin[(fin["method"] == "tele") & (fin["alpha"] == a)]
        if tele.empty:
            return Outcome(False, None, None, f"missing TELE runs at α = {a}")
        best[a] = _best_k(tele)
    lv = cell_level(level, 2 * len(baselines))
    cells, measured = [], {"k": best[alpha], "k_homogeneous": best[homogeneous]}
    for g in baselines:
        het, hom = _gain(fin, best[alpha], g, alpha), _gain(fin, best[homogeneous], g, homogeneous)
        both = het.index.intersection(hom.index)
        if het.empty or both.empty:
            return Outcome(False, None, None, f"missing D-SGD {g} runs at α = {alpha:g} or {homogeneous:g}")
        cells.append(decide(mean_ci(het.to_numpy(), lv), -margin, ">=",
                            f"acc TELE(k={best[alpha]}) − D-SGD {g} at α={alpha:g}"))
        cells.append(decide(paired_diff_ci(het[both].to_numpy(), hom[both].to_numpy(), lv), 0.0, ">",
                            f"gain over D-SGD {g}: α={alpha:g} − α={homogeneous:g}"))
        measured[f"gain_{g}_alpha{alpha:g}"] = float(het.mean())
        measured[f"gain_{g}_alpha{homogeneous:g}"] = float(hom.mean())
    return Outcome.decided(cells, measured=measured,
                           expected=f">= each of {', '.join(baselines)} - {margin}; gain larger at α = {alpha:g}")


def time_to_fraction(run: pd.DataFrame, fraction: float) -> float:
    """Simulated time at which a run first reaches ``fraction`` of its final x̄ test accuracy."""
    ev = run.dropna(subset=["test_accuracy_xbar"]).sort_values("epoch")
    final = float(ev["test_accuracy_xbar"].iloc[-1])
    hit = ev[ev["test_accuracy_xbar"] >= fraction * final]
    return float(hit["sim_time"].iloc[0])


def fig4_order(tables, *, fraction=0.95, homogeneous=10.0, heterogeneous=0.1, baseline="ring", level=0.95):
    """Claim 9: D-SGD ring reaches fraction x its final accuracy earlier in simulated time than TELEPORTATION
    (best k) at α = homogeneous; TELEPORTATION earlier at α = heterogeneous."""
    df = tables["tab2"]
    fin = final_rows(df)
    cells, measured = [], {}
    lv = cell_level(level, 2)
    for alpha, side in ((homogeneous, ">"), (heterogeneous, "<")):
        tele = fin[(fin["method"] == "tele") & (fin["alpha"] == alpha)]
        if tele.empty:
            return Outcome(False, None, None, f"no TELE runs at α = {alpha}")
        k = _best_k(tele)
        times = {}
        for name, sel in (("tele", (df["method"] == "tele") & (df["k"] == k)),
                          ("dsgd", (df["method"] == "dsgd") & (df["graph"] == baseline))):
            runs = df[sel & (df["alpha"] == alpha)]
            times[name] = {s: time_to_fraction(r, fraction) for s, r in runs.groupby("seed")}
        seeds = sorted(set(times["tele"]) & set(times["dsgd"]))
        tt = np.array([times["tele"][s] for s in seeds])
        td = np.array([times["dsgd"][s] for s in seeds])
        measured[f"alpha={alpha:g}"] = {"k": k, "tele_time": float(tt.mean()), "dsgd_time": float(td.mean())}
        cells.append(decide(paired_diff_ci(tt, td, lv), 0.0, side, f"α={alpha:g}: t_TELE - t_DSGD"))
    return Outcome.decided(cells, measured=measured, expected="ring earlier at α=10, TELE earlier at α=0.1")


CHECKS = {
    "mixing_matrices": mixing_matrices,
    "k_equals_n": k_equals_n,
    "dsgd_degrades": dsgd_degrades,
    "tele_flat": tele_flat,
    "tele_beats_dsgd": tele_beats_dsgd,
    "fig2_scaling": fig2_scaling,
    "k_saturates": k_saturates,
    "alg2_search": alg2_search,
    "nn_heterogeneous": nn_heterogeneous,
    "nn_heterogeneous_paper": nn_heterogeneous_paper,
    "fig4_order": fig4_order,
    "sanity": sanity,
}
