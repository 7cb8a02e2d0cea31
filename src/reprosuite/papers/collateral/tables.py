"""C-T1 aggregate table (docs/papers/collateral.md, "Experiments"): RA, UA, TA, SVC-MIA, RTE, Avg. Gap.

The CSV keeps every raw column (mean, std and 95 % t half-width over unlearning seeds; the
retrain row is over the R retrains, consensus + floor). The Markdown view (``attrs["markdown"]``)
reads like the paper's table: method names as the paper shows them, accuracies and MIA in
percent, mean ± 95 % t half-width in one cell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from reprosuite.unlearning.metrics import avg_gap

ORDER = ("rl_nr", "rl", "ft", "ga", "ga_ft", "salun", "ltd", "original", "retrain_floor", "retrain")
NAMES = {"ga": "GA", "rl_nr": "RL−D_r", "rl": "RL+D_r", "ft": "FT", "ga_ft": "GA+FT", "salun": "SalUn",
         "ltd": "LTD (Distill Labels, ours)", "original": "Original", "retrain_floor": "Held-out retrain (floor)",
         "retrain": "Retrain (all R)"}
METRICS = ("ua", "ra", "ta", "mia_svc", "mia_loss_accuracy", "rte_s", "ra_class", "ta_class")


def data_label(frame: pd.DataFrame) -> str:
    name = str(frame["dataset"].iloc[0])
    stand = frame.get("stand_in_for")
    if stand is not None and stand.notna().any():
        pretty = {"cifar100": "CIFAR-100", "fashion_mnist": "Fashion-MNIST"}
        return f"{pretty.get(name, name)} stand-in for {pretty.get(stand.iloc[0], stand.iloc[0])}"
    return name


def tab1(tables, cfg) -> pd.DataFrame:
    un, ref = tables["unlearn"], tables["reference"]
    agg = pd.concat([un[un["row"] == "aggregate"], ref[ref["row"] == "aggregate"]], ignore_index=True)
    rows = []
    for cell, g in agg.groupby("cell"):
        retrain = g[g["method"].isin(["retrain", "retrain_floor"])]
        ref_mean = retrain[list(METRICS)].mean()
        rows_cell = g.copy()
        rows_cell["avg_gap"] = [avg_gap(r, ref_mean) for _, r in rows_cell.iterrows()]
        pooled = pd.concat([rows_cell[rows_cell["method"] != "retrain"],
                            retrain.assign(method="retrain", avg_gap=np.nan)], ignore_index=True)
        for method in ORDER:
            m = pooled[pooled["method"] == method]
            if m.empty:
                continue
            row = {"cell": cell, "method": NAMES[method], "key": method, "n": len(m)}
            for k in (*METRICS, "avg_gap"):
                row[f"{k}_mean"], row[f"{k}_std"] = m[k].mean(), m[k].std(ddof=0)
                row[f"{k}_ci95"] = _half_width(m[k])
            for k in ("steps", "teacher_epochs", "teacher_forget_accuracy"):
                if k in m:
                    row[k] = m[k].mean()
            rows.append(row)
    out = pd.DataFrame(rows)
    out.insert(1, "data", data_label(agg))
    out.attrs["markdown"] = _reader_view(out)
    return out


# the paper's display names (bar order of its plots: RL, FT, GA, ..., Distill Labels (Ours), Retrain)
PAPER_NAMES = {"rl": "RL", "rl_nr": "RL (no D_r)", "ft": "FT", "ga": "GA", "ga_ft": "GA + FT", "salun": "SalUn",
               "ltd": "Distill Labels (LTD)", "original": "Original (no unlearning)",
               "retrain_floor": "Retrain, held-out seed", "retrain": "Retrain"}
PAPER_ORDER = ("rl", "rl_nr", "ft", "ga", "ga_ft", "salun", "ltd", "retrain", "retrain_floor", "original")
COLUMNS = (("ra", "RA (%)", 100.0, 1), ("ua", "UA (%)", 100.0, 1), ("ta", "TA (%)", 100.0, 1),
           ("mia_svc", "MIA (%)", 1.0, 1), ("rte_s", "RTE (s)", 1.0, 1), ("avg_gap", "Avg. Gap", 1.0, 2))


def _half_width(x: pd.Series) -> float:
    """Half-width of the 95 % Student-t interval of the mean (NaN with fewer than 2 values)."""
    x = x.dropna().to_numpy(dtype=float)
    if len(x) < 2 or x.std() == 0:
        return 0.0 if len(x) >= 2 else float("nan")
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    return float(hi - lo) / 2


def _cell(mean: float, hw: float, scale: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "–"
    if not np.isfinite(hw) or hw == 0:
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * hw:.{digits}f}"


def _reader_view(out: pd.DataFrame) -> pd.DataFrame:
    """One row per method in the paper's order; mean ± 95 % half-width (n = seeds, or R retrains)."""
    rows = []
    cells = out["cell"].unique()
    for cell in cells:
        g = out[out["cell"] == cell].set_index("key")
        for key in PAPER_ORDER:
            if key not in g.index:
                continue
            r = g.loc[key]
            row = {"Setting": cell} if len(cells) > 1 else {}
            row["Method"] = PAPER_NAMES[key]
            for k, label, scale, digits in COLUMNS:
                row[label] = "–" if key in ("original", "retrain_floor", "retrain") and k == "rte_s" else \
                    _cell(r[f"{k}_mean"], r[f"{k}_ci95"], scale, digits)
            row["n"] = int(r["n"])
            rows.append(row)
    return pd.DataFrame(rows)
