"""C-F1 synthetic ripple (docs/papers/collateral.md §2.6): the unlearned-minus-retrain logit gap vs the ripple
coordinate ρ(x_q; x_f) = <x_q, x_f> / ||x_f||^2.

- ``ga_linear``: ridge regression (alpha 1e-6, no intercept) on X ~ N(0, I_d); gradient ascent on
  the deleted point's squared loss, lr = ga_lr / ||x_f||^2; 30 equal-width bins on [-1, 1].
- ``rl_logistic``: n < d, training = minimum-norm solution of X θ = logit(y), y = σ(X w_true);
  RL draws y_rand ~ Bernoulli(0.5) for x_f and descends its logistic loss; flip rate vs the
  retrain and variance of the logit shift over label draws, by the deleted point's confidence.
Pure numpy; rows are per (kind, confidence level, bin), averaged over runs.
"""

from __future__ import annotations

import numpy as np

LEVELS = {"low": (0.50, 0.65), "mid": (0.65, 0.80), "high": (0.80, 0.99)}


def ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1e-6) -> np.ndarray:
    """argmin ||Xθ - y||^2 + alpha ||θ||^2; x: (n, d) -> (d,)."""
    return np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y)


def ripple(xq: np.ndarray, xf: np.ndarray) -> np.ndarray:
    """ρ(x_q; x_f) for every row of xq (m, d) -> (m,)."""
    return xq @ xf / (xf @ xf)


def ga_linear_run(rng: np.random.Generator, n: int, d: int, steps: int, lr: float, noise: float,
                  n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """One deleted point: (ρ, squared gap) for n_test fresh test points."""
    x = rng.standard_normal((n, d))
    y = x @ rng.standard_normal(d) + noise * rng.standard_normal(n)
    theta = ridge(x, y)
    retrain = ridge(x[1:], y[1:])  # deleted point: index 0 (the draw is exchangeable)
    xf, yf = x[0], y[0]
    step = lr / (xf @ xf)
    for _ in range(steps):  # ascent on 0.5 (x_f^T θ - y_f)^2
        theta = theta + step * (xf @ theta - yf) * xf
    xq = rng.standard_normal((n_test, d))
    return ripple(xq, xf), (xq @ (theta - retrain)) ** 2


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def rl_logistic_run(rng: np.random.Generator, cfg, ) -> dict[str, np.ndarray | float]:
    """One deleted point, ``n_inner`` random-label draws: per test point ρ, mean squared gap,
    flip rate vs the retrain and variance of the logit shift."""
    n, d = cfg.rl_n, cfg.rl_dim
    x = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d) * cfg.rl_logit_scale / np.sqrt(d)
    target = x @ w_true  # logit(y) with y = σ(X w_true): soft labels
    theta0 = np.linalg.lstsq(x, target, rcond=None)[0]  # minimum-norm interpolant
    retrain = np.linalg.lstsq(x[1:], target[1:], rcond=None)[0]
    xf = x[0]
    conf = float(max(_sigmoid(xf @ theta0), 1 - _sigmoid(xf @ theta0)))
    xq = rng.standard_normal((cfg.n_test, d))
    base, ret = xq @ theta0, xq @ retrain
    step = cfg.rl_lr / (xf @ xf)
    gaps, flips, shifts = [], [], []
    for _ in range(cfg.n_inner):
        y_rand = float(rng.random() < 0.5)
        theta = theta0.copy()
        for _ in range(cfg.rl_steps):  # descent on the logistic loss of (x_f, y_rand)
            theta = (1 - cfg.rl_weight_decay) * theta + step * (y_rand - _sigmoid(xf @ theta)) * xf
        logits = xq @ theta
        gaps.append((logits - ret) ** 2)
        flips.append(np.sign(logits) != np.sign(ret))
        shifts.append(logits - base)
    return {"rho": ripple(xq, xf), "gap": np.mean(gaps, 0), "flip": np.mean(flips, 0),
            "shift_var": np.var(shifts, 0), "confidence": conf}


def _level(conf: float) -> str | None:
    return next((k for k, (lo, hi) in LEVELS.items() if lo <= conf < hi), None)


def _binned(rho, values: dict, edges) -> list[dict]:
    idx = np.clip(np.searchsorted(edges, rho, side="right") - 1, 0, len(edges) - 2)
    inside = (rho >= edges[0]) & (rho <= edges[-1])
    rows = []
    for b in range(len(edges) - 1):
        m = inside & (idx == b)
        row = {"bin": b, "bin_lo": float(edges[b]), "bin_hi": float(edges[b + 1]),
               "bin_centre": float(0.5 * (edges[b] + edges[b + 1])), "count": int(m.sum())}
        for k, v in values.items():
            row[k] = float(v[m].mean()) if m.any() else None
        rows.append(row)
    return rows


def run_fig1(cfg, ctx, shard):
    """Both settings in one job, each from its own stream (``ctx.numpy_rng(kind)``)."""
    ctx.use_dataset("synthetic_gaussian")
    yield from _ga_linear(cfg.fig1, ctx)
    yield from _rl_logistic(cfg.fig1, ctx)


def _ga_linear(f1, ctx):
    rng = ctx.numpy_rng("ga_linear")
    rho, gap = zip(*(ga_linear_run(rng, f1.ga_n_train, f1.ga_dim, f1.ga_steps, f1.ga_lr, f1.ga_noise_std,
                                   f1.n_test) for _ in ctx.progress(range(f1.n_runs), desc="fig1 ga")))
    rho, gap = np.concatenate(rho), np.concatenate(gap)
    rows = _binned(rho, {"sq_gap": gap}, np.linspace(-1.0, 1.0, f1.n_bins + 1))
    top = max(r["sq_gap"] for r in rows if r["sq_gap"] is not None)
    for r in rows:
        yield {"kind": "ga_linear", "level": "all", "n_runs": f1.n_runs, **r,
               "sq_gap_norm": None if r["sq_gap"] is None else r["sq_gap"] / top}


def _rl_logistic(f1, ctx):
    rng = ctx.numpy_rng("rl_logistic")
    runs = [rl_logistic_run(rng, f1) for _ in ctx.progress(range(f1.n_runs), desc="fig1 rl")]
    rho_all = np.concatenate([r["rho"] for r in runs])
    lo, hi = (-1.0, 1.0) if f1.rho_range == "fixed" else (rho_all.min(), rho_all.max())
    edges = np.linspace(lo, hi, f1.n_bins + 1)
    for level in ("all", *LEVELS):
        sel = [r for r in runs if level == "all" or _level(r["confidence"]) == level]
        if not sel:
            continue
        cat = {k: np.concatenate([r[k] for r in sel]) for k in ("rho", "gap", "flip", "shift_var")}
        rows = _binned(cat.pop("rho"), {"sq_gap": cat["gap"], "flip_rate": cat["flip"],
                                        "logit_shift_var": cat["shift_var"]}, edges)
        top = max((r["sq_gap"] for r in rows if r["sq_gap"] is not None), default=1.0)
        for r in rows:
            yield {"kind": "rl_logistic", "level": level, "n_runs": len(sel), **r,
                   "sq_gap_norm": None if r["sq_gap"] is None else r["sq_gap"] / top}
