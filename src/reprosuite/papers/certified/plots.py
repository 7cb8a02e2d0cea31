"""Figures of the certified paper: fig_acct (accounting), fig1 (accuracy vs iteration), fig2
(block-type ablation). Figures read tables only."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

COLOURS = {1: "tab:red", 2: "tab:orange", 3: "tab:olive", 4: "tab:green", 10: "tab:blue"}


def fig_acct(tables, cfg):
    t = tables["accounting"]
    t = t[(t["kind"] == "table") & (t["constants"] == "reference")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for policy, ls in (("shared", "-"), ("scaled", "--")):
        for k, g in t[t["block_constants"] == policy].groupby("k"):
            g = g.sort_values("epsilon")
            axes[0].plot(g["epsilon"], g["sigma"], ls, marker="o", color=COLOURS.get(k, "k"),
                         label=f"k={k} {policy}")
    axes[0].set(xlabel="target ε (δ = 1e-5)", ylabel="σ per injection", yscale="log",
                title="σ per injection (scaled: every k on the k=1 line)")
    axes[0].legend(fontsize=7, ncol=2)
    g = t[(t["epsilon"] == t["epsilon"].min()) & (t["block_constants"] == "shared")].sort_values("k")
    axes[1].bar([str(k) for k in g["k"]], g["noisy_steps_total"], color=[COLOURS.get(k, "k") for k in g["k"]])
    axes[1].set(xlabel="number of blocks k", ylabel="noisy steps (all blocks)",
                title=f"noisy steps: k × T, T = {int(g['steps_block'].iloc[0])} per block (any ε, policy)")
    g = t[(t["k"] == 1) & (t["block_constants"] == "shared")].sort_values("epsilon")
    axes[2].plot(g["epsilon"], g["noise_norm_11m"], "o-", color="k", label="‖noise‖ per injection, 11.2 M params")
    axes[2].set(xlabel="target ε", ylabel="σ·sqrt(11.2 M)", yscale="log",
                title="noise norm per injection on a ResNet-18-sized model")
    axes[2].legend(fontsize=8)
    c = t.iloc[0]
    fig.suptitle(f"Accounting at η={c.eta:g}, λ={c.lam:g}, C₀={c.c0:g}, C₁={c.c1:g} (paper's reference constants)")
    fig.tight_layout()
    return fig


def _grid_mean(curves: pd.DataFrame, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ys = []
    for _, c in curves.groupby("seed"):
        c = c.sort_values("step")
        ys.append(np.interp(grid, np.r_[0, c["step"]], np.r_[c["test_accuracy"].iloc[0], c["test_accuracy"]]))
    ys = np.array(ys)
    se = ys.std(0, ddof=1) / np.sqrt(len(ys)) if len(ys) > 1 else np.zeros(ys.shape[1])
    return ys.mean(0), se


def _row_title(g: pd.DataFrame) -> str:
    r = g.iloc[0]
    stand = r.get("stand_in_for")
    data = f"{r['dataset']} stand-in for {stand}" if isinstance(stand, str) and stand else r["dataset"]
    return f"{r['row_label']} ({data})"


def fig1(tables, cfg):
    t, models = tables["nft"], tables["models"]
    cur = t[(t["row"] == "curve") & t["variant"].isin(["shared", "scaled"])]
    ref = t[t["row"] == "reference"]
    panels = sorted({(r, v) for r, v in cur[["row_key", "variant"]].itertuples(index=False)},
                    key=lambda rv: (list(cfg.rows).index(rv[0]) if rv[0] in cfg.rows else 9, rv[1]))
    n_cols = max(len(getattr(cfg, r).epsilons) for r, _ in panels) if panels else 1
    fig, axes = plt.subplots(max(len(panels), 1), n_cols, figsize=(4.6 * n_cols, 3.3 * max(len(panels), 1)),
                             squeeze=False)
    pre = models[(models["row"] == "epoch") & (models["role"] == "original") & (models["pair"] == 0)]
    for i, (row, variant) in enumerate(panels):
        g_rv = cur[(cur["row_key"] == row) & (cur["variant"] == variant)]
        for j, eps in enumerate(sorted(g_rv["epsilon"].unique(), reverse=True)):
            ax = axes[i, j]
            g = g_rv[g_rv["epsilon"] == eps]
            max_t = g["step"].max()
            p = pre[pre["row_key"] == row]
            p = p[p["step"] >= -300]
            if len(p):
                ax.plot(np.r_[p["step"], 0], np.r_[p["test_accuracy"], p["test_accuracy"].iloc[-1]], color="grey", lw=1.2)
            ax.axvspan(-300, 0, color="grey", alpha=0.12, label="training before the request")
            r = ref[(ref["row_key"] == row) & (ref["epsilon"] == eps) & (ref["variant"] == variant)]
            for name, style in (("retrain", "k-"), ("original", "k:")):
                v = r[r["method"] == name]["eval_accuracy"]
                if len(v):
                    ax.axhline(v.iloc[0], color="k", ls=style[1:], lw=1, label=f"{name} ({v.iloc[0]:.3f})")
            grid = np.linspace(0, max_t, 300)
            for k, gk in g.groupby("k"):
                m, se = _grid_mean(gk, grid)
                k = int(k)
                label = "NFT" if k == 1 else f"block-NFT k={k}"
                ax.plot(grid, m, color=COLOURS.get(k, "k"), lw=1.3, label=label)
                ax.fill_between(grid, m - se, m + se, color=COLOURS.get(k, "k"), alpha=0.2)
            ax.set(xlim=(-300, max_t), ylim=(0, 1), xlabel="iteration", ylabel="test accuracy",
                   title=f"{_row_title(g)}\nε={eps:g}, `{variant}`, n={g['seed'].nunique()} seeds")
            if i == 0 and j == 0:
                ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return fig


def fig2(tables, cfg):
    t = tables["fig2"]
    s = t[t["row"] == "summary"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    types = list(dict.fromkeys(s["block_type"]))
    labels = {"qr": "random QR", "perm_identity": "permutation", "layers": "cyclic layers", "head": "head vs body"}
    for ax, col, what in ((axes[0], "post_noise_accuracy", "after the noise"), (axes[1], "test_accuracy_final", "after fine-tuning")):
        x = np.arange(len(types))
        for off, (name, sel) in enumerate((("NFT (k=1)", s["k"] == 1), ("block-NFT", s["k"] > 1))):
            means = [s[sel & (s["block_type"] == b)][col].mean() for b in types]
            errs = [s[sel & (s["block_type"] == b)][col].std(ddof=1) for b in types]
            ax.bar(x + (off - 0.5) * 0.38, means, 0.38, yerr=errs, capsize=3, label=name,
                   color="tab:red" if off == 0 else "tab:blue")
        ks = {b: int(s[(s["block_type"] == b) & (s["k"] > 1)]["k"].max()) for b in types}
        ax.set_xticks(x, [f"{labels.get(b, b)}\n(k={ks[b]})" for b in types])
        ax.set(ylabel="test accuracy", ylim=(0, 1), title=f"test accuracy {what}")
        ax.legend(fontsize=8)
    eps = ", ".join(f"{e:g}" for e in sorted(s["epsilon"].unique()))
    fig.suptitle(f"Block-type ablation, `scaled`, ε ∈ {{{eps}}}: {_row_title(s)}; mean ± sd over "
                 f"{s['seed'].nunique()} seeds (and ε)")
    fig.tight_layout()
    return fig
