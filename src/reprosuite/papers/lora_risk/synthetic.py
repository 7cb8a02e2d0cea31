"""Experiment functions of the synthetic part: claims 1, 3, 4 and the sweeps of fig1–fig4.

Each yields long-format records (one per sweep point and method); Monte Carlo seeds are
base_seed + i inside the job (common random numbers), so the runner seed is unused here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import montecarlo, theory

SYNTHETIC = "synthetic_linear"  # the authors' linear model: Gaussian X, noisy labels

# the hybrid's accuracy cells (docs/papers/lora_risk.md, "Hybrid"): (grid value, rank) with
# rank 0 = FFT; the pilot "MC / hybrid" values of our derivation, kept for reference
HYBRID_CELLS = {
    "f1like": dict(grid="n", dx=50, dy=50, true_rank=4, spectrum="gaussian", scale=1.0, decay=0.5, sigma=1.0,
                   values=(25, 54, 100), base_seed=0,
                   cells={(54, 4): (71.4, 70.4), (54, 8): (271, 241), (54, 0): (812, 833), (100, 4): (6.05, 6.02),
                          (100, 8): (18.7, 16.4), (100, 1): (1570, 1530), (25, 4): (1290, 1270)}),
    "noise": dict(grid="sigma", dx=100, dy=100, n=1000, true_rank=10, spectrum="gaussian", scale=1.0, decay=0.5,
                  values=(32.0, 64.0, 100.0), base_seed=0,
                  cells={(32.0, 8): (2850, 2820), (32.0, 16): (4410, 4300), (64.0, 1): (9300, 9100),
                         (64.0, 8): (11400, 11700), (100.0, 1): (12100, 11700), (100.0, 8): (31300, 34900)}),
    "decay": dict(grid="decay", dx=40, dy=40, n=200, true_rank=40, spectrum="fast_decay", scale=5.0, sigma=0.5,
                  values=(1.0, 2.5), base_seed=42,
                  cells={(1.0, 1): (4.05, 4.03), (1.0, 2): (0.759, 0.754), (1.0, 4): (0.596, 0.586),
                         (1.0, 16): (2.02, 1.57), (2.5, 1): (0.281, 0.282), (2.5, 16): (2.04, 1.38)}),
    "rank": dict(grid="true_rank", dx=40, dy=40, n=30, spectrum="gaussian", scale=1.0, decay=0.5, sigma=2.0,
                 values=(4, 16), base_seed=0,
                 cells={(4, 4): (474, 472), (4, 8): (660, 634), (16, 1): (1396, 1376), (16, 8): (751, 726),
                        (16, 32): (929, 928)}),
}


def run_identities(cfg, ctx, shard):
    """Claim 1: SVD form = authors' Σ̂^{1/2} form; r ≥ min(dy, m) ⇒ LoRA = FFT; A0 is irrelevant."""
    c = cfg.identities
    ctx.use_dataset(SYNTHETIC)
    for i in range(c.n_cases):
        n = (c.dx // 2, 2 * c.dx + 3, c.dx - 3, c.dx + 4)[i % 4]
        rank = 1 + i % 3
        a0, delta, x, e = theory.draw_task(c.base_seed + i, dx=c.dx, dy=c.dy, n=n, true_rank=3,
                                           spectrum="gaussian", sigma=0.7)
        resid = delta @ x + e  # R = Y − A0 X, (dy, n)
        ours = theory.lora_estimate(resid, x, rank=rank)
        authors = theory.lora_estimate_authors(resid, x, rank=rank)
        l_ours, l_auth = theory.training_loss(ours, resid, x), theory.training_loss(authors, resid, x)
        m = min(n, c.dx)
        full = theory.lora_estimate(resid, x, rank=min(c.dy, m))
        fft = theory.fft_estimate(resid, x)
        # the same task with A0 = 0: Y' = Δ X + E, target Δ
        y = (a0 + delta) @ x + e
        err_a0 = np.sum((a0 + theory.lora_estimate(y - a0 @ x, x, rank=rank) - (a0 + delta)) ** 2)
        err_0 = np.sum((theory.lora_estimate(delta @ x + e, x, rank=rank) - delta) ** 2)
        yield {"case": i, "n": n, "dx": c.dx, "dy": c.dy, "lora_rank": rank,
               "regime": "over" if n > c.dx else "under",
               "objective_ours": l_ours, "objective_authors": l_auth,
               "objective_rel_diff": abs(l_ours - l_auth) / max(l_ours, 1e-300),
               "full_rank_max_abs_diff_to_fft": float(np.max(np.abs(full - fft))),
               "a0_rel_diff": float(abs(err_a0 - err_0) / err_0)}


def run_firstorder(cfg, ctx, shard):
    """Claim 3 / tab_firstorder: in-span risk, Monte Carlo vs first-order formula (ours)."""
    s = cfg.firstorder
    ctx.use_dataset(SYNTHETIC)
    yield from montecarlo.sweep(dx=s.dx, dy=s.dy, ns=s.n, sigmas=s.sigma, true_ranks=s.true_rank,
                                decays=s.decay, spectrum=s.spectrum, scale=s.scale, ranks=s.ranks,
                                n_seeds=s.n_seeds, base_seed=s.base_seed, keys={"panel": "firstorder"},
                                progress=ctx.progress)


def hybrid_seeds(h, panel: str, n: int, dx: int) -> int:
    """Seeds of one accuracy cell (HybridConfig): many more near n = dx, where the risk is heavy-tailed."""
    if abs(n - dx) < h.near_gap:
        return h.near_seeds
    return getattr(h, f"{panel}_seeds")


def run_hybrid(cfg, ctx, shard):
    """Claim 4 / tab_hybrid: Monte Carlo vs hybrid (ours) in the accuracy cells, seeds per cell sized
    to the tolerance (HybridConfig), drawn in chunks of seeds; the shard's panels in turn (one job
    pays one start-up)."""
    ctx.use_dataset(SYNTHETIC)
    for panel in shard["cells"]:
        yield from _hybrid_panel(cfg.hybrid, ctx, panel)


def _hybrid_panel(h, ctx, panel: str):
    spec = HYBRID_CELLS[panel]
    grid = spec["grid"]
    point = {k: spec[k] for k in ("n", "sigma", "true_rank", "decay") if k in spec}
    ranks = sorted({r for (_, r) in spec["cells"] if r > 0})
    for value in ctx.progress(spec["values"], desc=f"hybrid {panel}"):
        p = dict(point, **{grid: value})
        n_seeds = hybrid_seeds(h, panel, int(p["n"]), spec["dx"])
        seeds = range(spec["base_seed"], spec["base_seed"] + n_seeds)
        errs, null, svals, m = montecarlo.samples(
            seeds=seeds, dx=spec["dx"], dy=spec["dy"], n=p["n"], true_rank=p["true_rank"], spectrum=spec["spectrum"],
            scale=spec["scale"], decay=p["decay"], sigmas=(p["sigma"],), ranks=ranks, chunk=h.chunk)
        rows = montecarlo.point_records(
            errs=errs[float(p["sigma"])], null=null, m=m, sigma=p["sigma"], n=p["n"], dx=spec["dx"], dy=spec["dy"],
            ranks=ranks, svals=svals, hybrid_spectra=h.hybrid_spectra,
            keys={"panel": panel, "grid": grid, "true_rank": int(p["true_rank"]), "decay": float(p["decay"]),
                  "spectrum": spec["spectrum"], "spectrum_scale": float(spec["scale"])})
        for row in rows:
            r = int(row.get("lora_rank", 0))
            ref = spec["cells"].get((value, r))
            if ref is None:
                continue
            rule = min(int(row["true_rank"]), int(row["rule_rank"]))
            yield dict(row, grid_value=float(value), cell_rank=r,
                       over_ranked=bool(r > int(row["true_rank"])),  # the literal reading: r > r*
                       over_rule=bool(r > rule), effective_rank=rule,  # the rank-rule reading
                       gap=abs(int(p["n"]) - spec["dx"]), pilot_mc=float(ref[0]), pilot_hybrid=float(ref[1]))


def _sweep_for(cfg, experiment: str, shard: dict):
    """The Sweep config of a (experiment, shard) and extra keys for its records."""
    if experiment == "fig1":
        return getattr(cfg.fig1, shard["panel"]), {"panel": shard["panel"]}
    if experiment == "fig2":
        f2, variant = cfg.fig2, shard["panel"]
        decay = {"fast_decay": f2.fast_decay, "slow_decay": f2.slow_decay}.get(variant, 0.0)
        sw = dataclasses.replace(f2.sweep, spectrum=variant, scale=f2.scale, decay=(decay,))
        return sw, {"panel": variant}
    return getattr(cfg, experiment), {"panel": experiment}


def run_sweep(cfg, ctx, shard):
    """fig1–fig4: Monte Carlo mean ± std with the exact FFT risk and the hybrid/first-order
    predictions (ours) at every point; fig1's decay panel adds the crossover n* per rank. A shard
    with ``panels`` runs those panels in turn (one job pays one start-up)."""
    ctx.use_dataset(SYNTHETIC)
    for panel in shard.get("panels", [shard.get("panel")]):
        yield from _sweep_panel(cfg, ctx, {"panel": panel} if panel else {})


def _sweep_panel(cfg, ctx, shard):
    s, keys = _sweep_for(cfg, ctx.experiment, shard)
    for row in montecarlo.sweep(dx=s.dx, dy=s.dy, ns=s.n, sigmas=s.sigma, true_ranks=s.true_rank,
                                decays=s.decay, spectrum=s.spectrum, scale=s.scale, ranks=s.ranks,
                                n_seeds=s.n_seeds, base_seed=s.base_seed, keys=keys, progress=ctx.progress):
        if row["method"] == "lora" and s.spectrum != "gaussian":
            sv = theory.spectrum_values(kind=s.spectrum, true_rank=row["true_rank"], scale=s.scale,
                                        decay=row["decay"])
            nstar = theory.crossover_n(svals=sv, rank=row["lora_rank"], dx=s.dx, dy=s.dy, sigma=row["sigma"])
            approx = theory.crossover_n_approx(svals=sv, rank=row["lora_rank"], dx=s.dx, dy=s.dy,
                                               sigma=row["sigma"])
            row = montecarlo.finite_only(dict(row, crossover_n=nstar, crossover_n_approx=approx))
        yield row
