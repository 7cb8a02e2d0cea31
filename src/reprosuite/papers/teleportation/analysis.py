"""Selections shared by tables, figures and checks: best step size per method, best k per n.

All selections are by the mean over seeds of the iterations to target (a run that never reaches
it counts as T), ties broken by the mean final loss, then by the smaller step size / k. The
per-seed values at the selected configuration are what intervals are computed from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["method", "graph", "n", "k"]


def best_lr(fig2: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, graph, n, k): the selected lr with its per-seed values (sorted by seed)."""
    rows = []
    for key, g in fig2.groupby(KEYS):
        stats = g.assign(final=g["final_loss_nodes"].astype(float).fillna(np.inf)).groupby("lr").agg(
            it=("iterations_to_target", "mean"), fin=("final", "mean"))
        stats = stats.reset_index().sort_values(["it", "fin", "lr"])
        lr = float(stats.iloc[0]["lr"])
        sel = g[g["lr"] == lr].sort_values("seed")
        rows.append({**dict(zip(KEYS, key)), "lr": lr, "seeds": tuple(sel["seed"]),
                     "iters": np.asarray(sel["iterations_to_target"], float),
                     "reached": np.asarray(sel["reached"], bool), "T": int(sel["T"].iloc[0])})
    return pd.DataFrame(rows)


def best_k(best: pd.DataFrame, graph: str, n: int, *, below_n: bool = False) -> pd.Series | None:
    """TELEPORTATION's best k (by mean iterations) for a slot graph at n; ``below_n`` restricts to k < n."""
    sel = best[(best["method"] == "tele") & (best["graph"] == graph) & (best["n"] == n)]
    if below_n:
        sel = sel[sel["k"] < n]
    if sel.empty:
        return None
    order = sel.assign(mean=sel["iters"].map(np.mean)).sort_values(["mean", "k"])
    return order.iloc[0]


def dsgd(best: pd.DataFrame, graph: str, n: int) -> pd.Series | None:
    sel = best[(best["method"] == "dsgd") & (best["graph"] == graph) & (best["n"] == n)]
    return None if sel.empty else sel.iloc[0]
