"""Spectral quantities of a mixing matrix (topology paper §3.2-§3.4, §3.7; Fig. 1, Tab. 1).

All functions are pure: they take a symmetric W or its eigenvalues and return numbers.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigvalsh

CLIP = 1.0 - 1e-12  # |λ_i| for i >= 2 is clipped below 1 before λ²/(1-λ²) (docs/papers/topology.md)


SYMMETRY_TOL = 1e-10


def eigenvalues(w: np.ndarray) -> np.ndarray:
    """Eigenvalues of a symmetric W, descending (λ_1 = 1 first for a connected graph). # (n,)

    Refuses a non-symmetric W (e.g. one period's product of a time-varying graph) instead of
    silently symmetrising it: use ``product_gap`` for those. Round-off asymmetry (<= 1e-10) is
    averaged away.
    """
    w = np.asarray(w, dtype=float)
    asym = float(np.max(np.abs(w - w.T))) if w.size else 0.0
    if asym > SYMMETRY_TOL:
        raise ValueError(f"W is not symmetric (max |W - Wᵀ| = {asym:.3g} > {SYMMETRY_TOL:g}); "
                         "use spectra.product_gap for non-symmetric or time-varying mixing")
    return eigvalsh((w + w.T) / 2.0)[::-1]


def product_gap(ws) -> float:
    """Spectral gap of a (possibly non-symmetric) doubly stochastic W or of one period's product.

    p = 1 - ‖P - J/n‖₂² with P = W_{m-1} ⋯ W_0 (the rate in E‖X P - X̄‖² <= (1-p) ‖X - X̄‖² of
    Koloskova et al. 2020); for a symmetric W it equals 1 - max_{i>=2} λ_i². Exact consensus in one
    period gives p = 1.
    """
    mats = [np.asarray(ws, dtype=float)] if np.ndim(ws) == 2 else [np.asarray(w, dtype=float) for w in ws]
    n = mats[0].shape[0]
    prod = np.eye(n)
    for w in mats:
        prod = w @ prod
    sigma = np.linalg.norm(prod - np.full((n, n), 1.0 / n), ord=2)
    return float(1.0 - min(sigma, 1.0) ** 2)


def _tail(lams: np.ndarray) -> np.ndarray:
    """λ_2..λ_n, clipped to |λ| <= CLIP; |λ| < 1e-12 (round-off of exact zeros) set to 0. # (n-1,)"""
    tail = np.clip(np.asarray(lams, dtype=float)[1:], -CLIP, CLIP)
    return np.where(np.abs(tail) < 1e-12, 0.0, tail)


def spectral_gap(lams: np.ndarray) -> float:
    """p = 1 - max_{i>=2} λ_i²."""
    return float(1.0 - np.max(_tail(lams) ** 2)) if len(lams) > 1 else 1.0


def t_gap(lams: np.ndarray) -> float:
    """Prior term (1-p)/p = max_{i>=2} λ_i²/(1-λ_i²)."""
    p = spectral_gap(lams)
    return float((1.0 - p) / p)


def t_new(lams: np.ndarray) -> float:
    """New term T_new = (1/n) Σ_{i>=2} λ_i²/(1-λ_i²)."""
    sq = _tail(lams) ** 2
    return float(np.sum(sq / (1.0 - sq)) / len(lams))


def stationary_consensus(lams: np.ndarray, *, eta_mu: float = 0.0) -> float:
    """lim (1/n) E‖X - X̄‖²_F / (d η² σ²) for pure-noise (or isotropic-quadratic) D-SGD (§3.7).

    ``eta_mu = 0`` gives T_new; otherwise (1/n) Σ_{i>=2} λ_i²/(1 - (1-ημ)² λ_i²).
    """
    sq = _tail(lams) ** 2
    return float(np.sum(sq / (1.0 - (1.0 - eta_mu) ** 2 * sq)) / len(lams))


def time_average_rel_se(lams: np.ndarray, *, samples: int, coords: int) -> float:
    """Predicted relative standard error of the time-averaged consensus error (§3.7 check).

    Mode i is an AR(1) with coefficient λ_i and stationary variance v_i ∝ λ_i²/(1-λ_i²); the time
    average of its square over ``samples`` rounds has variance ≈ 2 v_i² (1+λ_i²)/(1-λ_i²) / samples,
    and ``coords`` independent coordinates (chains x d) average out. Used to size the runs.
    """
    sq = _tail(lams) ** 2
    v = sq / (1.0 - sq)
    if v.sum() <= 0:
        return 0.0
    var = np.sum(2.0 * v**2 * (1.0 + sq) / (1.0 - sq)) / (samples * coords)
    return float(np.sqrt(var) / v.sum())


def summary(w: np.ndarray) -> dict[str, float]:
    """p, T_gap, T_new, λ_2 and the stochasticity errors of W, as a record."""
    w = np.asarray(w, dtype=float)
    lams = eigenvalues(w)
    return {"p": spectral_gap(lams), "T_gap": t_gap(lams), "T_new": t_new(lams),
            "lambda2": float(lams[1]) if len(lams) > 1 else 0.0,
            "symmetry_err": float(np.max(np.abs(w - w.T))),
            "row_sum_err": float(np.max(np.abs(w.sum(axis=1) - 1.0))),
            "col_sum_err": float(np.max(np.abs(w.sum(axis=0) - 1.0)))}


def transient_iterations(*, n: int, p: float, x: float) -> float:
    """Homogeneous transient count (up to L F_0/σ²): max(n³ X², n / p²) (topology paper, Tab. 1)."""
    return float(max(n**3 * x**2, n / p**2))


def loglog_slope(xs, ys) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)[0])


ANALYTIC_EXPONENTS = {  # topology paper Tab. 1 orders: (Prop. 1 prior, Theorem 1 new)
    "ring": ("n^7", "n^5"),
    "torus": ("n^5", "n^3 log^2 n"),
    "hypercube": ("n^3 log^2 n", "n^3"),
}
