"""Figures of the synthetic part (fig1–fig5, fig_gd): Monte Carlo points with bands, theory lines.

Theory curves are this project's closed forms and are labelled "prediction (ours)". Figures read
the aggregated tables only.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.ticker import NullFormatter

from . import theory

OURS = "prediction (ours)"


def _colors(ranks):
    cmap = plt.get_cmap("viridis")
    return {r: cmap(i / max(len(ranks) - 1, 1) * 0.9) for i, r in enumerate(sorted(ranks))}


def _curves(ax, t, x, *, xfun=lambda v: v, first_order_rank=None, band="std", theory_col="theory_hybrid"):
    """MC mean (dots) ± band per method and the theory line of each; x is a column of t."""
    ranks = sorted(int(r) for r in t.loc[t["method"] == "lora", "lora_rank"].unique())
    colors = _colors(ranks)
    groups = [("fft", None, "black", "FFT")] + [("lora", r, colors[r], f"LoRA r={r}") for r in ranks]
    for method, r, color, label in groups:
        g = t[(t["method"] == method) & ((t["lora_rank"] == r) if r is not None else True)].sort_values(x)
        xv = xfun(g[x].to_numpy(dtype=float))
        if band == "std":
            lo, hi = g["risk_mean"] - g["risk_std"], g["risk_mean"] + g["risk_std"]
            lo = np.maximum(lo, g["risk_mean"] * 1e-2)
            ax.plot(xv, g["risk_mean"], "o", ms=3, color=color, label=f"{label} (MC mean ± std)")
        else:
            lo, hi = g["risk_q25"], g["risk_q75"]
            ax.plot(xv, g["risk_median"], "o", ms=3, color=color, label=f"{label} (MC median, IQR)")
        ax.fill_between(xv, lo, hi, color=color, alpha=0.15, lw=0)
        col = "theory_exact" if method == "fft" else theory_col
        if col in g:
            name = (f"FFT exact risk {OURS}" if method == "fft" else
                    f"solid lines: LoRA hybrid {OURS}" if r == ranks[0] else None)
            ax.plot(xv, g[col], "--" if method == "fft" else "-", color=color, lw=1.2, label=name)
        if first_order_rank is not None and r == first_order_rank:
            ax.plot(xv, g["theory_first_order"], ":", color=color, lw=1.5, label=f"first order r={r} {OURS}")
    ax.set_yscale("log")


def fig1(tables, cfg):
    t = tables["fig1"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, panel in zip(axes, ("gauss", "decay")):
        g = t[t["panel"] == panel]
        if g.empty:
            continue
        dx = int(g["dx"].iloc[0])
        _curves(ax, g, "n", xfun=lambda v, dx=dx: dx / v, first_order_rank=int(g["true_rank"].iloc[0]) if panel == "gauss" else None)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.axvline(1.0, color="grey", ls="--", lw=0.8, label="n = dx (interpolation peak)")
        ax.set_xlabel("dx / n (over-parameterisation; n decreases to the right)")
        ax.set_ylabel("excess risk ‖Â − A*‖²_F")
        if panel == "gauss":
            ax.set_title(f"(a) F1 ≈ Fig. 1(a): Gaussian Δ, r* = {int(g['true_rank'].iloc[0])}, dx = dy = {dx}, σ = {g['sigma'].iloc[0]:g}")
        else:
            a = g["decay"].iloc[0]
            ax.set_title(f"(b) s_i = {g['spectrum_scale'].iloc[0]:g}·exp(−{a:g} i), dx = dy = {dx}: crossover n* {OURS}")
            ranks = sorted(int(r) for r in g.loc[g["method"] == "lora", "lora_rank"].unique())
            colors = _colors(ranks)
            if "crossover_n" in g:
                for r in ranks:
                    ns = g.loc[(g["lora_rank"] == r), "crossover_n"].dropna()
                    if len(ns) and ns.iloc[0] <= g["n"].max():
                        ax.axvline(dx / ns.iloc[0], color=colors[r], ls="-.", lw=1, label=f"dx/n*(r={r}) {OURS}")
        ax.legend(fontsize=6, ncol=2)
    fig.suptitle("Excess risk vs dx/n; dots/bands: Monte Carlo of the authors' estimators; lines: " + OURS)
    fig.tight_layout()
    return fig


def fig2(tables, cfg):
    t = tables["fig2"]
    order = ("gaussian", "constant", "fast_decay", "slow_decay")
    variants = sorted(dict.fromkeys(t["spectrum"]), key=lambda v: order.index(v) if v in order else 9)
    cols = min(2, len(variants))
    rows = (len(variants) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 4.8 * rows), squeeze=False)
    for ax in axes.flat[len(variants):]:
        ax.set_visible(False)
    for ax, v in zip(axes.flat, variants):
        g = t[t["spectrum"] == v]
        _curves(ax, g, "true_rank")
        ax.set_xlabel("true rank r* of Δ")
        ax.set_ylabel("excess risk ‖Â − A*‖²_F")
        ax.set_title(f"F2, {v} spectrum (dx = dy = {int(g['dx'].iloc[0])}, n = {int(g['n'].iloc[0])}, σ = {g['sigma'].iloc[0]:g})", fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle("Excess risk vs true rank (F2); LoRA r = 32 ≥ n coincides with FFT; lines: " + OURS)
    fig.tight_layout()
    return fig


def _best(t, key):
    lora = t[t["method"] == "lora"]
    idx = lora.groupby(key)["risk_mean"].idxmin()
    return lora.loc[idx, [key, "lora_rank", "rule_rank"]].sort_values(key)


def fig3(tables, cfg):
    t = tables["fig3"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [2, 1]})
    _curves(a1, t, "sigma")
    a1.set_xscale("log")
    a1.set_xlabel("noise level σ")
    a1.set_ylabel("excess risk ‖Â − A*‖²_F")
    a1.set_title(f"F3: dx = dy = {int(t['dx'].iloc[0])}, n = {int(t['n'].iloc[0])}, r* = {int(t['true_rank'].iloc[0])}, {int(t['n_seeds'].iloc[0])} seeds")
    a1.legend(fontsize=6, ncol=2)
    b = _best(t, "sigma")
    a2.plot(b["sigma"], b["lora_rank"], "o-", label="MC-best rank (among the ranks run)")
    a2.plot(b["sigma"], b["rule_rank"], "s--", label=f"rank rule r_opt {OURS}")
    a2.set_xscale("log")
    a2.set_yscale("log", base=2)
    a2.set_xlabel("noise level σ")
    a2.set_ylabel("LoRA rank")
    a2.set_title("best rank vs σ")
    a2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig4(tables, cfg):
    t = tables["fig4"]
    dx, dy, n, sigma = int(t["dx"].iloc[0]), int(t["dy"].iloc[0]), int(t["n"].iloc[0]), float(t["sigma"].iloc[0])
    scale, k = float(t["spectrum_scale"].iloc[0]), int(t["true_rank"].iloc[0])
    fig, (a0, a1, a2) = plt.subplots(1, 3, figsize=(16, 4.5))
    decays = sorted(t["decay"].unique())
    for a in decays[:: max(1, len(decays) // 6)]:
        a0.semilogy(np.arange(1, k + 1), theory.spectrum_values(kind="fast_decay", true_rank=k, scale=scale, decay=a),
                    ".-", ms=3, label=f"a = {a:g}")
    thr = np.sqrt(sigma**2 * (dx + dy) / n)
    a0.axhline(thr, color="red", ls="--", label=f"rule threshold √(σ²(dx+dy)/n) = {thr:.3g}")
    a0.set_ylim(1e-4, scale * 2)
    a0.set_xlabel("index i")
    a0.set_ylabel("singular value s_i(Δ)")
    a0.set_title(f"F4 spectra s_i = {scale:g}·exp(−a·(i−1))")
    a0.legend(fontsize=6)
    _curves(a1, t, "decay")
    a1.set_xlabel("decay rate a")
    a1.set_ylabel("excess risk ‖Â − A*‖²_F")
    a1.set_title(f"F4: dx = dy = {dx}, n = {n}, σ = {sigma:g}")
    a1.legend(fontsize=6, ncol=2)
    b = _best(t, "decay")
    a2.plot(b["decay"], b["lora_rank"], "o-", label="MC-best rank (among the ranks run)")
    a2.plot(b["decay"], b["rule_rank"], "s--", label=f"rank rule r_opt {OURS}")
    a2.set_yscale("log", base=2)
    a2.set_xlabel("decay rate a")
    a2.set_ylabel("LoRA rank")
    a2.set_title("best rank vs a")
    a2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _phase(ax, t, part, column, title, fig):
    th = t[(t["part"] == f"{part}_theory")]
    mc = t[(t["part"] == f"{part}_mc")]
    if th.empty:
        ax.set_visible(False)
        return
    piv = th.pivot_table(index="log10_n_over_dx", columns="axis_value", values=column)
    vmax = max(0.5, float(np.nanmax(np.abs(piv.to_numpy()))))
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)
    mesh = ax.pcolormesh(piv.columns, piv.index, piv.to_numpy(), cmap="RdBu_r", norm=norm, shading="nearest")
    if not mc.empty:
        colors = plt.get_cmap("RdBu_r")(norm(mc[column].to_numpy(dtype=float)))
        ax.scatter(mc["axis_value"], mc["log10_n_over_dx"], color=colors, s=70, edgecolors="black",
                   label=f"Monte Carlo check points ({int(mc['n_seeds'].iloc[0])} seeds)")
        ax.legend(fontsize=6, loc="lower right")
    axis = th["axis"].iloc[0]
    if axis == "sigma":
        ax.set_xscale("log")
    ax.axhline(0.0, color="grey", lw=0.6, ls="--")
    ax.set_xlabel("decay rate a" if axis == "decay" else "noise level σ")
    ax.set_ylabel("log10(n / dx)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(mesh, ax=ax, label="log10(R_LoRA / R_FFT)  (<0: LoRA wins)")


def fig5(tables, cfg):
    t = tables["fig5"]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    rk = t[t["part"] == "rank"]
    ax = axes[0, 0]
    if not rk.empty:
        lora = rk[rk["method"] == "lora"].sort_values("lora_rank")
        fft = rk[rk["method"] == "fft"]
        ax.errorbar(lora["lora_rank"], lora["risk_mean"], yerr=lora["risk_std"], fmt="o", ms=3, label="LoRA (MC mean ± std)")
        ax.plot(lora["lora_rank"], lora["theory_hybrid"], "-", label=f"LoRA hybrid {OURS}")
        ax.axhline(float(fft["risk_mean"].iloc[0]), color="black", ls="--", label="FFT (MC)")
        rule = int(rk["rule_rank"].iloc[0])
        best = int(lora.loc[lora["risk_mean"].idxmin(), "lora_rank"])
        ax.axvline(rule, color="red", ls="--", label=f"rank rule r_opt = {rule} {OURS}")
        ax.axvline(best, color="green", ls=":", label=f"MC optimum r = {best}")
        ax.set_yscale("log")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("LoRA rank r")
        ax.set_ylabel("excess risk ‖Â − A*‖²_F")
        ax.set_title(f"U-shape in r: s_i = {rk['spectrum_scale'].iloc[0]:g}·exp(−{rk['decay'].iloc[0]:g} i), n = {int(rk['n'].iloc[0])}, σ = {rk['sigma'].iloc[0]:g}", fontsize=9)
        ax.legend(fontsize=6)
    for row, part in enumerate(("decay", "sigma")):
        sub = t[t["part"].str.startswith(part)]
        if sub.empty:
            continue
        r = int(sub["lora_rank"].iloc[0])
        _phase(axes[row, 1], t, part, "log10_ratio_rank", f"{part}: LoRA r = {r} vs FFT — {OURS}; circles: MC, same colour scale", fig)
        _phase(axes[row, 2], t, part, "log10_ratio_oracle", f"{part}: oracle rank vs FFT — {OURS} + MC", fig)
    th = t[t["part"] == "sigma_theory"]
    ax = axes[1, 0]
    if not th.empty:
        piv = th.pivot_table(index="log10_n_over_dx", columns="axis_value", values="oracle_rank")
        mesh = ax.pcolormesh(piv.columns, piv.index, piv.to_numpy(), cmap="magma", shading="nearest")
        ax.set_xscale("log")
        ax.set_xlabel("noise level σ")
        ax.set_ylabel("log10(n / dx)")
        ax.set_title(f"oracle rank (argmin of hybrid) {OURS}", fontsize=9)
        fig.colorbar(mesh, ax=ax, label="rank")
    fig.suptitle("fig5: rank choice and phase diagrams (blue: LoRA beats FFT)")
    fig.tight_layout()
    return fig


def fig_gd(tables, cfg):
    """Claim 9: paired gap of each gradient-trained model to its closed form, per seed."""
    t = tables["gd"]
    fig, axes = plt.subplots(1, 2, figsize=(15, 4.5))
    for ax, (n, g) in zip(axes, sorted(t.groupby("n"), key=lambda kv: -kv[0])):
        closed = {m: g[g["method"] == f"{m}_closed"].set_index("mc_seed")["risk"] for m in ("lora", "fft")}
        labels, means, errs, absolute = [], [], [], []
        for (method, scale), h in g[g["method"].str.endswith("_gd")].groupby(["method", "init_scale"], sort=False):
            kind = method.split("_")[0]
            gap = 100 * (h.set_index("mc_seed")["risk"] / closed[kind] - 1)
            labels.append("FFT by GD (from A0)" if kind == "fft" else f"peft LoRA by GD, A init ×{scale:g}")
            means.append(float(gap.mean()))
            errs.append(float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else 0.0)
            extra = f"; mean ‖B·A_init·P⊥‖² = {h['dist_to_closed'].mean():.3g}" if kind == "lora" and "dist_to_closed" in h else ""
            absolute.append(f"{h['risk'].mean():.4g} vs {closed[kind].mean():.4g}{extra}")
        ax.barh(labels, means, xerr=errs, color=["C0" if "LoRA" in x else "C7" for x in labels])
        lim = 1.1 * max(1.0, *(abs(m) + e for m, e in zip(means, errs)))
        for i, (m, a) in enumerate(zip(means, absolute)):
            ax.text(-0.97 * lim, i + 0.3, f"gap {m:+.3g}%  (risk {a})", fontsize=6.5)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlim(-lim, lim)
        ax.set_xlabel("per-seed excess-risk gap to the closed form (%; mean ± s.e. over seeds)")
        ax.set_title(f"n = {int(n)}, dx = dy = {int(g['dx'].iloc[0])}, r* = r = {int(g['lora_rank'].iloc[0])}, "
                     f"σ = {g['sigma'].iloc[0]:g}, {g['mc_seed'].nunique()} seeds", fontsize=9)
    fig.suptitle("Gradient-trained peft LoRA on nn.Linear vs the closed-form LoRA optimum (claim 9)")
    fig.tight_layout()
    return fig
