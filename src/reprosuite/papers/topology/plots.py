"""Figures of the topology paper; each reads aggregated tables only."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

COLORS = {"ring": "C0", "path": "C1", "torus": "C2", "grid": "C3", "hypercube": "C4", "star": "C5",
          "complete": "C7", "sym_exp": "C6"}


def fig1(tables, cfg):
    """Fig. 1: (1-p)/p (dashed) and T_new (solid) vs n; hypercube vs dimension."""
    df = tables["fig1"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    for name, g in df[df["topology"] != "complete"].groupby("topology"):
        g = g.sort_values("n")
        c = COLORS.get(name)
        ax.loglog(g["n"], g["T_gap"], "--", color=c, marker=".")
        ax.loglog(g["n"], g["T_new"], "-", color=c, marker="o", ms=3, label=name)
    ax.plot([], [], "k--", label="(1-p)/p (prior)")
    ax.plot([], [], "k-", label="T_new (this paper)")
    ax.set(xlabel="number of nodes n", ylabel="topology term (dimensionless)",
           title="Prior term (1-p)/p vs new term T_new (Metropolis W)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    h = df[df["topology"] == "hypercube"].sort_values("n")
    dims = np.log2(h["n"]).round().astype(int)
    bx.plot(dims, h["T_gap"], "--o", color="C4", label="(1-p)/p")
    bx.plot(dims, h["T_new"], "-o", color="C4", mfc="white", label="T_new")
    bx.set(xlabel="hypercube dimension (n = 2^dim)", ylabel="topology term (dimensionless)",
           title="Hypercube: Θ(log n) vs Θ(1)")
    bx.legend()
    bx.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def fig2a(tables, cfg):
    """Mechanism: measured stationary consensus error / (d η² σ²) against T_new and (1-p)/p."""
    df = tables["fig2a"]
    df = df[df["predicted"] > 1e-9]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = {16: "o", 25: "s", 64: "^", 200: "D"}
    for ax, col, label in ((axes[0], "T_new", "T_new"), (axes[1], "T_gap", "(1-p)/p")):
        for (kind, fam), g in df.groupby(["kind", "family"]):
            for n, gn in g.groupby("n"):
                lbl = (f"{fam} family" if kind == "fixed_p" else "topologies") + f", n={n}"
                ax.errorbar(gn[col], gn["measured"], yerr=gn["measured_se"], fmt=markers.get(n, "o"),
                            ms=5, color={"none": "C0", "kronecker": "C3", "spectral": "C2"}[fam], label=lbl,
                            mfc="none" if kind == "fixed_p" else None)
        lo, hi = df[col].min(), df[col].max()
        if col == "T_new":
            ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="y = x (identity)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set(xlabel=f"{label} (dimensionless)", ylabel="(1/n) E‖X − X̄‖² / (d η² σ²)",
               title=f"Stationary consensus error vs {label}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig2(tables, cfg):
    """Fig. 2: training loss vs iteration at fixed p (top) and the consensus penalty (bottom).

    Top: node-averaged loss (solid) and loss at x̄ (dashed). Bottom: node mean minus x̄ loss,
    the part of the loss that comes from disagreement between nodes.
    """
    df = tables["fig2"]
    panels = sorted(df.groupby(["model", "family"]).groups)
    fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 7), squeeze=False, sharex=True)
    for col, (model, family) in enumerate(panels):
        g = df[(df["model"] == model) & (df["family"] == family)]
        members = g.groupby("member")["T_new"].first().sort_values()
        top, bottom = axes[0, col], axes[1, col]
        for i, (member, tn) in enumerate(members.items()):
            curve = g[g["member"] == member].groupby("iteration")[["loss_node_mean", "loss_xbar"]].mean()
            top.plot(curve.index, curve["loss_node_mean"], "-", color=f"C{i}", label=f"{member} (T_new={tn:.3g})")
            top.plot(curve.index, curve["loss_xbar"], "--", color=f"C{i}", lw=1)
            gap = (curve["loss_node_mean"] - curve["loss_xbar"]).iloc[1:]
            bottom.plot(gap.index, gap.clip(lower=1e-8), "-o", ms=2, color=f"C{i}", label=member)
        top.set(ylabel="training loss (node mean solid, x̄ dashed)",
                title=f"{model}, {family} family (p = {g['p'].iloc[0]:.3f})")
        top.set_yscale("log")
        top.legend(fontsize=7)
        bottom.set(xlabel="iteration (rounds)", ylabel="node-mean loss − x̄ loss", yscale="log",
                   title="consensus penalty")
        for ax in (top, bottom):
            ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def fig3(tables, cfg):
    """Fig. 3: final x̄ test accuracy vs T_new per α, mean ± std over seeds (T_new=0 at left edge)."""
    df = tables["fig3"]
    final = df[df["epoch"] == df.groupby(["alpha", "topology", "seed"])["epoch"].transform("max")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, title in ((axes[0], "test_accuracy_xbar", "average model x̄"),
                              (axes[1], "test_accuracy_node_mean", "mean over nodes' own models")):
        if metric not in final:
            ax.set_visible(False)
            continue
        for j, (alpha, g) in enumerate(sorted(final.groupby("alpha"), key=lambda t: -t[0])):
            s = g.groupby(["topology", "T_new"], as_index=False)[metric].agg(["mean", "std"]).sort_values("T_new")
            x = s["T_new"].clip(lower=1e-2)  # complete (T_new = 0) drawn at 0.01 on the log axis
            ax.errorbar(x, 100 * s["mean"], yerr=100 * s["std"].fillna(0), fmt="-o", capsize=3, color=f"C{j}",
                        label=f"Dirichlet α = {alpha:g}")
            for xi, yi, t in zip(x, 100 * s["mean"], s["topology"]):
                ax.annotate(t, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.margins(x=0.12)  # room for the labels of the right-most points
        ax.set(xlabel="T_new (log; complete graph T_new = 0 drawn at 0.01)", ylabel="test accuracy (%)",
               title=f"LeNet-GN, n = {int(final['n'].iloc[0])}: {title}")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig
