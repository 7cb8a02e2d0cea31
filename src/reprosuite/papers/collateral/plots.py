"""Figures fig1-fig5 of the collateral paper (docs/papers/collateral.md); each reads tables only."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import pearsonr

from .tables import NAMES, data_label

METHOD_PANELS = ("ga", "rl_nr", "rl", "ft", "ga_ft", "salun", "ltd")
METRIC_LABELS = {"mismatch_a": "(a) consensus mismatch rate", "err_gap_b": "(b) error-rate gap to retrain",
                 "conf_drop_c": "(c) true-class confidence drop", "argmax_disagree_d": "(d) argmax disagreement"}


def fig1(tables, cfg):
    t = tables["fig1"]
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    ga = t[t["kind"] == "ga_linear"]
    axes[0].plot(ga["bin_centre"], ga["sq_gap_norm"], "o-", label="GA (linear regression)")
    axes[0].set(title="GA + linear regression", xlabel="ripple coordinate ρ = ⟨x_q, x_f⟩/‖x_f‖²",
                ylabel="squared logit gap / max (unitless)")
    rl = t[t["kind"] == "rl_logistic"]
    for level, g in rl.groupby("level", sort=False):
        style = "k-o" if level == "all" else "--"
        axes[1].plot(g["bin_centre"], g["sq_gap_norm"], style, ms=3, label=f"confidence {level}")
        axes[2].plot(g["bin_centre"], g["flip_rate"], style, ms=3, label=f"confidence {level}")
        axes[3].plot(g["bin_centre"], g["logit_shift_var"], style, ms=3, label=f"confidence {level}")
    axes[1].set(title="RL + logistic regression", xlabel="ripple coordinate ρ", ylabel="squared logit gap / max")
    axes[2].set(title="RL: prediction flips vs retrain", xlabel="ripple coordinate ρ", ylabel="flip rate (fraction)")
    axes[3].set(title="RL: logit-shift variance over label draws", xlabel="ripple coordinate ρ",
                ylabel="variance of logit shift (logit²)")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"C-F1 synthetic ripple ({int(ga['n_runs'].iloc[0])} GA runs, {int(rl['n_runs'].max())} RL runs)")
    fig.tight_layout()
    return fig


def fig2(tables, cfg):
    t = tables["fig2"]
    cls = t[t["row"] == "class"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, method in zip(axes, ("rl", "ga")):
        g = cls[cls["method"] == method]
        c = int(g["deleted_class"].iloc[0])
        keep = g[g["class"] != c]
        rs = [pearsonr(h["similarity"], h["acc_drop"]).statistic for _, h in keep.groupby("seed")]
        for seed, h in g.groupby("seed"):
            ax.scatter(h["similarity"], 100 * h["acc_drop"], s=18, label=f"repeat {seed}")
            for _, r in h.iterrows():
                ax.annotate(str(int(r["class"])), (r["similarity"], 100 * r["acc_drop"]), fontsize=6)
        ax.set(title=f"{method.upper()}: Pearson r (w/o class {c}) = {np.mean(rs):.2f} (mean of {len(rs)})",
               xlabel=f"cosine similarity of class mean to class {c} (original embedding)",
               ylabel="accuracy drop, retrain − unlearned (pp)")
        ax.axhline(0, color="grey", lw=0.8)
        ax.legend(fontsize=7)
    sim = t[(t["row"] == "similarity") & (t["seed"] == t["seed"].min())]
    k = int(sim["class"].max()) + 1
    mat = np.zeros((k, k))
    mat[sim["class"].astype(int), sim["class_j"].astype(int)] = sim["similarity"]
    im = axes[2].imshow(mat, cmap="viridis")
    axes[2].set(title="class-mean cosine similarity (repeat 0)", xlabel="class", ylabel="class",
                xticks=range(k), yticks=range(k))
    fig.colorbar(im, ax=axes[2], label="cosine similarity")
    pretty = {"mnist5k": "MNIST-5k (real MNIST digits, 4,000 train / 1,000 test)", "mnist": "MNIST"}
    name = str(t["dataset"].iloc[0])
    fig.suptitle(f"C-F2 full-class deletion of class {int(cls['deleted_class'].iloc[0])} on {pretty.get(name, name)}")
    fig.tight_layout()
    return fig


def _curve(b: pd.DataFrame, metric: str):
    g = b.groupby("bin").agg(x=("bin_centre", "first"), m=(metric, "mean"), s=(metric, "std"))
    return g["x"].to_numpy(), g["m"].to_numpy(), np.nan_to_num(g["s"].to_numpy())


def _bins_and_aggregates(tables) -> pd.DataFrame:
    """unlearn + reference rows the figures draw (not the ~10^5 per-point rows)."""
    return pd.concat([f[f["row"].isin(["bin", "aggregate"])] for f in (tables["unlearn"], tables["reference"])],
                     ignore_index=True)


def fig3(tables, cfg):
    main = cfg.main
    t = _bins_and_aggregates(tables)
    cell = sorted(t["cell"].dropna().unique())[0]
    b = t[(t["row"] == "bin") & (t["cell"] == cell) & (t["binning"] == "equal_width")]
    agg = t[t["row"] == "aggregate"]
    methods = [m for m in METHOD_PANELS if m in set(b["method"])]
    metrics = ("mismatch_a", "err_gap_b")
    fig, axes = plt.subplots(len(metrics), len(methods), figsize=(3.3 * len(methods), 3.2 * len(metrics)),
                             squeeze=False, sharey="row")
    for i, metric in enumerate(metrics):
        for j, method in enumerate(methods):
            ax = axes[i, j]
            for split, style in (("test", "-"), ("retain", "--")):
                sel = b[(b["split"] == split) & (b["consensus_count"] >= main.min_bin_count)]
                for ref, color in (("retrain_floor", "grey"), ("original", "tab:green")):
                    r = sel[sel["method"] == ref]
                    if len(r) and split == "test":
                        x, m, _ = _curve(r, metric)
                        ax.plot(x, m, ":", color=color, label=NAMES[ref] + " (test)")
                x, m, s = _curve(sel[sel["method"] == method], metric)
                color = "tab:blue" if method == "ltd" else "tab:red"
                ax.plot(x, m, style, marker="o", ms=3, color=color, label=f"{split}")
                ax.fill_between(x, m - s, m + s, color=color, alpha=0.15)
            ua = agg[agg["method"] == method]["ua"].mean()
            ax.set_title(f"{NAMES[method]} (UA {ua:.2f})", fontsize=9)
            ax.set_xlabel("cosine similarity to forget centre s(x)")
            if j == 0:
                ax.set_ylabel(METRIC_LABELS[metric] + " (fraction)")
            ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(f"C-F3 prediction mismatch with retrain vs similarity to D_f — {data_label(t)}, {cell}; "
                 f"bins with ≥ {main.min_bin_count} consensus points; mean ± std over seeds")
    fig.tight_layout()
    return fig


def fig4(tables, cfg):
    t = _bins_and_aggregates(tables)
    agg = t[t["row"] == "aggregate"]
    ret = agg[agg["method"].isin(["retrain", "retrain_floor"])]
    metrics = (("ra_class", "RA, retained class c"), ("ua", "UA on D_f"), ("ta_class", "TA, test class c"))
    methods = [m for m in METHOD_PANELS if m in set(agg["method"])]
    fig, ax = plt.subplots(figsize=(11, 4.2))
    width = 0.8 / len(methods)
    for i, (key, _) in enumerate(metrics):
        band = 100 * ret[key].std(ddof=0)
        ax.add_patch(plt.Rectangle((i - 0.45, -band), 0.9, 2 * band, color="grey", alpha=0.2,
                                   label="retrain ± std" if i == 0 else None))
        for j, method in enumerate(methods):
            vals = 100 * (agg[agg["method"] == method][key] - ret[key].mean())
            ax.bar(i - 0.4 + (j + 0.5) * width, vals.mean(), width, yerr=vals.std(ddof=0),
                   color=plt.cm.tab10(j), label=NAMES[method] if i == 0 else None)
    ax.set_xticks(range(len(metrics)), [m[1] for m in metrics])
    ax.axhline(0, color="k", lw=0.8)
    ax.set(ylabel="accuracy difference from retrain (pp)",
           title=f"C-F4 affected-class metrics relative to the retrain — {data_label(agg)}")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def fig5(tables, cfg):
    a, un, ref = tables["ablation"], tables["unlearn"], tables["reference"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    s = a[a["support_mode"] == "closest"]
    s = s[s["teacher_threshold"] == s["teacher_threshold"].max()].sort_values("n_support")
    ax = axes[0]
    ax.plot(s["n_support"], s["kl_retrain_teacher"], "o-", label="KL(retrain ‖ teacher)")
    ax.axhline(s["kl_retrain_uniform"].iloc[0], ls="--", color="tab:red", label="KL(retrain ‖ uniform) (RL)")
    ax.axhline(s["kl_retrain_all_c"].iloc[0], ls=":", color="k", label="KL(retrain ‖ all class c)")
    ax.set(xscale="log", xlabel="support size (retained examples, log scale)",
           ylabel="KL of argmax histograms on D_f (nats)", title="Support-size ablation (closest)")
    ax.set_xticks(s["n_support"].tolist(), [str(int(n)) for n in s["n_support"]])
    ax.minorticks_off()
    ax.legend(fontsize=7)
    ep = un[un["row"] == "epoch"]
    retrain = ref[(ref["row"] == "aggregate") & ref["method"].isin(["retrain", "retrain_floor"])]
    for key, ax, label in (("ua", axes[1], "UA on D_f (fraction)"), ("ta", axes[2], "test accuracy (fraction)")):
        for method, g in ep.groupby("method"):
            m = g.groupby("epoch")[key].mean()
            ax.plot(m.index, m.to_numpy(), "o-", ms=4, label=NAMES.get(method, method))
        ax.axhline(retrain[key].mean(), color="grey", ls="--", label="retrain mean")
        ax.set(xlabel="unlearning epoch (GA+FT: GA stage, then FT)", ylabel=label,
               title=f"Per-epoch dynamics: {key.upper()}")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"C-F5 LTD ablations — {data_label(un)}")
    fig.tight_layout()
    return fig
