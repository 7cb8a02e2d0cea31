"""Tables of the topology paper (spectral quantities, Tab. 1, mechanism, fixed-p loss, accuracy).

Each function maps aggregated records (DataFrames) to one table; no files are opened here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprosuite.gossip.spectra import ANALYTIC_EXPONENTS, loglog_slope

FINAL_FRACTION = 0.2  # claim 7: mean over the last 20% of iterations


def tab_spectral(tables, cfg) -> pd.DataFrame:
    """p, (1-p)/p, T_new per (topology, n), and the T_new/T_gap ratio."""
    df = tables["fig1"].sort_values(["topology", "n"])
    out = df[["topology", "n", "p", "T_gap", "T_new"]].copy()
    out["T_new_over_T_gap"] = out["T_new"] / out["T_gap"].replace(0.0, np.nan)  # NaN for complete
    return out.reset_index(drop=True)


def tab1(tables, cfg) -> pd.DataFrame:
    """Transient-iteration exponents: analytic (spec §3.4) and numeric log-log slope."""
    df = tables["transient"]
    rows = []
    for name, g in df.groupby("topology", sort=False):
        g = g.sort_values("n")
        prior, new = ANALYTIC_EXPONENTS.get(name, ("?", "?"))
        rows.append({"topology": name, "n_min": int(g["n"].min()), "n_max": int(g["n"].max()), "points": len(g),
                     "prop1_analytic": prior, "thm1_analytic": new,
                     "prop1_slope": loglog_slope(g["n"], g["transient_prop1"]),
                     "thm1_slope": loglog_slope(g["n"], g["transient_thm1"])})
    return pd.DataFrame(rows)


def tab_mechanism(tables, cfg) -> pd.DataFrame:
    cols = ["kind", "family", "topology", "n", "p", "T_gap", "T_new", "predicted", "measured", "measured_se", "rel_err"]
    return tables["fig2a"][cols].sort_values(["kind", "n", "T_new"]).reset_index(drop=True)


def final_losses(df: pd.DataFrame) -> pd.DataFrame:
    """Per (model, family, member, seed): mean loss over the last 20% of iterations."""
    last = df["iteration"] >= (1.0 - FINAL_FRACTION) * df.groupby(["model", "family"])["iteration"].transform("max")
    keys = ["model", "family", "member", "seed", "T_new", "p"]
    return df[last].groupby(keys, as_index=False)[["loss_node_mean", "loss_xbar"]].mean()


def tab_fixed_p(tables, cfg) -> pd.DataFrame:
    """Mean ± standard error over seeds of the final node-averaged and x̄ training loss."""
    per_seed = final_losses(tables["fig2"])
    agg = per_seed.groupby(["model", "family", "member", "T_new", "p"], as_index=False).agg(
        loss_node_mean=("loss_node_mean", "mean"), loss_node_mean_se=("loss_node_mean", "sem"),
        loss_xbar=("loss_xbar", "mean"), loss_xbar_se=("loss_xbar", "sem"), seeds=("seed", "count"))
    return agg.sort_values(["model", "family", "T_new"]).reset_index(drop=True)


def tab_accuracy(tables, cfg) -> pd.DataFrame:
    """Final-epoch accuracies per (α, topology): mean and std over seeds."""
    df = tables["fig3"]
    final = df[df["epoch"] == df.groupby(["alpha", "topology", "seed"])["epoch"].transform("max")]
    metrics = [c for c in ("test_accuracy_xbar", "test_accuracy_node_mean", "test_accuracy_node_min") if c in final]
    agg = final.groupby(["alpha", "topology", "T_new", "T_gap", "p"], as_index=False)[metrics].agg(["mean", "std"])
    agg.columns = ["_".join(c).rstrip("_") if isinstance(c, tuple) else c for c in agg.columns]
    agg["seeds"] = final.groupby(["alpha", "topology"])["seed"].nunique().values
    return agg.sort_values(["alpha", "T_new"], ascending=[False, True]).reset_index(drop=True)
