"""Tables of the topology paper (spectral quantities, Tab. 1, mechanism, fixed-p loss, accuracy).

Each function maps aggregated records (DataFrames) to one table; no files are opened here. A
table keeps its raw numeric columns (the CSV, read by the checks) and carries a view for people
(``attrs["markdown"]``: the paper's row and column names, mean ± interval in one cell), which is
what its Markdown file shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprosuite.gossip.spectra import ANALYTIC_EXPONENTS, loglog_slope
from reprosuite.stats import LEVEL, mean_ci

FINAL_FRACTION = 0.2  # claim 7: mean over the last 20% of iterations


def _with_people(raw: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Raw columns for the CSV and the checks; the reader's view rides along in ``attrs["markdown"]``,
    which the pipeline renders into the table's ``.md``."""
    out = raw.reset_index(drop=True)
    out.attrs["markdown"] = people.reset_index(drop=True)
    return out


def _pm(value: float, half: float, digits: int = 4, scale: float = 1.0) -> str:
    """'mean ± half-width' with ``digits`` significant digits on the mean (the half-width to match)."""
    if not np.isfinite(value):
        return "–"
    v, h = value * scale, half * scale
    if not np.isfinite(h):
        return f"{v:.{digits}g} (1 seed)"
    return f"{v:.{digits}g} ± {h:.2g}"


def _ci_cell(samples, digits: int = 4, scale: float = 1.0) -> str:
    est = mean_ci(samples, LEVEL)
    return _pm(est.value, est.half_width, digits, scale)


TOPOLOGY_NAMES = {"ring": "ring", "path": "path (line)", "torus": "2-D torus", "grid": "2-D grid",
                  "hypercube": "hypercube", "star": "star", "complete": "complete", "sym_exp": "exponential (symmetric)"}


def _name(topology: str) -> str:
    if ":" in topology:
        family, member = topology.split(":", 1)
        return f"{family} family: {TOPOLOGY_NAMES.get(member, member)}"
    return TOPOLOGY_NAMES.get(topology, topology)


def tab_spectral(tables, cfg) -> pd.DataFrame:
    """p, (1-p)/p, T_new per (topology, n), and the T_new/T_gap ratio (deterministic)."""
    df = tables["fig1"].sort_values(["topology", "n"])
    out = df[["topology", "n", "p", "T_gap", "T_new"]].copy()
    out["T_new_over_T_gap"] = out["T_new"] / out["T_gap"].replace(0.0, np.nan)  # NaN for complete
    people = pd.DataFrame({"topology": out["topology"].map(_name), "n": out["n"], "p": out["p"],
                           "(1−p)/p": out["T_gap"], "T_new": out["T_new"],
                           "T_new / ((1−p)/p)": out["T_new_over_T_gap"]})
    return _with_people(out, people)


def tab1(tables, cfg) -> pd.DataFrame:
    """Transient-iteration exponents: analytic (paper's table, §3.4 of docs) and numeric log-log slope."""
    df = tables["transient"]
    rows = []
    for name, g in df.groupby("topology", sort=False):
        g = g.sort_values("n")
        prior, new = ANALYTIC_EXPONENTS.get(name, ("?", "?"))
        rows.append({"topology": name, "n_min": int(g["n"].min()), "n_max": int(g["n"].max()), "points": len(g),
                     "prop1_analytic": prior, "thm1_analytic": new,
                     "prop1_slope": loglog_slope(g["n"], g["transient_prop1"]),
                     "thm1_slope": loglog_slope(g["n"], g["transient_thm1"])})
    out = pd.DataFrame(rows)
    people = pd.DataFrame({"topology": out["topology"].map(_name),
                           "Prop. 1 (prior), order": out["prop1_analytic"],
                           "Prop. 1, fitted exponent": out["prop1_slope"].map(lambda v: f"{v:.2f}"),
                           "Theorem 1 (new), order": out["thm1_analytic"],
                           "Theorem 1, fitted exponent": out["thm1_slope"].map(lambda v: f"{v:.2f}"),
                           "n fitted": [f"{a}–{b} ({k} points)" for a, b, k in zip(out["n_min"], out["n_max"], out["points"])]})
    return _with_people(out, people)


def tab_mechanism(tables, cfg) -> pd.DataFrame:
    """Measured stationary consensus error vs the prediction, with the 95% t interval over the chains."""
    from scipy import stats

    cols = ["kind", "family", "topology", "n", "p", "T_gap", "T_new", "predicted", "measured", "measured_se", "rel_err"]
    df = tables["fig2a"]
    extra = [c for c in ("chains", "units") if c in df]
    out = df[cols + extra].sort_values(["kind", "n", "T_new"]).reset_index(drop=True)
    units = out["units"] if "units" in out else out.get("chains", pd.Series(2, index=out.index))
    half = stats.t.ppf(0.5 + LEVEL / 2, np.maximum(units - 1, 1)) * out["measured_se"]
    dev = np.where(out["predicted"] > 1e-9, 100 * (out["measured"] / out["predicted"] - 1), np.nan)
    dev_half = np.where(out["predicted"] > 1e-9, 100 * half / out["predicted"], np.nan)
    people = pd.DataFrame({
        "W": out["topology"].map(_name), "n": out["n"], "p": out["p"].map(lambda v: f"{v:.4g}"),
        "(1−p)/p": out["T_gap"].map(lambda v: f"{v:.4g}"),
        "predicted (T_new)": out["predicted"].map(lambda v: f"{v:.4g}"),
        "measured / (d η² σ²)": [_pm(m, h) for m, h in zip(out["measured"], half)],
        "deviation (%)": ["exact 0" if not np.isfinite(d) else f"{d:+.2f} ± {h:.2f}" for d, h in zip(dev, dev_half)],
        "chains": out["chains"] if "chains" in out else "–"})
    return _with_people(out, people)


def final_losses(df: pd.DataFrame) -> pd.DataFrame:
    """Per (model, family, member, seed): mean loss over the last 20% of iterations."""
    last = df["iteration"] >= (1.0 - FINAL_FRACTION) * df.groupby(["model", "family"])["iteration"].transform("max")
    keys = ["model", "family", "member", "seed", "T_new", "p"]
    return df[last].groupby(keys, as_index=False)[["loss_node_mean", "loss_xbar"]].mean()


def tab_fixed_p(tables, cfg) -> pd.DataFrame:
    """Final training loss per fixed-p family member: mean and 95% t interval over seeds, and the
    paired difference to the family's smallest-T_new member (the quantity claim 7 tests)."""
    per_seed = final_losses(tables["fig2"])
    agg = per_seed.groupby(["model", "family", "member", "T_new", "p"], as_index=False).agg(
        loss_node_mean=("loss_node_mean", "mean"), loss_node_mean_se=("loss_node_mean", "sem"),
        loss_xbar=("loss_xbar", "mean"), loss_xbar_se=("loss_xbar", "sem"), seeds=("seed", "count"))
    agg = agg.sort_values(["model", "family", "T_new"]).reset_index(drop=True)
    cells = {"node": [], "xbar": [], "diff": []}
    for r in agg.itertuples():
        g = per_seed[(per_seed["model"] == r.model) & (per_seed["family"] == r.family)]
        base = g.loc[g["T_new"] == g["T_new"].min()].set_index("seed")["loss_node_mean"]
        mine = g[g["member"] == r.member].set_index("seed")["loss_node_mean"]
        seeds = base.index.intersection(mine.index)
        cells["node"].append(_ci_cell(mine))
        cells["xbar"].append(_ci_cell(g[g["member"] == r.member]["loss_xbar"]))
        cells["diff"].append("0 (reference)" if r.T_new == g["T_new"].min()
                             else _ci_cell(mine.loc[seeds] - base.loc[seeds], digits=3))
    people = pd.DataFrame({"model": agg["model"], "family (fixed p)": agg["family"],
                           "member": agg["member"].map(_name), "p": agg["p"].map(lambda v: f"{v:.4f}"),
                           "T_new": agg["T_new"].map(lambda v: f"{v:.4g}"),
                           "loss, node average": cells["node"], "loss at x̄": cells["xbar"],
                           "Δ node-average loss vs smallest T_new (paired)": cells["diff"], "seeds": agg["seeds"]})
    return _with_people(agg, people)


def tab_accuracy(tables, cfg) -> pd.DataFrame:
    """Final-epoch accuracies per (α, topology): mean and std over seeds (raw); for people, the
    x̄ and node-mean test accuracy in % with the 95% t interval over seeds, one column per α."""
    df = tables["fig3"]
    final = df[df["epoch"] == df.groupby(["alpha", "topology", "seed"])["epoch"].transform("max")]
    metrics = [c for c in ("test_accuracy_xbar", "test_accuracy_node_mean", "test_accuracy_node_min") if c in final]
    agg = final.groupby(["alpha", "topology", "T_new", "T_gap", "p"], as_index=False)[metrics].agg(["mean", "std"])
    agg.columns = ["_".join(c).rstrip("_") if isinstance(c, tuple) else c for c in agg.columns]
    agg["seeds"] = final.groupby(["alpha", "topology"])["seed"].nunique().values
    agg = agg.sort_values(["alpha", "T_new"], ascending=[False, True]).reset_index(drop=True)
    topo = final.groupby("topology")[["T_new", "T_gap"]].first().sort_values("T_new")
    people = pd.DataFrame({"topology": topo.index.map(_name), "T_new": topo["T_new"].map(lambda v: f"{v:.3g}"),
                           "(1−p)/p": topo["T_gap"].map(lambda v: f"{v:.3g}")})
    for alpha in sorted(final["alpha"].unique(), reverse=True):
        for metric, label in (("test_accuracy_xbar", "x̄"), ("test_accuracy_node_mean", "node mean")):
            if metric not in final:
                continue
            col = []
            for t in topo.index:
                vals = final[(final["alpha"] == alpha) & (final["topology"] == t)][metric]
                col.append(_ci_cell(vals, digits=3, scale=100.0) if len(vals) else "–")
            people[f"α = {alpha:g}: {label} accuracy (%)"] = col
    people["seeds"] = int(final["seed"].nunique())
    return _with_people(agg, people)
