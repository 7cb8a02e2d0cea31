"""Batched Monte Carlo of the authors' estimators (docs/papers/lora_risk.md, "Monte Carlo"), shared by fig1–fig5 and claims 2–8.

Per seed: draw (Δ, X, E) from the authors' stream reseeded at base_seed + seed (common random
numbers across sweep points); compute D̂_F and D̂_L(r) for every rank from the same draw, all
seeds at once with batched SVDs; record ‖D̂ − Δ‖_F². Uses the exact decomposition (docs/papers/lora_risk.md, "LoRA risk"):
in-span error ‖(M − Θ) S_x⁻¹‖² plus the shared null-space bias ‖Δ(I − P)‖².
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from . import theory


def draw_batch(*, seeds: Iterable[int], dx: int, dy: int, n: int, true_rank: int, spectrum: str,
               scale: float, decay: float):
    """Stacked draws of every seed: Δ (S,dy,dx), X (S,dx,n), unit-variance E (S,dy,n)."""
    deltas, xs, es = [], [], []
    for seed in seeds:
        _, delta, x, e = theory.draw_task(seed, dx=dx, dy=dy, n=n, true_rank=true_rank,
                                          spectrum=spectrum, scale=scale, decay=decay, sigma=1.0)
        deltas.append(delta)
        xs.append(x)
        es.append(e)
    return np.stack(deltas), np.stack(xs), np.stack(es)


class Design:
    """The SVD of X and the signal part for a batch of seeds; reused across noise levels."""

    def __init__(self, delta: np.ndarray, x: np.ndarray):
        ux, sx, vxt = np.linalg.svd(x, full_matrices=False)  # (S,dx,m), (S,m), (S,m,n)
        self.delta, self.x, self.sx, self.vxt = delta, x, sx, vxt
        self.m = sx.shape[-1]
        du = delta @ ux  # (S,dy,m)
        self.null = np.sum(delta**2, axis=(1, 2)) - np.sum(du**2, axis=(1, 2))  # ‖Δ(I−P)‖², (S,)
        self.null = np.clip(self.null, 0.0, None)
        self.theta = du * sx[:, None, :]  # Θ = Δ U_x S_x = Δ X V_x, (S,dy,m)

    def errors(self, e: np.ndarray, *, ranks: Iterable[int]) -> dict:
        """Per-seed in-span errors for FFT and each LoRA rank; noise E (S,dy,n) already scaled."""
        rv = self.theta + e @ np.swapaxes(self.vxt, 1, 2)  # R V_x = Θ + E V_x, (S,dy,m)
        w = 1.0 / self.sx[:, None, :]
        out = {"fft": np.sum(((rv - self.theta) * w) ** 2, axis=(1, 2))}
        u, s, vt = np.linalg.svd(rv, full_matrices=False)  # (S,dy,k), (S,k), (S,k,m)
        dy = rv.shape[1]
        running = -self.theta.copy()
        done = 0
        for r in sorted(set(int(r) for r in ranks)):
            # the real rank-r estimator at every r: for r >= min(dy, m) every singular value is kept and
            # the result equals FFT only up to rounding (claim 8 and its test can fail)
            k = min(r, dy, self.m)
            if k > done:
                running += np.einsum("sdk,sk,skm->sdm", u[:, :, done:k], s[:, done:k], vt[:, done:k, :])
                done = k
            out[r] = np.sum((running * w) ** 2, axis=(1, 2))
        return out


def samples(*, seeds, dx: int, dy: int, n: int, true_rank: int, spectrum: str, scale: float, decay: float,
            sigmas: Iterable[float], ranks: Iterable[int], chunk: int = 1000):
    """Per-seed errors of one (n, r*, decay) point at every σ, drawn in chunks of seeds (memory).

    Returns ({σ: {method: per-seed total risk}}, per-seed ‖Δ(I−P)‖², per-seed singular values of Δ, m).
    """
    seeds, sigmas = list(seeds), [float(v) for v in sigmas]
    parts: dict = {sg: {} for sg in sigmas}
    nulls, svs, m = [], [], None
    for i in range(0, len(seeds), chunk):
        delta, x, e = draw_batch(seeds=seeds[i:i + chunk], dx=dx, dy=dy, n=n, true_rank=true_rank,
                                 spectrum=spectrum, scale=scale, decay=decay)
        design = Design(delta, x)
        m = design.m
        nulls.append(design.null)
        svs.append(delta_svals(delta, true_rank) if spectrum == "gaussian" else np.tile(
            theory.spectrum_values(kind=spectrum, true_rank=true_rank, scale=scale, decay=decay), (len(x), 1)))
        for sg in sigmas:
            for key, val in design.errors(sg * e, ranks=ranks).items():
                parts[sg].setdefault(key, []).append(val)
    null = np.concatenate(nulls)
    return ({sg: {k: np.concatenate(v) for k, v in d.items()} for sg, d in parts.items()}, null,
            np.concatenate(svs), m)


MEDIAN_LEVEL = 0.995  # the median's distribution-free interval (two of them make a 99% ratio interval)


def summary(values: np.ndarray, prefix: str = "risk") -> dict:
    """Mean, std, median and quartiles over seeds; for the risk also the median's order-statistic
    interval (scipy.stats.quantile_test) at MEDIAN_LEVEL."""
    q25, med, q75 = np.percentile(values, [25, 50, 75])
    out = {f"{prefix}_mean": float(values.mean()), f"{prefix}_std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
           f"{prefix}_median": float(med), f"{prefix}_q25": float(q25), f"{prefix}_q75": float(q75)}
    if prefix == "risk" and values.size >= 20:
        from scipy.stats import quantile_test

        ci = quantile_test(values, q=float(med), p=0.5).confidence_interval(MEDIAN_LEVEL)
        out[f"{prefix}_median_lo"], out[f"{prefix}_median_hi"] = float(ci.low), float(ci.high)
    return out


def finite_only(record: dict) -> dict:
    """Drop non-finite theory values (interpolation peak) so the runner does not flag divergence."""
    return {k: v for k, v in record.items()
            if not (isinstance(v, float) and not math.isfinite(v))}


def point_records(*, errs: dict, null: np.ndarray, m: int, sigma: float, n: int, dx: int, dy: int,
                  ranks: Iterable[int], svals: np.ndarray, keys: dict, hybrid_spectra: int | None = None) -> list[dict]:
    """Rows for one sweep point: one per method (FFT and each LoRA rank) with MC stats and theory.

    ``errs``: per-seed in-span errors per method; ``null``: per-seed ‖Δ(I−P)‖²; ``svals`` (S, k):
    per-seed singular values of Δ, for the hybrid prediction (ours), averaged over the first
    ``hybrid_spectra`` seeds (all when None).
    """
    ranks = tuple(int(r) for r in ranks)
    fro2 = np.sum(svals**2, axis=1)  # (S,)
    base = dict(keys, n=int(n), dx=int(dx), dy=int(dy), sigma=float(sigma), m=int(m),
                n_seeds=int(len(fro2)),
                delta_fro2=float(fro2.mean()),
                rule_rank=int(np.median([theory.rank_rule(svals=s, n=n, dx=dx, dy=dy, sigma=sigma) for s in svals])))
    fft_theory = float(np.mean([theory.fft_risk_exact(n=n, dx=dx, dy=dy, sigma=sigma, delta_fro2=f) for f in fro2]))
    rows = [finite_only(dict(base, method="fft", label="FFT", **summary(errs["fft"] + null),
                             **summary(errs["fft"], "inspan"), null_mean=float(null.mean()),
                             theory_exact=fft_theory, theory_hybrid=fft_theory,
                             theory_first_order=fft_theory,
                             theory_inspan=theory.inspan_first_order(n=n, dx=dx, dy=dy, sigma=sigma, rank=None)))]
    distinct = svals if not np.allclose(svals, svals[:1], rtol=1e-9, atol=1e-12) else svals[:1]
    distinct = distinct[:hybrid_spectra] if hybrid_spectra else distinct
    for r in ranks:
        hyb = float(np.mean([theory.hybrid_risk(n=n, dx=dx, dy=dy, sigma=sigma, svals=s, rank=r) for s in distinct]))
        first = float(np.mean([theory.lora_risk_first_order(n=n, dx=dx, dy=dy, sigma=sigma, rank=r, delta_fro2=f)
                               for f in fro2]))
        rows.append(finite_only(dict(base, method="lora", label=f"LoRA r={r}", lora_rank=r,
                                     **summary(errs[r] + null), **summary(errs[r], "inspan"),
                                     null_mean=float(null.mean()),
                                     theory_hybrid=hyb, theory_first_order=first,
                                     theory_inspan=theory.inspan_first_order(n=n, dx=dx, dy=dy, sigma=sigma, rank=r),
                                     max_abs_diff_to_fft=float(np.max(np.abs(errs[r] - errs["fft"]))))))
    return rows


def delta_svals(delta: np.ndarray, true_rank: int) -> np.ndarray:
    """Per-seed singular values of Δ (S, min(r*, dy, dx)), descending."""
    s = np.linalg.svd(delta, compute_uv=False)
    return s[:, : min(true_rank, s.shape[1])]


def sweep(*, dx: int, dy: int, ns: Iterable[int], sigmas: Iterable[float], true_ranks: Iterable[int],
          decays: Iterable[float], spectrum: str, scale: float, ranks: Iterable[int], n_seeds: int,
          base_seed: int, keys: dict | None = None, progress=lambda it, **kw: it):
    """Every point of the product grid n × r* × decay × σ; X and E are reused across σ."""
    seeds = [base_seed + s for s in range(n_seeds)]
    grid = [(n, k, a) for n in ns for k in true_ranks for a in decays]
    svals_cache: dict = {}  # Δ does not depend on n (drawn before X): its spectrum is computed once
    for n, k, a in progress(grid, desc="points"):
        delta, x, e = draw_batch(seeds=seeds, dx=dx, dy=dy, n=n, true_rank=k, spectrum=spectrum,
                                 scale=scale, decay=a)
        design = Design(delta, x)
        errs_all = {sigma: design.errors(sigma * e, ranks=ranks) for sigma in sigmas}
        if (k, a) not in svals_cache:
            svals_cache[k, a] = (delta_svals(delta, k) if spectrum == "gaussian" else np.tile(
                theory.spectrum_values(kind=spectrum, true_rank=k, scale=scale, decay=a), (len(seeds), 1)))
        svals = svals_cache[k, a]
        for sigma in sigmas:
            yield from point_records(errs=errs_all[sigma], null=design.null, m=design.m, sigma=sigma, n=n, dx=dx,
                                     dy=dy, ranks=ranks,
                                     svals=svals, keys=dict(keys or {}, true_rank=int(k), decay=float(a),
                                                            spectrum=spectrum, spectrum_scale=float(scale)))
