"""Check cases of the certified paper: each check seen to PASS, FAIL and (seed-based) INCONCLUSIVE."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reprosuite.unlearning import accounting as A

REF = dict(eta=1e-4, lam=10.0, c0=0.01, c1=1.0)
TABLE = {0.5: [47.55, 0.253, [0.0378, 0.0535, 0.0756, 0.1196]], 1.0: [24.52, 0.510, [0.0191, 0.0270, 0.0382, 0.0604]]}
ACCT_PARAMS = dict(table=TABLE, q_tol=0.01, eps_q_tol=1e-3, sigma_tol=1e-4, argmin_tol=1e-6)


def _acct(bad_sigma: float = 0.0, bad_tft: float = 0.0, bad_compose: float = 0.0, geometry_err: float = 1e-7,
          cov_err: float = 0.02) -> pd.DataFrame:
    rows = []
    for eps in TABLE:
        q = A.optimal_order(eps=eps, delta=1e-5)
        eq = A.rdp_budget(eps=eps, delta=1e-5, q=q)
        s1 = A.noise_sigma(eps_q=eq, q=q, **REF)
        for policy in ("shared", "scaled"):
            for k in (1, 2, 4, 10):
                p = A.plan(eps=eps, delta=1e-5, k=k, policy=policy, **REF)
                b = p.blocks[0]
                rows.append({"kind": "table", "constants": "reference", **REF, "epsilon": eps, "k": k,
                             "block_constants": policy, "q": q, "q_numeric": q, "eps_q": eq,
                             "sigma": b.sigma + bad_sigma, "sigma_k1": s1, "t_ft": b.t_ft,
                             "eps_composed": p.eps_composed + bad_compose, "eps_q_composed": eq,
                             "sigma_koloskova_xstar": s1, "sigma_koloskova_tft": s1 * (1 + 1e-6 + bad_tft),
                             "lam_c0_lt_c1": True})
    for mode in ("qr", "perm_identity"):
        rows.append({"kind": "geometry", "blocks_mode": mode, "orthonormality_error": geometry_err,
                     "partition_error": geometry_err, "covariance_rel_error": cov_err, "draws": 1000})
    return pd.DataFrame(rows)


def _summary(post: dict, *, n_seeds=5, noise=0.01, base=0.93, variant="shared", eps=(1.0,), seed=0, **extra) -> pd.DataFrame:
    """Summary rows: post-noise accuracy per k = post[k] + seed noise (paired: shared seed effect)."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in eps:
        shared = rng.normal(0, noise, n_seeds)
        for k, v in post.items():
            own = rng.normal(0, noise / 3, n_seeds)
            for s in range(n_seeds):
                rows.append({"row": "summary", "row_key": "mnist", "variant": variant, "epsilon": e, "k": k,
                             "seed": s, "base_accuracy": base, "post_noise_accuracy": v + shared[s] + own[s],
                             "finetuned": True, **{c: (f(k, s) if callable(f) else f) for c, f in extra.items()}})
    return pd.DataFrame(rows)


def _claim6(post, noise=0.01):
    return {"nft": _summary(post, noise=noise)}, dict(variant="shared", gain=0.03, lo_acc=0.15, base_margin=0.05,
                                                      ks=[2, 4, 10], k_max=10)


def _mechanism(ratio: float, spread: float) -> dict:
    rng = np.random.default_rng(0)
    rows = [{"block_constants": "scaled", "k": k, "draw": d, "energy": 100.0 * (ratio if k == 10 else 1.0) * (1 + rng.normal(0, spread))}
            for k in (1, 10) for d in range(20)]
    return {"mechanism": pd.DataFrame(rows)}


def _curves(delta: float) -> dict:
    rows = []
    rng = np.random.default_rng(1)
    for k in (1, 4):
        for s in range(3):
            for step in range(0, 601, 20):
                acc = 0.9 - 0.6 * math.exp(-step / 100) + (delta if k == 4 else 0.0) + rng.normal(0, 0.002)
                rows.append({"row": "curve", "variant": "scaled", "row_key": "mnist", "epsilon": 1.0, "k": k,
                             "seed": s, "step": step, "test_accuracy": acc})
    return {"nft": pd.DataFrame(rows)}


def _final(gap: float, noise: float, col="test_accuracy_final", ref="retrain_test_accuracy", scale=1.0) -> dict:
    rng = np.random.default_rng(2)
    rows = []
    for k in (1, 2, 4, 10):
        for s in range(3):
            rows.append({"row": "summary", "row_key": "mnist", "variant": "scaled", "epsilon": 1.0, "k": k, "seed": s,
                         "finetuned": True, col: scale * (0.92 + gap + rng.normal(0, noise)), ref: scale * 0.92})
    return {"nft": pd.DataFrame(rows)}


def _cheap(steps: int) -> dict:
    nft = pd.DataFrame([{"row": "summary", "row_key": "mnist", "finetuned": True, "gradient_steps": steps}])
    models = pd.DataFrame([{"row": "final", "row_key": "mnist", "role": "retrain", "train_steps": 6000}])
    return {"nft": nft, "models": models}


def _sanity(base: float, c0: float) -> dict:
    nft = _summary({1: 0.3}, base=base, lam=2.0, c0=c0, c1=0.15)
    return {"nft": nft, "accounting": _acct()}


CASES = {
    "accounting_table": {"PASS": lambda: ({"accounting": _acct()}, ACCT_PARAMS),
                         "FAIL": lambda: ({"accounting": _acct(bad_sigma=1e-3)}, ACCT_PARAMS)},
    "koloskova_consistency": {"PASS": lambda: ({"accounting": _acct()}, dict(rtol_xstar=1e-9, rtol_tft=1e-4)),
                              "FAIL": lambda: ({"accounting": _acct(bad_tft=1e-3)}, dict(rtol_xstar=1e-9, rtol_tft=1e-4))},
    "composition": {"PASS": lambda: ({"accounting": _acct()}, dict(tol=1e-9, rtol_sigma=1e-9)),
                    "FAIL": lambda: ({"accounting": _acct(bad_compose=1e-6)}, dict(tol=1e-9, rtol_sigma=1e-9))},
    "geometry": {"PASS": lambda: ({"accounting": _acct()}, dict(ortho_tol=1e-5, cov_rtol=0.05)),
                 "FAIL": lambda: ({"accounting": _acct(cov_err=0.08)}, dict(ortho_tol=1e-5, cov_rtol=0.05))},
    "nft_collapses": {
        "PASS": lambda: ({"nft": _summary({1: 0.2})}, dict(drop=0.2)),
        "FAIL": lambda: ({"nft": _summary({1: 0.9})}, dict(drop=0.2)),
        "INCONCLUSIVE": lambda: ({"nft": _summary({1: 0.73}, noise=0.05)}, dict(drop=0.2))},
    "block_avoids_collapse": {
        "PASS": lambda: _claim6({1: 0.30, 2: 0.36, 4: 0.40, 10: 0.38}),
        "FAIL": lambda: _claim6({1: 0.30, 2: 0.25, 4: 0.24, 10: 0.22}),
        "INCONCLUSIVE": lambda: _claim6({1: 0.30, 2: 0.33, 4: 0.33, 10: 0.33}, noise=0.06)},
    "mechanism_equivalence": {
        "PASS": lambda: (_mechanism(1.0, 0.001), dict(k_ref=1, k_test=10, rtol=0.03)),
        "FAIL": lambda: (_mechanism(1.2, 0.001), dict(k_ref=1, k_test=10, rtol=0.03)),
        "INCONCLUSIVE": lambda: (_mechanism(1.02, 0.05), dict(k_ref=1, k_test=10, rtol=0.03))},
    "better_curve": {"PASS": lambda: (_curves(0.02), dict(variant="scaled", frac_min=0.9)),
                     "FAIL": lambda: (_curves(-0.02), dict(variant="scaled", frac_min=0.9))},
    "ends_near_retrain": {
        "PASS": lambda: (_final(0.0, 0.002), dict(variant="scaled", tol_pp=3.0)),
        "FAIL": lambda: (_final(-0.10, 0.002), dict(variant="scaled", tol_pp=3.0)),
        "INCONCLUSIVE": lambda: (_final(-0.025, 0.02), dict(variant="scaled", tol_pp=3.0))},
    "mia_close": {
        "PASS": lambda: (_final(0.0, 0.01, "mia_svc", "retrain_mia_svc", 10.0), dict(variant="scaled", tol=10.0)),
        "FAIL": lambda: (_final(5.0, 0.01, "mia_svc", "retrain_mia_svc", 10.0), dict(variant="scaled", tol=10.0)),
        "INCONCLUSIVE": lambda: (_final(0.9, 0.3, "mia_svc", "retrain_mia_svc", 10.0), dict(variant="scaled", tol=10.0))},
    "cheap": {"PASS": lambda: (_cheap(400), dict(ratio_max=0.1)), "FAIL": lambda: (_cheap(900), dict(ratio_max=0.1))},
    "sanity": {"PASS": lambda: (_sanity(0.93, 0.006), dict(chance_margin=0.5)),
               "FAIL": lambda: (_sanity(0.4, 0.006), dict(chance_margin=0.5))},
}
