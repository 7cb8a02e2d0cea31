"""Tables of the teleportation paper (no files opened here).

Raw numeric columns for the CSV and the checks; the Markdown view shows mean ± 95% interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprosuite.stats import mean_ci

from .analysis import best_k, best_lr


def _pm(samples, scale: float = 1.0, digits: int = 4) -> str:
    est = mean_ci(np.asarray(samples, float) * scale)
    if not np.isfinite(est.half_width):
        return f"{est.value:.{digits}g} (1 seed)"
    return f"{est.value:.{digits}g} ± {est.half_width:.2g}"


def tab_mixing(tables, cfg):
    df = tables["mixing"]
    cols = [c for c in ("kind", "graph", "k", "period", "p", "p_product", "p_single_round", "lambda2",
                        "symmetry_err", "row_sum_err", "col_sum_err", "consensus_err", "case", "rounds",
                        "max_abs_diff") if c in df.columns]
    return df[cols].reset_index(drop=True)


def tab_fig2(tables, cfg):
    best = best_lr(tables["fig2"])
    rows = []
    for _, r in best.iterrows():
        est = mean_ci(r["iters"])
        bk = best_k(best, r["graph"], r["n"]) if r["method"] == "tele" else None
        rows.append({"method": r["method"], "graph": r["graph"], "n": r["n"], "k": r["k"], "lr": r["lr"],
                     "iterations_mean": est.value, "ci_lo": est.lo, "ci_hi": est.hi, "n_seeds": len(r["iters"]),
                     "reached_fraction": float(np.mean(r["reached"])), "T": r["T"],
                     "best_k": bool(bk is not None and bk["k"] == r["k"]),
                     "iterations": _pm(r["iters"], digits=4)})
    return pd.DataFrame(rows).sort_values(["n", "method", "graph", "k"]).reset_index(drop=True)


def tab_alg2(tables, cfg):
    df = tables["alg2"]
    search = df[df["kind"] == "search"]
    rows = []
    for (n, schedule), g in search.groupby(["n", "schedule"]):
        rows.append({"n": n, "schedule": schedule, "grid_best_k": int(g["grid_best_k"].iloc[0]),
                     "chosen_k_per_seed": " ".join(str(int(k)) for k in g.sort_values("seed")["chosen_k"]),
                     "chosen_k_median": float(np.median(g["chosen_k"])),
                     "search_iterations": int(g["search_iterations"].max()), "budget": int(g["budget"].iloc[0]),
                     "search_node_steps": int(g["search_node_steps"].max()),
                     "grid_iterations": int(g["grid_iterations"].iloc[0]),
                     "grid_node_steps": int(g["grid_node_steps"].iloc[0]),
                     "chosen_iters_to_target": _pm(g["chosen_iterations_to_target"]),
                     "grid_best_iters_to_target": _pm(g["best_iterations_to_target"])})
    return pd.DataFrame(rows)


def final_rows(tab2: pd.DataFrame) -> pd.DataFrame:
    """The last evaluated epoch of every run."""
    ev = tab2.dropna(subset=["test_accuracy_xbar"]).reset_index(drop=True)  # labels unique for idxmax
    idx = ev.groupby(["method", "graph", "k", "alpha", "seed"])["epoch"].idxmax()
    return ev.loc[idx]


def tab2_acc(tables, cfg):
    fin = final_rows(tables["tab2"])
    rows = []
    for (alpha, method, graph, k), g in fin.groupby(["alpha", "method", "graph", "k"]):
        acc = np.asarray(g.sort_values("seed")["test_accuracy_xbar"], float)
        est = mean_ci(acc)
        rows.append({"alpha": alpha, "method": method, "graph": graph, "k": k, "accuracy_mean": est.value,
                     "ci_lo": est.lo, "ci_hi": est.hi, "std": float(np.std(acc, ddof=1)) if len(acc) > 1 else float("nan"),
                     "n_seeds": len(acc), "epochs": int(g["epoch"].max()), "rounds": int(g["rounds"].max()),
                     "samples_processed": int(g["samples_processed"].max()), "sim_time": float(g["sim_time"].max()),
                     "accuracy_pct": _pm(acc, scale=100.0)})
    return pd.DataFrame(rows).sort_values(["alpha", "method", "k"], ascending=[False, True, True]).reset_index(drop=True)
