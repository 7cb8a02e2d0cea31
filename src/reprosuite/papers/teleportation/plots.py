"""Figures of the teleportation paper; each reads aggregated tables only."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from reprosuite.stats import mean_ci

from .analysis import best_k, best_lr

NAMES = {"ring": "ring", "sym_exp": "sym. exponential", "one_peer_exp": "one-peer exponential", "base2": "Base-2",
         "complete": "complete"}
COLORS = {"ring": "C0", "sym_exp": "C1", "one_peer_exp": "C2", "base2": "C4", "complete": "C7"}  # D-SGD
TELE_COLORS = {"ring": "C3", "sym_exp": "C5", "complete": "C8"}  # TELEPORTATION with that slot graph


def _band(ax, xs, samples, **kw):
    ests = [mean_ci(s) for s in samples]
    y = np.array([e.value for e in ests])
    lo = np.array([max(e.lo, 0.0) if np.isfinite(e.lo) else e.value for e in ests])
    hi = np.array([e.hi if np.isfinite(e.hi) else e.value for e in ests])
    line = ax.plot(xs, y, **kw)[0]
    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
    return line


def fig2(tables, cfg):
    """Iterations to target vs n: D-SGD per topology (dashed), TELEPORTATION with its best k (solid)."""
    best = best_lr(tables["fig2"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    T = int(best["T"].max())
    for g in sorted(best[best["method"] == "dsgd"]["graph"].unique()):
        sel = best[(best["method"] == "dsgd") & (best["graph"] == g)].sort_values("n")
        _band(ax, sel["n"], list(sel["iters"]), ls="--", marker="s", color=COLORS.get(g), label=f"D-SGD, {NAMES.get(g, g)}")
    for g in sorted(best[best["method"] == "tele"]["graph"].unique()):
        ns = sorted(best[(best["method"] == "tele") & (best["graph"] == g)]["n"].unique())
        rows = [best_k(best, g, n) for n in ns]
        line = _band(ax, ns, [r["iters"] for r in rows], ls="-", marker="o", color=TELE_COLORS.get(g),
                     label=f"TELEPORTATION (best k), slot graph {NAMES.get(g, g)}")
        for n, r in zip(ns, rows):
            ax.annotate(f"k={int(r['k'])}", (n, np.mean(r["iters"])), textcoords="offset points", xytext=(4, -10),
                        fontsize=7, color=line.get_color())
    ax.axhline(T, color="grey", lw=0.8, ls=":", label=f"T = {T} (not reached)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(best["n"].unique()), [str(int(n)) for n in sorted(best["n"].unique())])
    target = tables["fig2"]["target"].iloc[0]
    ax.set(xlabel="number of nodes n", ylabel="iterations to target (best step size)",
           title=f"Heterogeneous quadratics: iterations until mean_i f(x_i) - f* <= {target:g}")
    ax.set_ylim(0, T * 1.08)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    return fig


def fig_k(tables, cfg):
    """Iterations to target vs k for each n (best step size per k); the best k is marked."""
    best = best_lr(tables["fig2"])
    tele = best[best["method"] == "tele"]
    graphs = sorted(tele["graph"].unique())
    fig, axes = plt.subplots(1, len(graphs), figsize=(5.5 * len(graphs), 4.2), squeeze=False)
    T = int(best["T"].max())
    for ax, g in zip(axes[0], graphs):
        for i, n in enumerate(sorted(tele["n"].unique())):
            sel = tele[(tele["graph"] == g) & (tele["n"] == n)].sort_values("k")
            line = _band(ax, sel["k"], list(sel["iters"]), marker="o", color=f"C{i}", label=f"n = {int(n)}")
            b = best_k(best, g, n)
            ax.plot([b["k"]], [np.mean(b["iters"])], marker="*", ms=14, color=line.get_color(), mec="k")
        ax.axhline(T, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        ks = sorted(tele["k"].unique())
        ax.set_xticks(ks, [str(int(k)) for k in ks])
        ax.set(xlabel="active nodes k", ylabel="iterations to target (best step size)",
               title=f"TELEPORTATION, slot graph {NAMES.get(g, g)} (★ best k)")
        ax.set_ylim(0, T * 1.08)
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    return fig


def fig4(tables, cfg):
    """Test accuracy of x̄ / the slot average vs simulated time, one panel per α (mean over seeds)."""
    df = tables["tab2"].dropna(subset=["test_accuracy_xbar"])
    alphas = sorted(df["alpha"].unique(), reverse=True)
    fig, axes = plt.subplots(1, len(alphas), figsize=(6 * len(alphas), 4.2), squeeze=False)
    tau = df["tau"].iloc[0]
    for ax, a in zip(axes[0], alphas):
        sub = df[df["alpha"] == a]
        for i, ((m, g, k), run) in enumerate(sub.groupby(["method", "graph", "k"])):
            curve = run.groupby("epoch")[["sim_time", "test_accuracy_xbar"]].mean().sort_index()
            label = f"D-SGD {NAMES.get(g, g)}" if m == "dsgd" else f"TELEPORTATION k={int(k)}"
            ax.plot(curve["sim_time"], 100 * curve["test_accuracy_xbar"], marker=".", ls="--" if m == "dsgd" else "-",
                    color=f"C{i}", label=label)
        kind = "homogeneous" if a >= 1 else "heterogeneous"
        ax.set(xlabel=f"simulated time (ring link = 1, other links τ = {tau:g})", ylabel="test accuracy (%)",
               title=f"Dirichlet α = {a:g} ({kind})")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
    return fig
