"""Pure math of the linear fine-tuning model (docs/papers/lora_risk.md): data model, estimators, risk formulas.

Serves every synthetic artifact of lora_risk (fig1–fig5, claims 1–8). The data model and the
estimators are the authors' (arXiv 2605.19018, code `alizindari/lora-vs-fft`); the closed forms
(exact FFT risk, first-order LoRA risk, finite-SNR hybrid, crossover n*, rank rule) are this
project's and are labelled "prediction (ours)" wherever they are plotted.

Shapes: Δ (dy, dx); X (dx, n) with columns the samples; E, R, Y (dy, n). Everything here is a
free function of arrays and keyword-only numbers; randomness comes in as a RandomState.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import integrate, optimize

SPECTRA = ("gaussian", "constant", "fast_decay", "slow_decay", "exp_decay")


# data model (docs: data model) ----------------------------------------------------------------------
def spectrum_values(*, kind: str, true_rank: int, scale: float, decay: float) -> np.ndarray:
    """Singular values S_i, i = 0..r*-1, of a controlled-spectrum Δ (authors' `sv_decay_type`)."""
    i = np.arange(true_rank, dtype=float)
    if kind == "constant":
        return np.full(true_rank, float(scale))
    if kind in ("fast_decay", "exp_decay"):
        return scale * np.exp(-decay * i)
    if kind == "slow_decay":
        return scale / (i + 1.0) ** decay
    raise ValueError(f"spectrum {kind!r} has no fixed singular values; known: {', '.join(SPECTRA[1:])}")


def draw_delta(rs: np.random.RandomState, *, dx: int, dy: int, true_rank: int, spectrum: str,
               scale: float = 1.0, decay: float = 0.5) -> np.ndarray:
    """Δ* (dy, dx) in the authors' draw order (after A0). Gaussian: U V / sqrt(r*)."""
    if spectrum == "gaussian":
        u = rs.randn(dy, true_rank)
        v = rs.randn(true_rank, dx)
        return u @ v / math.sqrt(true_rank)
    u = np.linalg.qr(rs.randn(dy, true_rank))[0]
    v = np.linalg.qr(rs.randn(dx, true_rank))[0]
    s = spectrum_values(kind=spectrum, true_rank=true_rank, scale=scale, decay=decay)
    return (u * s) @ v.T


def draw_task(seed: int, *, dx: int, dy: int, n: int, true_rank: int, spectrum: str,
              scale: float = 1.0, decay: float = 0.5, sigma: float = 1.0):
    """One task of the authors' stream, seeded ``seed`` (= base_seed + seed index).

    Order of draws (legacy MT19937 stream, as ``np.random.seed``): A0, Δ, X, E.
    Returns (a0 (dy,dx), delta (dy,dx), x (dx,n), e (dy,n)) with E = sigma * randn.
    """
    rs = np.random.RandomState(seed)
    a0 = rs.randn(dy, dx)
    delta = draw_delta(rs, dx=dx, dy=dy, true_rank=true_rank, spectrum=spectrum, scale=scale, decay=decay)
    x = rs.randn(dx, n)
    e = sigma * rs.randn(dy, n)
    return a0, delta, x, e


# estimators (docs: estimators) ----------------------------------------------------------------------
def fft_estimate(r: np.ndarray, x: np.ndarray) -> np.ndarray:
    """FFT correction D̂_F = R X^† (least squares / min-norm interpolant); (..., dy, dx)."""
    return r @ np.linalg.pinv(x)


def lora_estimate(r: np.ndarray, x: np.ndarray, *, rank: int) -> np.ndarray:
    """LoRA correction, SVD form: D̂_L = [R V_x]_rank S_x^-1 U_x^T (min-norm global optimum)."""
    ux, sx, vxt = np.linalg.svd(x, full_matrices=False)
    keep = sx > sx.max(axis=-1, keepdims=True) * max(x.shape[-2:]) * np.finfo(float).eps
    m = int(keep.sum(axis=-1).min())
    ux, sx, vxt = ux[..., :m], sx[..., :m], vxt[..., :m, :]
    rv = r @ np.swapaxes(vxt, -1, -2)  # (..., dy, m)
    return truncate(rv, rank=rank) / sx[..., None, :] @ np.swapaxes(ux, -1, -2)


def lora_estimate_authors(r: np.ndarray, x: np.ndarray, *, rank: int) -> np.ndarray:
    """The authors' form: Σ̂ = XXᵀ/n, T = R X^† Σ̂^{1/2}, D̂_L = [T]_r Σ̂^{1/2 †}."""
    n = x.shape[-1]
    evals, evecs = np.linalg.eigh(x @ x.T / n)
    evals = np.clip(evals, 0.0, None)
    root = (evecs * np.sqrt(evals)) @ evecs.T
    tol = evals.max() * x.shape[0] * np.finfo(float).eps
    inv_root = (evecs * np.where(evals > tol, 1.0 / np.sqrt(np.where(evals > tol, evals, 1.0)), 0.0)) @ evecs.T
    t = r @ np.linalg.pinv(x) @ root
    return truncate(t, rank=rank) @ inv_root


def truncate(a: np.ndarray, *, rank: int) -> np.ndarray:
    """Best rank-``rank`` approximation [a]_rank (Eckart–Young) of a (..., p, q) array."""
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return (u[..., :rank] * s[..., None, :rank]) @ vt[..., :rank, :]


def training_loss(d: np.ndarray, r: np.ndarray, x: np.ndarray) -> float:
    """‖R − D X‖_F², the objective both LoRA forms minimise over rank-≤r D."""
    return float(np.sum((r - d @ x) ** 2))


# exact and first-order risks (docs: exact FFT risk, first-order LoRA risk) ------------------------------------------------------
def fft_risk_exact(*, n: float, dx: int, dy: int, sigma: float, delta_fro2: float) -> float:
    """E ‖D̂_F − Δ‖_F² for isotropic Gaussian X; inf for n in {dx-1, dx, dx+1} (interpolation peak)."""
    if n > dx + 1:
        return sigma**2 * dx * dy / (n - dx - 1)
    if n < dx - 1:
        return (1 - n / dx) * delta_fro2 + sigma**2 * dy * n / (dx - n - 1)
    return math.inf


def lora_risk_first_order(*, n: float, dx: int, dy: int, sigma: float, rank: int,
                          delta_fro2: float) -> float:
    """High-SNR risk of LoRA (exact as SNR → ∞ when rank = rank(Δ)): null-space bias + variance."""
    m, big = min(n, dx), max(n, dx)
    if big - m - 1 <= 0:
        return math.inf
    null = max(1 - n / dx, 0.0) * delta_fro2
    if rank >= min(dy, m):
        return null + sigma**2 * dy * m / (big - m - 1)
    return null + sigma**2 * (rank * m / (big - m - 1) + (dy - rank) * rank / (big - rank - 1))


def inspan_first_order(*, n: float, dx: int, dy: int, sigma: float, rank: int | None) -> float:
    """The variance (in-span) part of the first-order formulas; rank None = FFT (§3.4 table)."""
    m, big = min(n, dx), max(n, dx)
    if big - m - 1 <= 0:
        return math.inf
    if rank is None or rank >= min(dy, m):
        return sigma**2 * dy * m / (big - m - 1)
    return sigma**2 * (rank * m / (big - m - 1) + (dy - rank) * rank / (big - rank - 1))


# finite-SNR hybrid (docs: hybrid prediction) --------------------------------------------------------------
def spike_error(x: np.ndarray, c: float) -> np.ndarray:
    """e(x) of Benaych-Georges–Nadakuditi for a detectable spike of normalised size x > c^{1/4}."""
    y = np.sqrt((x**2 + 1) * (x**2 + c)) / x
    cl = np.sqrt((x**4 - c) / (x**4 + c * x**2))
    cr = np.sqrt((x**4 - c) / (x**4 + x**2))
    return x**2 + y**2 - 2 * x * y * cl * cr


@lru_cache(maxsize=4096)
def mp_top_quantiles(p: int, q: int) -> np.ndarray:
    """Eigenvalues λ_j, j = 1..p, of a p×q (p ≤ q) noise matrix normalised by q, at MP quantile
    levels 1 − (j − ½)/p (descending). MP law with ratio c' = p/q on [(1−√c')², (1+√c')²]."""
    if p <= 0:
        return np.zeros(0)
    c = p / q
    lo, hi = (1 - math.sqrt(c)) ** 2, (1 + math.sqrt(c)) ** 2
    grid = lo + (hi - lo) * (0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, 2001)))  # dense at edges
    dens = np.sqrt(np.clip((hi - grid) * (grid - lo), 0.0, None)) / (2 * math.pi * c * np.maximum(grid, 1e-300))
    cdf = integrate.cumulative_trapezoid(dens, grid, initial=0.0)
    cdf /= cdf[-1]
    levels = 1 - (np.arange(1, p + 1) - 0.5) / p
    return np.interp(levels, cdf, grid)


def hybrid_risk(*, n: float, dx: int, dy: int, sigma: float, svals: np.ndarray, rank: int) -> float:
    """Finite-SNR prediction (ours) of E‖D̂_L − Δ‖² for one Δ with singular values ``svals``."""
    s2 = np.sort(np.asarray(svals, dtype=float))[::-1] ** 2
    m, big = min(n, dx), max(n, dx)
    if big - m - 1 <= 0:
        return math.inf
    if rank >= min(dy, m):
        return fft_risk_exact(n=n, dx=dx, dy=dy, sigma=sigma, delta_fro2=float(s2.sum()))
    null = max(1 - n / dx, 0.0) * s2.sum()
    theta2 = s2 * m / dx
    tau2 = sigma**2 / big
    p, q = sorted((dy, m))
    c = p / q
    x = np.sqrt(theta2 / (tau2 * q))
    k = min(rank, int(np.sum(x > c**0.25)))
    lost = theta2[k:].sum()
    finite = float(np.sum(tau2 * q * (spike_error(x[:k], c) - (1 + c)))) if k else 0.0
    var = sigma**2 * (k * m / (big - m - 1) + (dy - k) * k / (big - k - 1))
    over = 0.0
    if rank > k:
        a, b = int(round(dy - k)), int(round(m - k))
        lam = mp_top_quantiles(min(a, b), max(a, b))
        over = sigma**2 * max(a, b) * lam[: rank - k].sum() / (big - m - 1)
    return float(null + lost + finite + var + over)


# what decides the winner (docs: what decides the winner) ----------------------------------------------------------
def rank_rule(*, svals: np.ndarray, n: float, dx: int, dy: int, sigma: float) -> int:
    """r_opt ≈ #{i: s_i² > σ²(dx+dy)/n} (n ≥ dx) or #{i: s_i² > σ²(n+dy)/n} (n < dx); at least 1."""
    thresh = sigma**2 * ((dx + dy) if n >= dx else (n + dy)) / n
    return max(1, int(np.sum(np.asarray(svals, dtype=float) ** 2 > thresh)))


def tail_energy(svals: np.ndarray, *, rank: int) -> float:
    """T_r = Σ_{i>r} s_i(Δ)²."""
    s = np.sort(np.asarray(svals, dtype=float))[::-1]
    return float(np.sum(s[rank:] ** 2))


def crossover_n_approx(*, svals: np.ndarray, rank: int, dx: int, dy: int, sigma: float) -> float:
    """n* ≈ σ²(dx − r)(dy − r)/T_r: LoRA(r) beats FFT for n < n* (overdetermined, n ≫ d)."""
    t = tail_energy(svals, rank=rank)
    return math.inf if t <= 0 else sigma**2 * (dx - rank) * (dy - rank) / t


def crossover_n(*, svals: np.ndarray, rank: int, dx: int, dy: int, sigma: float) -> float:
    """Root n > dx + 1 of T_r + σ²[r dx/(n−dx−1) + (dy−r) r/(n−r−1)] = σ² dx dy/(n−dx−1)."""
    t = tail_energy(svals, rank=rank)
    if t <= 0:
        return math.inf

    def gap(n: float) -> float:
        return t + sigma**2 * (rank * dx / (n - dx - 1) + (dy - rank) * rank / (n - rank - 1)
                               - dx * dy / (n - dx - 1))

    lo, hi = dx + 1 + 1e-9, max(10.0 * (dx + 2), 2 * crossover_n_approx(svals=svals, rank=rank, dx=dx, dy=dy, sigma=sigma))
    while gap(hi) < 0:
        hi *= 2
    return float(optimize.brentq(gap, lo, hi))


def hybrid_risk_ranks(*, n: float, dx: int, dy: int, sigma: float, svals: np.ndarray,
                      max_rank: int) -> np.ndarray:
    """``hybrid_risk`` for every rank r = 1..max_rank at once (vectorised over r; fig5 grids)."""
    s2 = np.sort(np.asarray(svals, dtype=float))[::-1] ** 2
    m, big = min(n, dx), max(n, dx)
    ranks = np.arange(1, max_rank + 1)
    if big - m - 1 <= 0:
        return np.full(max_rank, math.inf)
    fft = fft_risk_exact(n=n, dx=dx, dy=dy, sigma=sigma, delta_fro2=float(s2.sum()))
    null = max(1 - n / dx, 0.0) * s2.sum()
    theta2 = s2 * m / dx
    tau2 = sigma**2 / big
    p, q = sorted((dy, m))
    c = p / q
    x = np.sqrt(theta2 / (tau2 * q))
    ndet = int(np.sum(x > c**0.25))
    k = np.minimum(ranks, ndet)
    kept = np.concatenate([[0.0], np.cumsum(theta2)])
    lost = theta2.sum() - kept[np.minimum(k, theta2.size)]
    fin_terms = tau2 * q * (spike_error(x[:ndet], c) - (1 + c)) if ndet else np.zeros(0)
    finite = np.concatenate([[0.0], np.cumsum(fin_terms)])[k]
    var = sigma**2 * (k * m / (big - m - 1) + (dy - k) * k / (big - k - 1))
    a, b = int(round(dy - ndet)), int(round(m - ndet))
    lam = mp_top_quantiles(max(min(a, b), 0), max(a, b, 1))
    lam_cum = np.concatenate([[0.0], np.cumsum(lam)])
    extra = np.clip(ranks - k, 0, lam.size)
    over = sigma**2 * max(a, b) * lam_cum[extra] / (big - m - 1)
    out = null + lost + finite + var + over
    return np.where(ranks >= min(dy, m), fft, out)
