"""fig2a of the reproduction (ours, docs/papers/topology.md §2.5): the stationary consensus identity, measured.

D-SGD with pure-noise gradients g = μx + σξ (μ = 0 by default), X ← W (X − η g), for every
mixing matrix at once: matrices of equal size are stacked and the chains (seeds) and the d
coordinates form one tensor axis, so a round is one batched matmul. The time average of
(1/n)‖X − X̄‖²_F over the last part of the run, divided by d η² σ², is compared with the exact
prediction (1/n) Σ_{i≥2} λ_i² / (1 − (1−ημ)² λ_i²), which is T_new for μ = 0.
"""

from __future__ import annotations

import numpy as np
import torch

from reprosuite.gossip import spectra, topologies
from reprosuite.gossip.simulator import reuse_freed_memory

CHUNK = 256  # rounds of noise drawn at once (fewer when a draw would exceed NOISE_ELEMENTS)
NOISE_ELEMENTS = 2**24  # 64 MiB of float32 noise per draw
CACHE_ELEMENTS = 2**19  # 2 MiB: draws this small stay in cache (about 2x faster per number)
SPARSE = 0.125  # W with at most this fraction of non-zeros is applied as a sparse matrix


def matrices(c) -> list[dict]:
    """Every (kind, family, member, n, W) of the fig2a grid."""
    out = []
    for n in c.n_values:
        for name in c.topologies:
            if topologies.defined(name, n=n):
                out.append({"kind": "topology", "family": "none", "topology": name, "n": n,
                            "w": topologies.mixing_matrix(name, n=n)})
    members = {"kronecker": c.kronecker_members, "spectral": c.spectral_members}
    for family in c.families:
        for n in c.family_n:
            for member in members[family]:
                out.append({"kind": "fixed_p", "family": family, "topology": f"{family}:{member}", "n": n,
                            "w": topologies.family_matrix(family, member, n=n)})
    return out


def _rounds_per_draw(per_round: int, left: int) -> int:
    """Rounds of noise per draw. torch's CPU normal_ fills 16 numbers from 16 uniforms at a time
    (and redraws the last 16 of a draw whose size is not a multiple of 16), so when a round holds
    a multiple of 16 numbers any grouping of rounds into draws gives the same numbers: then small
    draws that stay in cache; otherwise the original grouping (the same numbers as before)."""
    if per_round % 16 == 0:
        return min(max(1, CACHE_ELEMENTS // per_round), left)
    return min(CHUNK, max(1, NOISE_ELEMENTS // per_round), left)


def _mixer(ws: torch.Tensor):
    """x (M, n, C) -> W x per matrix: one bmm, or sparse matmuls when every W is sparse (ring,
    path, torus, ...: ~5x fewer operations; the same products, summed in another order)."""
    m, n, _ = ws.shape
    if int((ws != 0).sum()) > SPARSE * m * n * n:
        return lambda x: torch.bmm(ws, x)
    sparse = [w.to_sparse() for w in ws]
    if m == 1:
        return lambda x: torch.sparse.mm(sparse[0], x[0]).unsqueeze(0)
    return lambda x: torch.stack([torch.sparse.mm(w, xi) for w, xi in zip(sparse, x)])


def simulate(ws: torch.Tensor, *, d: int, chains: int, eta: float, sigma: float, mu: float,
             iterations: int, burn_in: float, generator: torch.Generator, per_coord: bool = False) -> torch.Tensor:
    """Time-averaged (1/n)‖X − X̄‖²_F per (matrix, chain) for stacked W (M, n, n). # (M, chains)

    With ``per_coord`` the d coordinates are kept apart (they are independent chains too, since W
    acts on each coordinate alone): (M, chains, d), summing to the default over the last axis.
    """
    m, n, _ = ws.shape
    ws = ws.to(torch.float32)  # float32 state (contractive recursion), float64 accumulator
    mix = _mixer(ws)
    x = torch.zeros(m, n, chains * d)  # (M, n, chains*d), all nodes start at 0
    start = int(burn_in * iterations)
    acc = torch.zeros(m, chains, d, dtype=torch.float64)
    done = 0
    while done < iterations:
        steps = _rounds_per_draw(m * n * chains * d, iterations - done)
        noise = torch.randn(steps, m, n, chains * d, generator=generator).mul_(eta * sigma)
        for s in range(steps):
            x = mix((x if mu == 0 else (1.0 - eta * mu) * x) - noise[s])  # 1.0 * x is x: skipped
            if done + s >= start:
                dev = (x - x.mean(dim=1, keepdim=True)).square_()
                acc += dev.reshape(m, n, chains, d).sum(dim=1).double() / n
        done += steps
    acc = acc / (iterations - start)
    return acc if per_coord else acc.sum(dim=2)


def chains_for(c, lams: np.ndarray) -> int:
    """Chains for one W: ``c.chains``, raised (up to max_chains) until the predicted relative
    Monte Carlo s.e. is <= target_rel_se (slowly mixing graphs such as path n=64 need more)."""
    if c.target_rel_se is None:
        return c.chains
    samples = c.iterations - int(c.burn_in * c.iterations)
    rse = spectra.time_average_rel_se(lams, samples=samples, coords=c.chains * c.d)
    need = int(np.ceil(c.chains * (rse / c.target_rel_se) ** 2))
    return int(min(c.max_chains, max(c.chains, need)))


def run_fig2a(cfg, ctx, shard):
    reuse_freed_memory()  # a process per job: no page faults for the big per-round tensors
    c = cfg.fig2a
    gen = ctx.torch_generator("noise")
    grid = matrices(c)
    for g in grid:
        g["chains"] = chains_for(c, spectra.eigenvalues(g["w"]))
    for n, chains in ctx.progress(sorted({(g["n"], g["chains"]) for g in grid}), desc="fig2a"):
        group = [g for g in grid if g["n"] == n and g["chains"] == chains]
        ws = torch.as_tensor(np.stack([g["w"] for g in group]), dtype=torch.float64)
        meas = simulate(ws, d=c.d, chains=chains, eta=c.eta, sigma=c.sigma, mu=c.mu,
                        iterations=c.iterations, burn_in=c.burn_in, generator=gen, per_coord=True)
        # one coordinate of one chain estimates (1/n)‖X − X̄‖²/(d η²σ²) after multiplying by d / d = 1:
        meas = (meas / (c.eta**2 * c.sigma**2)).reshape(len(group), -1).numpy()  # (M, chains*d), independent
        for g, units in zip(group, meas):
            lams = spectra.eigenvalues(g["w"])
            pred = spectra.stationary_consensus(lams, eta_mu=c.eta * c.mu)
            mean = float(units.mean())
            se = float(units.std(ddof=1) / np.sqrt(len(units)))  # chains*d >= 2 independent units
            yield {"dataset": "synthetic gaussian noise", "kind": g["kind"], "family": g["family"], "topology": g["topology"], "n": n,
                   "p": spectra.spectral_gap(lams), "T_gap": spectra.t_gap(lams), "T_new": spectra.t_new(lams),
                   "predicted": pred, "measured": mean, "measured_se": se,
                          # complete graph: prediction 0, so the absolute error is reported
                   "rel_err": abs(mean - pred) / pred if pred > 1e-9 else abs(mean - pred),
                   "d": c.d, "eta": c.eta, "sigma": c.sigma, "mu": c.mu, "iterations": c.iterations,
                   "chains": chains, "units": len(units)}
