"""C-T1 aggregate table (spec §5 tab1): RA, UA, TA, SVC-MIA (+ variants, loss MIA), RTE, Avg. Gap.

Mean ± std over unlearning seeds; the retrain row is over the R retrains (consensus + floor).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
            for k in ("steps", "teacher_epochs", "teacher_forget_accuracy"):
                if k in m:
                    row[k] = m[k].mean()
            rows.append(row)
    out = pd.DataFrame(rows)
    out.insert(1, "data", data_label(agg))
    return out
