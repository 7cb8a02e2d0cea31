"""Claim 2 (c2): the exact FFT risk tested at the sweep geometries with seeds sized to the tolerance.

The FFT excess risk splits exactly (docs/papers/lora_risk.md, "Estimators") into an in-span noise
term and the null-space bias:

    R_F = ‖G S_x⁻¹‖²_F + ‖Δ(I − P)‖²_F,    G = E V_x ∈ R^{dy×m} with iid N(0, σ²) entries,

where X = U_x S_x V_xᵀ is the thin SVD (m = min(n, dx) singular values) and P = U_x U_xᵀ. Given X,
G is again iid Gaussian, so a draw of the FFT risk needs only the eigenvalues (and, for n < dx,
the eigenvectors) of a Wishart matrix and a dy × m Gaussian block; X is rotation invariant, so a
fixed-spectrum Δ can be taken diagonal. That makes thousands of draws of a cell a matter of
seconds, batched over seeds.

Seeds are sized before the measurement: an independent pilot (its own random stream) measures the
per-seed spread of R_F minus the exact formula of that seed, and the cell then runs

    N = ⌈(3 · z · sd_rel / rtol)²⌉,  z = the two-sided normal quantile at the Bonferroni level,

capped at ``max_seeds``, so the expected interval half-width is at most a third of the tolerance.
Only cells with |n − dx| ≥ ``min_gap`` are drawn: the FFT risk has tail index (|n − dx| + 1)/2, so
its variance is infinite for |n − dx| < 4 and a mean is not a well-posed target there.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

from . import theory


@dataclasses.dataclass(frozen=True)
class Family:
    """A Δ distribution at one sweep point: a panel name, its spectrum and true rank."""

    panel: str
    spectrum: str
    true_rank: int
    scale: float
    decay: float
    keys: dict


def _families(cfg, min_gap: int) -> dict[tuple, list[Family]]:
    """Geometry (dx, dy, σ, n) -> the Δ families drawn there (fig1 both panels, fig2, fig4)."""
    geoms: dict[tuple, list[Family]] = {}

    def add(sweep, panel, spectrum, scale, a, true_ranks):
        for n in sweep.n:
            if abs(n - sweep.dx) < min_gap:
                continue
            for sigma in sweep.sigma:
                for k in true_ranks:
                    geoms.setdefault((sweep.dx, sweep.dy, float(sigma), int(n)), []).append(
                        Family(panel, spectrum, int(k), float(scale), float(a), {"true_rank": int(k), "decay": float(a)}))

    for panel in ("gauss", "decay"):
        s = getattr(cfg.fig1, panel)
        for a in s.decay:
            add(s, f"fig1/{panel}", s.spectrum, s.scale, a, s.true_rank)
    f2 = cfg.fig2
    for variant in f2.variants:
        a = {"fast_decay": f2.fast_decay, "slow_decay": f2.slow_decay}.get(variant, 0.0)
        add(f2.sweep, f"fig2/{variant}", variant, f2.scale, a, f2.sweep.true_rank)
    s = cfg.fig4
    for a in s.decay:
        add(s, "fig4", s.spectrum, s.scale, a, s.true_rank)
    return geoms


def _chunk(rng: np.random.Generator, size: int, *, dx: int, dy: int, n: int, sigma: float,
           families: list[Family]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-seed FFT risk and exact formula for every family, from one shared draw of X and G."""
    x = rng.standard_normal((size, dx, n))
    m, big = min(n, dx), max(n, dx)
    g = rng.standard_normal((size, dy, m))
    if n >= dx:
        w = np.linalg.eigvalsh(x @ np.swapaxes(x, 1, 2))  # s_x², (S, dx)
        rows = None
    else:
        w, v = np.linalg.eigh(np.swapaxes(x, 1, 2) @ x)  # (S, n), (S, n, n)
        ux = x @ v / np.sqrt(w)[:, None, :]  # (S, dx, n): orthonormal basis of span(X)
        rows = np.sum(ux**2, axis=2)  # ‖e_iᵀ U_x‖², (S, dx)
    noise = sigma**2 * np.sum(g**2 / w[:, None, :], axis=(1, 2))
    out = []
    for fam in families:
        if fam.spectrum == "gaussian":  # Δ = U V / √r*
            u = rng.standard_normal((size, dy, fam.true_rank))
            vv = rng.standard_normal((size, fam.true_rank, dx))
            fro2 = np.sum((u @ vv) ** 2, axis=(1, 2)) / fam.true_rank
            inspan = (np.sum((u @ (vv @ ux)) ** 2, axis=(1, 2)) / fam.true_rank) if rows is not None else fro2
        else:  # fixed spectrum: by rotation invariance of X, Δ = diag(s) (embedded in dy × dx)
            s2 = theory.spectrum_values(kind=fam.spectrum, true_rank=fam.true_rank, scale=fam.scale,
                                        decay=fam.decay) ** 2
            fro2 = np.full(size, s2.sum())
            inspan = rows[:, : len(s2)] @ s2 if rows is not None else fro2
        risk = noise + np.clip(fro2 - inspan, 0.0, None)
        formula = (max(1 - n / dx, 0.0) * fro2 + sigma**2 * dy * m / (big - m - 1))
        out.append((risk, formula))
    return out


def _draw(rng, seeds: int, chunk: int, **kw) -> list[tuple[np.ndarray, np.ndarray]]:
    parts = [_chunk(rng, min(chunk, seeds - i), **kw) for i in range(0, seeds, chunk)]
    return [(np.concatenate([p[j][0] for p in parts]), np.concatenate([p[j][1] for p in parts]))
            for j in range(len(parts[0]))]


def run_fft_cells(cfg, ctx, shard):
    """c2: one record per (panel, n, r*, decay) cell with the FFT risk and its exact formula."""
    c = cfg.fft_cells
    ctx.use_dataset("synthetic_linear")
    geoms = _families(cfg, c.min_gap)
    n_cells = sum(len(f) for f in geoms.values())
    z = float(stats.norm.ppf(1 - (1 - c.level) / (2 * max(n_cells, 1))))
    for (dx, dy, sigma, n), fams in ctx.progress(list(geoms.items()), desc="fft cells"):
        kw = dict(dx=dx, dy=dy, n=n, sigma=sigma, families=fams)
        tag = f"{dx}-{dy}-{sigma:g}-{n}"
        pilot = _draw(ctx.numpy_rng(f"fft-pilot-{tag}"), c.pilot_seeds, c.chunk, **kw)
        sd_rel = max(float(np.std(r - f, ddof=1) / np.mean(f)) for r, f in pilot)
        target = math.ceil((3 * z * sd_rel / c.size_rtol) ** 2)
        seeds = int(min(max(target, c.min_seeds), c.max_seeds))
        main = _draw(ctx.numpy_rng(f"fft-{tag}"), seeds, c.chunk, **kw)
        for fam, (risk, formula) in zip(fams, main):
            resid = risk - formula
            yield dict(fam.keys, panel=fam.panel, spectrum=fam.spectrum, dx=dx, dy=dy, sigma=sigma, n=n,
                       gap=abs(n - dx), n_seeds=seeds, seeds_target=target, capped=bool(target > c.max_seeds),
                       pilot_seeds=c.pilot_seeds, pilot_sd_rel=sd_rel, bonferroni_cells=n_cells,
                       risk_mean=float(risk.mean()), risk_std=float(risk.std(ddof=1)),
                       risk_median=float(np.median(risk)), theory_exact=float(formula.mean()),
                       resid_mean=float(resid.mean()), resid_std=float(resid.std(ddof=1)))
