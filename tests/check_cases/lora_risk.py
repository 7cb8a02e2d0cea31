"""Check cases of lora_risk: small synthetic tables that must PASS, FAIL and (for the checks that
decide on an interval) come out INCONCLUSIVE."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprosuite.papers.lora_risk import theory


def _row(method, rank=None, **kw):
    row = dict(method=method, label="FFT" if method == "fft" else f"LoRA r={rank}", n_seeds=1000, risk_std=1.0,
               dx=100, dy=100, sigma=1.0, true_rank=4, decay=0.5, panel="gauss", spectrum="gaussian",
               spectrum_scale=1.0)
    if rank is not None:
        row["lora_rank"] = rank
    row.update(kw)
    return row


# claim 1 -----------------------------------------------------------------------------------------
def _identities(obj):
    t = pd.DataFrame({"objective_rel_diff": [1e-12, obj], "full_rank_max_abs_diff_to_fft": [1e-12, 1e-12],
                      "a0_rel_diff": [0.0, 1e-14]})
    return {"identities": t}, {"objective_rtol": 1e-6, "full_rank_atol": 1e-8, "a0_rtol": 1e-8}


# claim 2 -----------------------------------------------------------------------------------------
def _fft_cells(resid_mean, resid_std, seeds=1000):
    rows = [dict(panel="fig1/gauss", spectrum="gaussian", true_rank=4, decay=0.5, n=n, dx=100, gap=abs(n - 100),
                 n_seeds=seeds, theory_exact=100.0, resid_mean=resid_mean if n == 110 else 0.0,
                 resid_std=resid_std, risk_mean=100.0 + (resid_mean if n == 110 else 0.0), risk_std=resid_std)
            for n in (50, 110, 200, 102)]  # n = 102 is below min_gap and ignored
    return {"fft_cells": pd.DataFrame(rows)}, {"rtol": 0.05, "min_gap": 5, "min_seeds": 100}


# claim 3 -----------------------------------------------------------------------------------------
def _firstorder(mean_far, std):
    rows = [dict(n=n, dx=60, label="LoRA r=3", n_seeds=400, inspan_mean=(mean_far if n == 120 else 10.0),
                 inspan_std=std, theory_inspan=10.0) for n in (30, 52, 120)]
    return {"firstorder": pd.DataFrame(rows)}, {"rtol_far": 0.02, "rtol_near": 0.05, "far_gap": 10, "near_n": 52}


# claim 4 -----------------------------------------------------------------------------------------
def _hybrid(over_mean, std=1.0, over_rule=False, read="over_ranked"):
    rows = [dict(panel="f1like", grid="n", grid_value=54.0, label="LoRA r=4", true_rank=4, over_ranked=False,
                 over_rule=False, gap=4, risk_mean=100.0, risk_std=std, n_seeds=10000, theory_hybrid=101.0),
            dict(panel="f1like", grid="n", grid_value=54.0, label="LoRA r=8", true_rank=4, over_ranked=False,
                 over_rule=over_rule, gap=4, risk_mean=over_mean, risk_std=std, n_seeds=10000, theory_hybrid=100.0)]
    return {"hybrid": pd.DataFrame(rows)}, {"rtol_ranked": 0.10, "rtol_over": 0.40, "over": read}


def _panels(decay_mean, std=1.0):
    fig1 = pd.DataFrame([_row("lora", 4, n=n, risk_mean=(decay_mean if n == 300 else 100.0), risk_std=std,
                              n_seeds=100, theory_hybrid=100.0) for n in (50, 300, 101)]
                        + [_row("fft", n=300, risk_mean=500.0, theory_hybrid=500.0, theory_exact=500.0)])
    fig5 = pd.DataFrame([_row("lora", 2, n=200, dx=40, dy=40, part="rank", risk_mean=10.0, theory_hybrid=10.2),
                         dict(part="decay_mc", risk_fft=1.0)])
    return {"fig1": fig1, "fig5": fig5}, {"rtol_ranked": 0.10, "rtol_over": 0.40, "min_gap": 4}


# claim 5 -----------------------------------------------------------------------------------------
def _fig1(far_lora, std=0.5, n_seeds=1000):
    rows = []
    for n in (10, 106, 120, 500):
        fft = 1000.0 if n == 10 else 100.0
        med = dict(risk_median=fft, risk_median_lo=0.95 * fft, risk_median_hi=1.05 * fft)
        rows.append(_row("fft", n=n, risk_mean=fft, risk_std=std, n_seeds=n_seeds, **med))
        lora4 = 1000.0 if n == 10 else (far_lora if n in (120, 500) else 4.0)
        rows.append(_row("lora", 4, n=n, risk_mean=lora4, risk_std=std, n_seeds=n_seeds, risk_median=4.0,
                         risk_median_lo=3.8, risk_median_hi=4.2))
        rows.append(_row("lora", 1, n=n, risk_mean=1020.0 if n == 10 else 200.0, risk_std=std, n_seeds=n_seeds,
                         risk_median=200.0, risk_median_lo=190.0, risk_median_hi=210.0))
    params = dict(true_rank=4, far_lo=1.2, far_hi=10.0, far_factor=0.2, small_n=10, small_tol=0.10,
                  median_factor=2.0, near_gap=5)
    return {"fig1": pd.DataFrame(rows)}, params


# claim 6 -----------------------------------------------------------------------------------------
def _fig3(r1_at_50, std=1.0):
    rows = []
    for s in (1.0, 50.0, 100.0):
        rows.append(_row("fft", sigma=s, n=1000, risk_mean=100.0 * s**2, risk_std=std))
        for r in (1, 2, 8):
            if s == 1.0:
                v = {1: 500.0, 2: 300.0, 8: 50.0}[r]
            else:
                v = {1: (r1_at_50 if s == 50.0 else 0.5 * 100.0 * s**2), 2: 0.7 * 100.0 * s**2, 8: 0.9 * 100.0 * s**2}[r]
            rows.append(_row("lora", r, sigma=s, n=1000, risk_mean=v, risk_std=std))
    params = dict(slope_lo=1.95, slope_hi=2.05, best_at_low_min=8, best_at_high_max=2, r1_wins_from=40.0)
    return {"fig3": pd.DataFrame(rows)}, params


# claim 7 -----------------------------------------------------------------------------------------
def _fig4(fft_mean, std=0.01):
    rows = []
    for a in (0.0, 1.5, 2.5):
        base = dict(decay=a, n=200, dx=40, dy=40, sigma=0.5, true_rank=40, spectrum="fast_decay", spectrum_scale=5.0)
        rows.append(_row("fft", risk_mean=fft_mean, risk_std=std, **base))
        sv = theory.spectrum_values(kind="fast_decay", true_rank=40, scale=5.0, decay=a)
        rule = theory.rank_rule(svals=sv, n=200, dx=40, dy=40, sigma=0.5)
        for r in (1, 2, 4, 8, 16):
            v = {0.0: 975.0, 2.5: 0.28}.get(a, 1.0) if r == 1 else 1.0 + abs(np.log2(r) - np.log2(rule))
            if a != 0.0 and r != 1:
                v = 0.1 + abs(np.log2(r) - np.log2(rule))
            if a == 2.5 and r == 1:
                v = 0.28
            rows.append(_row("lora", r, risk_mean=v, risk_std=std, **base))
    params = dict(fft_value=2.516, fft_rtol=0.05, r1_a0=975.0, r1_a_end=0.28, r1_rtol=0.10, rule_decays=[1.5, 2.5],
                  log2_tol=1.0)
    return {"fig4": pd.DataFrame(rows)}, params


# claim 8 -----------------------------------------------------------------------------------------
def _fig2(ratio, diff=1e-12, std=1.0):
    rows = []
    for k in (2, 4, 8):
        base = dict(n=30, dx=40, dy=40, sigma=2.0, true_rank=k, spectrum="gaussian")
        rows.append(_row("fft", risk_mean=900.0, risk_std=std, **base))
        rows.append(_row("lora", k, risk_mean=900.0 * ratio, risk_std=std, **base))
        rows.append(_row("lora", 32, risk_mean=900.0, risk_std=std, max_abs_diff_to_fft=diff, **base))
    params = dict(spectrum="gaussian", equal_rank=32, ranks=[2, 4, 8], factor=0.65, equal_rtol=1e-12)
    return {"fig2": pd.DataFrame(rows)}, params


# claim 9 -----------------------------------------------------------------------------------------
def _gd(gap, noise=0.001, seeds=20):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(seeds):
        closed = 400.0 + 50 * rng.standard_normal()
        for n in (200, 30):
            rows.append(dict(n=n, mc_seed=i, method="lora_closed", init_scale=0.0, risk=closed))
            for s in (1.0, 0.001):
                g = gap if (n == 30 and s == 1.0) else 0.0
                e = noise * rng.standard_normal()
                pair = [(False, closed * (1 + g + e))] + ([(True, closed * (1 + g - e))] if n == 30 else [])
                for anti, risk in pair:
                    rows.append(dict(n=n, mc_seed=i, method="lora_gd", init_scale=s, antithetic=anti, risk=risk))
    params = dict(over_n=200, over_rtol=0.02, under_n=30, peft_init_min_gap=0.005, tiny_init_rtol=0.001,
                  tiny_scale=0.001)
    return {"gd": pd.DataFrame(rows)}, params


# practical (claims 10-12) -----------------------------------------------------------------------
def _practical(fft64, lora8_64, head512=0.64):
    acc = {("head", 0, 64): 0.62, ("head", 0, 512): head512, ("fft", 0, 64): fft64, ("fft", 0, 512): 0.76,
           ("lora", 1, 64): 0.65, ("lora", 1, 512): 0.72, ("lora", 8, 64): lora8_64, ("lora", 8, 512): 0.75}
    return pd.DataFrame([dict(method=m, lora_rank=r, n=n, test_accuracy=a, selected=True) for (m, r, n), a in acc.items()])


def _spectrum(rank90):
    mods = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]
    return {"spectrum": pd.DataFrame([dict(layer=layer, module=m, rank_90=rank90, full_rank=384)
                                      for layer in range(2) for m in mods])}, \
        {"energy": 90, "max_fraction": 0.25, "modules": mods}


def _counts(lora1):
    t = pd.DataFrame([dict(method="lora", lora_rank=1, trainable_params=lora1),
                      dict(method="lora", lora_rank=8, trainable_params=338690),
                      dict(method="fft", lora_rank=0, trainable_params=22713986)])
    return {"params": t}, {"expected": {"lora1": 43010, "lora8": 338690, "fft": 22713986}}


def _llm(boolq_fft):
    t = pd.DataFrame([dict(task="boolq", method="fft", lora_rank=0, accuracy=boolq_fft),
                      dict(task="boolq", method="lora", lora_rank=1, accuracy=0.65)])
    return {"llm": t}, {"tol_pp": 3.0, "reference": {"boolq/fft/0": 82.2, "boolq/lora/1": 64.6}}


CASES = {
    "identities": {"PASS": lambda: _identities(1e-10), "FAIL": lambda: _identities(1e-3)},
    "fft_exact": {"PASS": lambda: _fft_cells(0.5, 5.0),  # +0.5% ± 0.3%: inside ±5%
                  "FAIL": lambda: _fft_cells(10.0, 5.0),  # +10% ± 0.6%
                  "INCONCLUSIVE": lambda: _fft_cells(4.0, 40.0, seeds=400)},  # +4% ± 7%: straddles 5%
    "firstorder": {"PASS": lambda: _firstorder(10.05, 0.1), "FAIL": lambda: _firstorder(10.5, 0.1),
                   "INCONCLUSIVE": lambda: _firstorder(10.15, 2.0)},
    "hybrid": {"PASS": lambda: _hybrid(110.0),  # r8: |110 − 100|/110 = 9.1% <= 10%
               "FAIL": lambda: _hybrid(130.0),
               "INCONCLUSIVE": lambda: _hybrid(111.0, std=60.0)},
    "hybrid_panels": {"PASS": lambda: _panels(104.0), "FAIL": lambda: _panels(160.0),
                      "INCONCLUSIVE": lambda: _panels(110.5, std=20.0)},
    "fig1_shape": {"PASS": lambda: _fig1(10.0), "FAIL": lambda: _fig1(30.0),
                   "INCONCLUSIVE": lambda: _fig1(19.0, std=20.0, n_seeds=100)},
    "fig3": {"PASS": lambda: _fig3(100.0), "FAIL": lambda: _fig3(400000.0),
             "INCONCLUSIVE": lambda: _fig3(249990.0, std=300.0)},
    "fig4": {"PASS": lambda: _fig4(2.52), "FAIL": lambda: _fig4(2.9),
             "INCONCLUSIVE": lambda: _fig4(2.62, std=0.5)},
    "fig2": {"PASS": lambda: _fig2(0.5), "FAIL": lambda: _fig2(0.8),
             "INCONCLUSIVE": lambda: _fig2(0.64, std=600.0)},
    "gd": {"PASS": lambda: _gd(0.01), "FAIL": lambda: _gd(0.0),
           "INCONCLUSIVE": lambda: _gd(0.0065, noise=0.01, seeds=5)},
    "practical_small_n": {"PASS": lambda: ({"practical": _practical(0.69, 0.70)}, {"n": 64, "ranks": [1, 8], "margin": 0.03}),
                          "FAIL": lambda: ({"practical": _practical(0.75, 0.66)}, {"n": 64, "ranks": [1, 8], "margin": 0.03})},
    "practical_vs_probe": {"PASS": lambda: ({"practical": _practical(0.69, 0.70)}, {"n_small": 64, "n_large": 512, "margin": 0.02}),
                           "FAIL": lambda: ({"practical": _practical(0.69, 0.70, head512=0.74)},
                                            {"n_small": 64, "n_large": 512, "margin": 0.02})},
    "practical_best_rank": {"PASS": lambda: ({"practical": _practical(0.69, 0.70)}, {}),
                            "FAIL": lambda: ({"practical": _practical(0.69, 0.70).query("method != 'lora'")}, {})},
    "spectrum_low_rank": {"PASS": lambda: _spectrum(40), "FAIL": lambda: _spectrum(200)},
    "finite_risks": {"PASS": lambda: ({"fig1": pd.DataFrame({"risk_mean": [1.0, 2.0]})}, {}),
                     "FAIL": lambda: ({"fig1": pd.DataFrame({"risk_mean": [1.0, np.inf]})}, {})},
    "accuracy_range": {"PASS": lambda: ({"practical": pd.DataFrame({"test_accuracy": [0.5, 0.9]})}, {}),
                       "FAIL": lambda: ({"practical": pd.DataFrame({"test_accuracy": [0.5, 1.2]})}, {})},
    "trainable_counts": {"PASS": lambda: _counts(43010), "FAIL": lambda: _counts(43011)},
    "llm_table": {"PASS": lambda: _llm(0.82), "FAIL": lambda: _llm(0.70)},
}
