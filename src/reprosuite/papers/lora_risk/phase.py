"""fig5: excess risk vs LoRA rank (U-curve, rank rule) and phase diagrams of log10(R_LoRA/R_FFT).

Theory (hybrid, ours) on a fine grid over (decay a or σ, log10 n/dx), for a fixed rank and for
the oracle rank; Monte Carlo check points of the authors' estimators on a coarse grid.
"""

from __future__ import annotations

import math

import numpy as np

from . import montecarlo, theory


def _axis(pc, count: int) -> np.ndarray:
    if pc.axis == "sigma":
        return np.logspace(math.log10(pc.axis_min), math.log10(pc.axis_max), count)
    return np.linspace(pc.axis_min, pc.axis_max, count)


def _spectra(pc, value: float, seeds: int) -> np.ndarray:
    """Singular values of Δ per seed (seeds, k): deterministic for controlled spectra."""
    decay = value if pc.axis == "decay" else pc.decay
    if pc.spectrum != "gaussian":
        return theory.spectrum_values(kind=pc.spectrum, true_rank=pc.true_rank, scale=pc.scale, decay=decay)[None]
    out = []
    for i in range(seeds):
        rs = np.random.RandomState(pc.base_seed + i)
        rs.randn(pc.dy, pc.dx)  # A0 first, as in the authors' stream
        delta = theory.draw_delta(rs, dx=pc.dx, dy=pc.dy, true_rank=pc.true_rank, spectrum="gaussian")
        out.append(np.linalg.svd(delta, compute_uv=False)[: pc.true_rank])
    return np.array(out)


def theory_grid(pc, *, part: str):
    """Rows of the hybrid phase diagram: fixed rank and oracle rank (ours)."""
    spectra_cache = None if pc.axis == "decay" else _spectra(pc, 0.0, pc.theory_seeds)
    for value in _axis(pc, pc.theory_grid):
        spectra = spectra_cache if spectra_cache is not None else _spectra(pc, value, 1)
        sigma = value if pc.axis == "sigma" else pc.sigma
        for t in np.linspace(pc.log_ratio_min, pc.log_ratio_max, pc.theory_grid):
            n = pc.dx * 10.0**t
            if abs(n - pc.dx) <= 1.0:
                continue
            max_rank = max(1, int(min(pc.dy, min(n, pc.dx))))
            curves = np.mean([theory.hybrid_risk_ranks(n=n, dx=pc.dx, dy=pc.dy, sigma=sigma, svals=s,
                                                       max_rank=max_rank) for s in spectra], axis=0)
            fft = float(np.mean([theory.fft_risk_exact(n=n, dx=pc.dx, dy=pc.dy, sigma=sigma,
                                                       delta_fro2=float(np.sum(s**2))) for s in spectra]))
            fixed = curves[min(pc.rank, max_rank) - 1]
            best = int(np.argmin(curves)) + 1
            yield {"part": part, "source": "theory", "axis": pc.axis, "axis_value": float(value),
                   "sigma": float(sigma), "log10_n_over_dx": float(t), "n": float(n), "dx": pc.dx, "dy": pc.dy,
                   "lora_rank": pc.rank, "risk_fft": fft, "risk_lora": float(fixed),
                   "risk_oracle": float(curves[best - 1]), "oracle_rank": best,
                   "log10_ratio_rank": math.log10(fixed / fft), "log10_ratio_oracle": math.log10(curves[best - 1] / fft)}


def mc_grid(pc, *, part: str, progress):
    """Monte Carlo check points: mean risk over mc_seeds of FFT, LoRA(rank) and the best rank."""
    seeds = [pc.base_seed + i for i in range(pc.mc_seeds)]
    ns = []
    for t in np.linspace(pc.log_ratio_min, pc.log_ratio_max, pc.mc_grid):
        n = int(round(pc.dx * 10.0**t))
        ns.append(n + 2 if abs(n - pc.dx) <= 1 else n)  # avoid the interpolation peak
    values = _axis(pc, pc.mc_grid)
    cells = [(n, v) for n in ns for v in (values if pc.axis == "decay" else [None])]
    for n, value in progress(cells, desc=part):
        delta, x, e = montecarlo.draw_batch(seeds=seeds, dx=pc.dx, dy=pc.dy, n=n, true_rank=pc.true_rank,
                                            spectrum=pc.spectrum, scale=pc.scale,
                                            decay=value if pc.axis == "decay" else pc.decay)
        design = montecarlo.Design(delta, x)
        ranks = range(1, max(1, min(pc.dy, design.m)))
        for v in (values if pc.axis == "sigma" else [value]):
            sigma = v if pc.axis == "sigma" else pc.sigma
            errs = design.errors(sigma * e, ranks=ranks)
            fft = float(np.mean(errs["fft"] + design.null))
            means = {r: float(np.mean(errs[r] + design.null)) for r in ranks} or {0: fft}
            best = min(means, key=means.get)
            fixed = means.get(pc.rank, fft)
            yield {"part": part, "source": "mc", "axis": pc.axis, "axis_value": float(v), "sigma": float(sigma),
                   "log10_n_over_dx": math.log10(n / pc.dx), "n": float(n), "dx": pc.dx, "dy": pc.dy,
                   "lora_rank": pc.rank, "n_seeds": pc.mc_seeds, "risk_fft": fft, "risk_lora": fixed,
                   "risk_oracle": means[best], "oracle_rank": int(best),
                   "log10_ratio_rank": math.log10(fixed / fft), "log10_ratio_oracle": math.log10(means[best] / fft)}


def run_fig5(cfg, ctx, shard):
    """The shard's parts in turn (one job pays one start-up): rank (Monte Carlo + hybrid vs rank),
    {decay,sigma}_{theory,mc} (phase diagrams)."""
    ctx.use_dataset("synthetic_linear")
    for part in shard["parts"]:
        yield from _fig5_part(cfg, ctx, part)


def _fig5_part(cfg, ctx, part: str):
    if part == "rank":
        s = cfg.fig5.rank
        for row in montecarlo.sweep(dx=s.dx, dy=s.dy, ns=s.n, sigmas=s.sigma, true_ranks=s.true_rank,
                                    decays=s.decay, spectrum=s.spectrum, scale=s.scale, ranks=s.ranks,
                                    n_seeds=s.n_seeds, base_seed=s.base_seed, keys={"part": "rank"},
                                    progress=ctx.progress):
            yield dict(row, source="mc")
        return
    axis, kind = part.split("_")
    pc = getattr(cfg.fig5, f"phase_{axis}")
    if kind == "theory":
        yield from theory_grid(pc, part=part)
    else:
        yield from mc_grid(pc, part=part, progress=ctx.progress)
