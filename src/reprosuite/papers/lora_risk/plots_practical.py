"""Figures of the practical task (fig6, fig7): MiniLM-L6 on Rotten Tomatoes, FFT vs peft LoRA."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FormatStrFormatter, NullFormatter, ScalarFormatter

PROBE = "head-only probe (no-adaptation reference)"


def _acc(t):
    t = t[t["selected"].astype(bool)] if "selected" in t else t
    return t.groupby(["method", "lora_rank", "label", "n"])["test_accuracy"].agg(["mean", "std", "size"]).reset_index()


def _style(method, rank, ranks):
    if method == "head":
        return dict(color="grey", ls=":", marker="s", label=PROBE)
    if method == "fft":
        return dict(color="black", ls="--", marker="D", label="FFT")
    cmap = plt.get_cmap("viridis")
    i = sorted(ranks).index(rank)
    return dict(color=cmap(0.9 * i / max(len(ranks) - 1, 1)), ls="-", marker="o", label=f"LoRA r={rank}")


def fig6(tables, cfg):
    a = _acc(tables["practical"])
    ranks = sorted(a.loc[a["method"] == "lora", "lora_rank"].unique())
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6))
    for (method, rank), g in a.groupby(["method", "lora_rank"]):
        g = g.sort_values("n")
        st = _style(method, rank, ranks)
        err = g["std"].fillna(0.0)
        a1.errorbar(g["n"], g["mean"], yerr=err, capsize=3, **st)
        a2.plot(g["n"], 100 * (1 - g["mean"]), **st)
    a1.set_xscale("log")
    a1.set_xlabel("training examples n (log scale)")
    a1.set_ylabel("test accuracy (fraction, 1,000-example test subset)")
    a1.set_title("accuracy vs n (mean ± std over seeds)")
    a1.legend(fontsize=7)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.invert_xaxis()
    ns = sorted(a["n"].unique())
    for ax in (a1, a2):
        ax.set_xticks(ns)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    a2.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    a2.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    a2.set_xlabel("training examples n (log scale, reversed)")
    a2.set_ylabel("test error rate (%)")
    a2.set_title("error rate vs n (log-log, n reversed as in §4 B)")
    a2.legend(fontsize=7)
    seeds = int(a["size"].max())
    fig.suptitle(f"fig6: all-MiniLM-L6-v2 on Rotten Tomatoes (split by movie), {seeds} seed(s); "
                 "stand-in for the paper's Qwen2.5 tasks")
    fig.tight_layout()
    return fig


def fig7(tables, cfg):
    a = _acc(tables["practical"])
    sp = tables["spectrum"]
    n_max = int(a["n"].max())
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.8))
    g = a[(a["n"] == n_max) & (a["method"] == "lora")].sort_values("lora_rank")
    a1.errorbar(g["lora_rank"], g["mean"], yerr=g["std"].fillna(0.0), fmt="o-", capsize=3, label="LoRA (α = 2r)")
    for method, style in (("fft", dict(color="black", ls="--", label="FFT")), ("head", dict(color="grey", ls=":", label=PROBE))):
        h = a[(a["n"] == n_max) & (a["method"] == method)]
        if len(h):
            a1.axhline(float(h["mean"].iloc[0]), **style)
    a1.set_xscale("log", base=2)
    a1.set_xlabel("LoRA rank r")
    a1.set_ylabel("test accuracy (fraction)")
    a1.set_title(f"accuracy vs rank at n = {n_max}")
    a1.legend(fontsize=7)
    cmap = plt.get_cmap("tab10")
    for i, (module, m) in enumerate(sp.groupby("module")):
        curve = m.groupby("k")["cumulative_energy"]
        k = np.array(sorted(m["k"].unique()))
        med, lo, hi = curve.median().loc[k], curve.quantile(0.25).loc[k], curve.quantile(0.75).loc[k]
        r90 = float(m.drop_duplicates("layer")["rank_90"].median())
        a2.plot(k, med, color=cmap(i), label=f"{module} (median r90% = {r90:g})")
        a2.fill_between(k, lo, hi, color=cmap(i), alpha=0.15, lw=0)
    for q in (0.8, 0.9, 0.95):
        a2.axhline(q, color="grey", lw=0.6, ls=":")
    for r in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        a2.axvline(r, color="grey", lw=0.3)
    a2.set_xscale("log", base=2)
    a2.set_xlabel("number of singular directions k")
    a2.set_ylabel("cumulative energy Σ_{i≤k} s_i² / Σ s_i² of ΔW")
    full = int(sp["full_rank"].iloc[0]) if len(sp) else 0
    a2.set_title(f"FFT update ΔW = W_ft − W_0 (n = {int(sp['n'].iloc[0]) if len(sp) else 0}); median over 6 layers, IQR band; full rank {full}", fontsize=8)
    a2.legend(fontsize=6)
    fig.suptitle("fig7: rank dependence and spectrum of the FFT update (MiniLM-L6, Rotten Tomatoes)")
    fig.tight_layout()
    return fig
