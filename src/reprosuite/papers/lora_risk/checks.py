"""Checks of spec §6 (claims 1–12); thresholds come from experiments/lora_risk/claims.yaml."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprosuite.claims import Outcome

from . import theory


def _rel(a, b) -> float:
    return float(abs(a - b) / abs(b))


def identities(tables, *, objective_rtol, full_rank_atol, a0_rtol):
    """Claim 1: SVD form = authors' form (training objective); r ≥ min(dy, m) ⇒ LoRA = FFT; A0 irrelevant."""
    t = tables["identities"]
    obj, full, a0 = t["objective_rel_diff"].max(), t["full_rank_max_abs_diff_to_fft"].max(), t["a0_rel_diff"].max()
    ok = obj <= objective_rtol and full <= full_rank_atol and a0 <= a0_rtol
    return Outcome(ok, {"objective_rel": obj, "full_rank_abs": full, "a0_rel": a0},
                   {"objective_rel": f"<= {objective_rtol}", "full_rank_abs": f"<= {full_rank_atol}", "a0_rel": f"<= {a0_rtol}"},
                   f"{len(t)} cases, both regimes")


def fft_exact(tables, *, rtol, min_gap, min_seeds):
    """Claim 2: MC mean of the FFT risk within rtol of the exact formula for |n − dx| ≥ min_gap."""
    frames = [t[(t["method"] == "fft") & ((t["n"] - t["dx"]).abs() >= min_gap) & (t["n_seeds"] >= min_seeds)]
              .assign(table=name) for name, t in tables.items()]
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[rows["theory_exact"].notna()]
    if rows.empty:
        return Outcome(False, "no FFT rows", f"<= {rtol}", "no rows with enough seeds")
    err = (rows["risk_mean"] - rows["theory_exact"]).abs() / rows["theory_exact"]
    worst = rows.loc[err.idxmax()]
    detail = (f"{len(rows)} points; worst {worst['table']}/{worst['panel']} n={int(worst['n'])} "
              f"(dx={int(worst['dx'])}): MC {worst['risk_mean']:.4g} vs {worst['theory_exact']:.4g}; "
              f"{int((err > rtol).sum())} points over")
    return Outcome(bool(err.max() <= rtol), float(err.max()), f"<= {rtol}", detail)


def firstorder(tables, *, rtol_far, rtol_near, far_gap, near_n):
    """Claim 3: in-span MC vs first-order formula (ours): rtol_far for |n − dx| ≥ far_gap, rtol_near at near_n."""
    t = tables["firstorder"]
    err = (t["inspan_mean"] - t["theory_inspan"]).abs() / t["theory_inspan"]
    far = err[(t["n"] - t["dx"]).abs() >= far_gap]
    near = err[t["n"] == near_n]
    ok = bool(far.max() <= rtol_far and (near.empty or near.max() <= rtol_near))
    worst = t.loc[far.idxmax()]
    return Outcome(ok, {"far_max_rel": float(far.max()), "near_max_rel": float(near.max()) if len(near) else None},
                   {"far": f"<= {rtol_far}", "near": f"<= {rtol_near}"},
                   f"worst far: n={int(worst['n'])} {worst['label']} MC {worst['inspan_mean']:.4g} vs {worst['theory_inspan']:.4g}; "
                   f"{int(t['n_seeds'].iloc[0])} seeds")


def hybrid(tables, *, rtol_ranked, rtol_over):
    """Claim 4: |MC − hybrid|/MC ≤ rtol_ranked (r ≤ effective rank) and ≤ rtol_over (over-ranked)."""
    t = tables["hybrid"]
    err = (t["risk_mean"] - t["theory_hybrid"]).abs() / t["risk_mean"]
    over = t["over_ranked"].astype(bool)
    a, b = float(err[~over].max()), float(err[over].max()) if over.any() else 0.0
    worst = t.loc[err[~over].idxmax()]
    return Outcome(a <= rtol_ranked and b <= rtol_over, {"ranked_max": a, "over_max": b},
                   {"ranked": f"<= {rtol_ranked}", "over": f"<= {rtol_over}"},
                   f"{len(t)} cells; worst non-over-ranked: {worst['panel']} {worst['grid']}={worst['grid_value']:g} "
                   f"{worst['label']} MC {worst['risk_mean']:.4g} vs {worst['theory_hybrid']:.4g}")


def fig1_shape(tables, *, true_rank, far_lo, far_hi, far_factor, small_n, small_tol, median_factor, near_gap):
    """Claim 5: LoRA(r*) ≤ far_factor·FFT on [far_lo·dx, far_hi·dx]; at small_n all within small_tol of
    FFT; median LoRA(r*) ≤ median_factor·(r*/dy)·median FFT at the first n ≥ dx + near_gap."""
    t = tables["fig1"]
    t = t[t["panel"] == "gauss"]
    dx, dy = int(t["dx"].iloc[0]), int(t["dy"].iloc[0])
    fft = t[t["method"] == "fft"].set_index("n")
    lora = t[(t["method"] == "lora") & (t["lora_rank"] == true_rank)].set_index("n")
    far = fft.index[(fft.index >= far_lo * dx) & (fft.index <= far_hi * dx)]
    ratio_far = float((lora.loc[far, "risk_mean"] / fft.loc[far, "risk_mean"]).max())
    small = t[t["n"] == small_n]
    f_small = float(small.loc[small["method"] == "fft", "risk_mean"].iloc[0])
    dev_small = float((small["risk_mean"] / f_small - 1).abs().max())
    n_near = int(min(n for n in fft.index if n >= dx + near_gap))
    ratio_near = float(lora.loc[n_near, "risk_median"] / fft.loc[n_near, "risk_median"])
    bound = median_factor * true_rank / dy
    ok = ratio_far <= far_factor and dev_small <= small_tol and ratio_near <= bound
    return Outcome(ok, {"max_ratio_far": ratio_far, f"max_dev_n{small_n}": dev_small, f"median_ratio_n{n_near}": ratio_near},
                   {"max_ratio_far": f"<= {far_factor}", f"max_dev_n{small_n}": f"<= {small_tol}",
                    f"median_ratio_n{n_near}": f"<= {bound:.3g}"}, f"dx = {dx}; n = dx + {near_gap} is not on the grid, used n = {n_near}")


def _best_rank(t: pd.DataFrame, key: str, value: float) -> int:
    rows = t[(t["method"] == "lora") & np.isclose(t[key], value)]
    return int(rows.loc[rows["risk_mean"].idxmin(), "lora_rank"])


def fig3(tables, *, slope_lo, slope_hi, best_at_low_min, best_at_high_max, r1_wins_from):
    """Claim 6: FFT ∝ σ^slope; best rank ≥ best_at_low_min at the smallest σ and ≤ best_at_high_max at
    the largest; LoRA r = 1 below FFT for σ ≥ r1_wins_from."""
    t = tables["fig3"]
    fft = t[t["method"] == "fft"].sort_values("sigma")
    slope = float(np.polyfit(np.log(fft["sigma"]), np.log(fft["risk_mean"]), 1)[0])
    lo, hi = fft["sigma"].min(), fft["sigma"].max()
    b_lo, b_hi = _best_rank(t, "sigma", lo), _best_rank(t, "sigma", hi)
    r1 = t[(t["method"] == "lora") & (t["lora_rank"] == 1) & (t["sigma"] >= r1_wins_from)].set_index("sigma")["risk_mean"]
    ff = fft.set_index("sigma")["risk_mean"].loc[r1.index]
    r1_ok = bool((r1 < ff).all()) and len(r1) > 0
    ok = slope_lo <= slope <= slope_hi and b_lo >= best_at_low_min and b_hi <= best_at_high_max and r1_ok
    return Outcome(ok, {"fft_slope": slope, f"best_rank_sigma{lo:g}": b_lo, f"best_rank_sigma{hi:g}": b_hi,
                        "r1_beats_fft_all": r1_ok},
                   {"fft_slope": f"[{slope_lo}, {slope_hi}]", "best_low": f">= {best_at_low_min}",
                    "best_high": f"<= {best_at_high_max}", "r1": f"for sigma >= {r1_wins_from}"},
                   f"{len(r1)} sigma values >= {r1_wins_from}; max r1/FFT there {float((r1 / ff).max()):.3g}")


def fig4(tables, *, fft_value, fft_rtol, r1_a0, r1_a_end, r1_rtol, rule_decays, log2_tol):
    """Claim 7: FFT flat at fft_value; r1 at a = 0 and the largest a; MC-best vs rule rank (log2)."""
    t = tables["fig4"]
    fft = t[t["method"] == "fft"]
    fft_err = float(((fft["risk_mean"] - fft_value).abs() / fft_value).max())
    r1 = t[(t["method"] == "lora") & (t["lora_rank"] == 1)].set_index("decay")["risk_mean"]
    a_end = float(r1.index.max())
    e0, e1 = _rel(r1.loc[0.0], r1_a0), _rel(r1.loc[a_end], r1_a_end)
    gaps = {}
    for a in rule_decays:
        best = _best_rank(t, "decay", a)
        sv = theory.spectrum_values(kind="fast_decay", true_rank=int(t["true_rank"].iloc[0]),
                                    scale=float(t["spectrum_scale"].iloc[0]), decay=a)
        rule = theory.rank_rule(svals=sv, n=int(t["n"].iloc[0]), dx=int(t["dx"].iloc[0]), dy=int(t["dy"].iloc[0]),
                                sigma=float(t["sigma"].iloc[0]))
        gaps[f"a={a:g}: MC {best} / rule {rule}"] = abs(np.log2(best) - np.log2(rule))
    ok = fft_err <= fft_rtol and e0 <= r1_rtol and e1 <= r1_rtol and max(gaps.values()) <= log2_tol
    return Outcome(ok, {"fft_max_rel": fft_err, "r1_a0": float(r1.loc[0.0]), f"r1_a{a_end:g}": float(r1.loc[a_end]),
                        **{k: float(v) for k, v in gaps.items()}},
                   {"fft": f"{fft_value} ± {fft_rtol:.0%}", "r1": f"{r1_a0} / {r1_a_end} ± {r1_rtol:.0%}",
                    "log2 gap": f"<= {log2_tol}"})


def fig2(tables, *, spectrum, equal_rank, ranks, factor, equal_rtol):
    """Claim 8: r ≥ n gives LoRA = FFT exactly; at r* = r ∈ ranks, LoRA ≤ factor · FFT."""
    t = tables["fig2"]
    t = t[t["spectrum"] == spectrum]
    eq = t[(t["method"] == "lora") & (t["lora_rank"] == equal_rank)]
    eq_ok = bool((eq["max_abs_diff_to_fft"] <= equal_rtol * eq["risk_mean"]).all()) and len(eq) > 0
    fft = t[t["method"] == "fft"].set_index("true_rank")["risk_mean"]
    ratios = {}
    for r in ranks:
        row = t[(t["method"] == "lora") & (t["lora_rank"] == r) & (t["true_rank"] == r)]
        ratios[f"r*=r={r}"] = float(row["risk_mean"].iloc[0] / fft.loc[r])
    ok = eq_ok and max(ratios.values()) <= factor
    return Outcome(ok, {"lora_eq_fft_at_r32": eq_ok, **ratios},
                   {"r32": "identical", "ratio": f"<= {factor}"}, f"spectrum {spectrum}")


def gd(tables, *, over_n, over_rtol, under_n, peft_init_min_gap, tiny_init_rtol, tiny_scale):
    """Claim 9: GD-trained LoRA vs closed form (means over seeds)."""
    t = tables["gd"]
    closed = t[t["method"] == "lora_closed"].groupby("n")["risk"].mean()
    trained = t[t["method"] == "lora_gd"].groupby(["n", "init_scale"])["risk"].mean()
    over = max(_rel(trained.loc[(over_n, s)], closed.loc[over_n]) for s in trained.loc[over_n].index)
    gap_peft = float(trained.loc[(under_n, 1.0)] / closed.loc[under_n] - 1)
    tiny = _rel(trained.loc[(under_n, tiny_scale)], closed.loc[under_n])
    ok = over <= over_rtol and gap_peft > peft_init_min_gap and tiny <= tiny_init_rtol
    peft = t[(t["method"] == "lora_gd") & (t["n"] == under_n) & (t["init_scale"] == 1.0)].set_index("mc_seed")["risk"]
    paired = peft / t[(t["method"] == "lora_closed") & (t["n"] == under_n)].set_index("mc_seed")["risk"] - 1
    extra = ""
    if "dist_to_closed" in t:
        d = t[(t["method"] == "lora_gd") & (t["n"] == under_n) & (t["init_scale"] == 1.0)]["dist_to_closed"]
        extra = f"; mean ‖B·A_init·P⊥‖² = {d.mean():.3g} ({d.mean() / closed.loc[under_n]:.2%} of the risk)"
    return Outcome(ok, {f"n{over_n}_max_rel": over, f"n{under_n}_peft_init_gap": gap_peft,
                        f"n{under_n}_peft_gap_se": float(paired.std(ddof=1) / np.sqrt(len(paired))),
                        f"n{under_n}_tiny_init_rel": tiny},
                   {"over": f"<= {over_rtol}", "peft_gap": f"> {peft_init_min_gap}", "tiny": f"<= {tiny_init_rtol}"},
                   f"{t['mc_seed'].nunique()} seeds; closed form n={under_n}: {closed.loc[under_n]:.4g}{extra}")


def _acc(t: pd.DataFrame) -> pd.DataFrame:
    """Seed-mean test accuracy per (label, n) of the validation-selected lr."""
    t = t[t["selected"].astype(bool)] if "selected" in t else t
    return t.groupby(["method", "lora_rank", "n"])["test_accuracy"].mean()


def practical_small_n(tables, *, n, ranks, margin):
    """Claim 10a: at n, the best of LoRA r ∈ ranks ≥ FFT − margin."""
    acc = _acc(tables["practical"])
    best = max(acc.loc[("lora", r, n)] for r in ranks)
    fft = acc.loc[("fft", 0, n)]
    return Outcome(bool(best >= fft - margin), {"best_lora": float(best), "fft": float(fft)},
                   f"best LoRA >= FFT - {margin}")


def practical_vs_probe(tables, *, n_small, n_large, margin):
    """Claim 10b: every fine-tuning method beats the probe by ≥ margin at n_large, with a larger gain
    at n_large than at n_small."""
    acc = _acc(tables["practical"])
    probe = {n: acc.loc[("head", 0, n)] for n in (n_small, n_large)}
    gains, ok = {}, True
    for (method, rank, n), _ in acc.items():
        if method == "head" or n != n_large:
            continue
        g_large = acc.loc[(method, rank, n_large)] - probe[n_large]
        g_small = acc.loc[(method, rank, n_small)] - probe[n_small]
        gains[f"{method}{rank or ''}"] = f"{g_small:+.3f} -> {g_large:+.3f}"
        ok &= bool(g_large >= margin and g_large > g_small)
    return Outcome(ok, gains, f"gain at n={n_large} >= {margin} and > gain at n={n_small}")


def practical_best_rank(tables):
    """Claim 10c (report): the best LoRA rank at each n."""
    acc = _acc(tables["practical"])
    lora = acc.loc["lora"]
    best = {f"n={n}": int(lora.xs(n, level="n").idxmax()) for n in sorted(lora.index.get_level_values("n").unique())}
    return Outcome(True, best, "reported (pilot: 8 at n = 64)")


def spectrum_low_rank(tables, *, energy, max_fraction, modules):
    """Claim 11: median rank for `energy` of ΔW < max_fraction of the full rank (attention modules)."""
    t = tables["spectrum"]
    t = t[t["module"].isin(modules)].drop_duplicates(["layer", "module"])
    frac = float((t[f"rank_{energy}"] / t["full_rank"]).median())
    per = (t.groupby("module")[f"rank_{energy}"].median()).to_dict()
    return Outcome(frac < max_fraction, frac, f"< {max_fraction}", f"median rank_{energy} per module: {per}; full rank {int(t['full_rank'].iloc[0])}")


def finite_risks(tables):
    """Claim 12 (part): every Monte Carlo risk is finite and non-negative."""
    vals = pd.concat([t["risk_mean"] for t in tables.values()])
    ok = bool(np.isfinite(vals).all() and (vals >= 0).all())
    return Outcome(ok, f"{len(vals)} values, min {vals.min():.3g}, max {vals.max():.3g}", "finite, >= 0")


def accuracy_range(tables):
    """Claim 12 (part): practical accuracies in [0, 1]."""
    acc = tables["practical"]["test_accuracy"]
    return Outcome(bool(acc.between(0, 1).all()), f"[{acc.min():.3f}, {acc.max():.3f}]", "[0, 1]")


def trainable_counts(tables, *, expected):
    """Claim 12 (part): trainable parameters per method/rank with the default targets + 770-param head."""
    t = tables["params"]
    got = {("fft" if m == "fft" else f"lora{r}" if m == "lora" else "head"): int(c)
           for m, r, c in zip(t["method"], t["lora_rank"], t["trainable_params"])}
    ok = all(got.get(k) == v for k, v in expected.items())
    return Outcome(ok, {k: got.get(k) for k in expected}, expected)


def llm_table(tables, *, reference, tol_pp):
    """Claim 10 (paper): Qwen accuracies cell-wise within tol_pp of the authors' table (where run)."""
    t = tables["llm"]
    acc = t.groupby(["task", "method", "lora_rank"])["accuracy"].mean() * 100
    diffs = {}
    for key, ref in reference.items():
        task, method, rank = key.split("/")
        idx = (task, method, int(rank))
        if idx in acc.index:
            diffs[key] = float(acc.loc[idx] - ref)
    ok = bool(diffs) and all(abs(d) <= tol_pp for d in diffs.values())
    return Outcome(ok, diffs, f"within ±{tol_pp} pp", f"{len(diffs)} cells reproduced")


CHECKS = {f.__name__: f for f in (identities, fft_exact, firstorder, hybrid, fig1_shape, fig3, fig4, fig2, gd,
                                  practical_small_n, practical_vs_probe, practical_best_rank, spectrum_low_rank,
                                  finite_risks, accuracy_range, trainable_counts, llm_table)}
