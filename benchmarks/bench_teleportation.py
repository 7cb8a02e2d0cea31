"""Benchmark of the batched quadratic kernel (teleportation Fig. 2 sweep) against the autograd simulator.

Claim checked: the closed-form kernel ``reprosuite.gossip.quadratic.simulate`` runs a grid of
learning rates x seeds of TELEPORTATION (or D-SGD) on heterogeneous quadratics in one tensor, much
faster than the autograd ``GossipSimulator`` running the same grid one (lr, seed) at a time.
Before timing, both are run on one (lr, seed) with the same node samples and noise and their
parameters compared (float64, 1e-10).

    python benchmarks/bench_teleportation.py               # writes benchmarks/bench_teleportation.md
    python benchmarks/bench_teleportation.py --n 64 --k 16 --lrs 4 --seeds 6 --rounds 300
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from torch import nn

from reprosuite.gossip.quadratic import Quadratics, simulate, uniform_sampler
from reprosuite.gossip.simulator import GossipSimulator
from reprosuite.gossip.teleport import slot_mixing

SIGMA = 0.5


class QuadraticModel(nn.Module):
    """f(x) = ½ Σ h (x - b)² - zᵀx for an input row [h, b, z]: gradient h (x - b) - z."""

    def __init__(self, d: int):
        super().__init__()
        self.x = nn.Parameter(torch.zeros(d, dtype=torch.float64))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:  # (B, 3d) -> (B, 1)
        h, b, z = inp.chunk(3, dim=-1)
        return (0.5 * (h * (self.x - b) ** 2).sum(-1) - (z * self.x).sum(-1))[..., None]


def autograd_run(prob: Quadratics, seed: int, lr: float, *, k: int, rounds: int, draws: torch.Tensor,
                 noise: torch.Tensor) -> torch.Tensor:
    """One (lr, seed) of TELEPORTATION in the autograd simulator. draws (rounds, k), noise (rounds, k, d)."""
    d = prob.h.shape[-1]
    sim = GossipSimulator(QuadraticModel(d), n_slots=k, loss_fn=lambda out, y: out[..., 0], dtype=torch.float64)
    w = torch.tensor(slot_mixing("ring", k))
    y = torch.zeros(k, 1)
    for t in range(rounds):
        v = draws[t]
        inp = torch.cat([prob.h[seed, v], prob.b[seed, v], -SIGMA * noise[t]], dim=-1)[:, None, :]
        sim.step(inp, y, lr=lr, w=w)
    return sim.flat


def main(argv=None) -> str:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--lrs", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    n, k, d, rounds = args.n, args.k, 10, args.rounds
    lrs = [0.05, 0.01, 0.005, 0.0025, 0.001, 0.0005][: args.lrs]
    prob = Quadratics.toy(n=n, d=d, seeds=range(args.seeds))
    gen = torch.Generator().manual_seed(0)
    draws = uniform_sampler(n, k, args.seeds, gen)(0, rounds)  # (rounds, S, k)
    noise = torch.randn(rounds, len(lrs), args.seeds, k, d, generator=gen, dtype=torch.float64)

    # equality on the whole grid's first cell
    out = simulate(prob, lrs=lrs, sigma=SIGMA, iterations=rounds, mixing=slot_mixing("ring", k),
                   sampler=lambda t0, c: draws[t0:t0 + c], noise=lambda t0, c, shape: noise[t0:t0 + c], trace=True)
    ref = autograd_run(prob, 0, lrs[0], k=k, rounds=rounds, draws=draws[:, 0], noise=noise[:, 0, 0])
    err = float((out["X"][0, 0] - ref).abs().max())

    start = time.perf_counter()
    simulate(prob, lrs=lrs, sigma=SIGMA, iterations=rounds, mixing=slot_mixing("ring", k),
             sampler=uniform_sampler(n, k, args.seeds, torch.Generator().manual_seed(1)), eval_every=10,
             generator=torch.Generator().manual_seed(2))
    kernel_s = time.perf_counter() - start
    start = time.perf_counter()
    for li, lr in enumerate(lrs):
        for s in range(args.seeds):
            autograd_run(prob, s, lr, k=k, rounds=rounds, draws=draws[:, s], noise=noise[:, li, s])
    autograd_s = time.perf_counter() - start
    cells = len(lrs) * args.seeds
    text = "\n".join([
        "# bench_teleportation: batched quadratic kernel vs autograd simulator",
        "",
        f"TELEPORTATION, n = {n}, k = {k} (ring of slots), d = {d}, {len(lrs)} learning rates x {args.seeds} seeds "
        f"= {cells} runs of {rounds} rounds; {args.threads} thread(s); {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}.",
        "",
        "| implementation | wall time (s) | rounds x runs per second |",
        "|---|---|---|",
        f"| kernel (`gossip.quadratic.simulate`, one tensor) | {kernel_s:.3f} | {rounds * cells / kernel_s:,.0f} |",
        f"| autograd `GossipSimulator`, one run per (lr, seed) | {autograd_s:.3f} | {rounds * cells / autograd_s:,.0f} |",
        "",
        f"**Speed-up: {autograd_s / kernel_s:.1f}x.** Equality before timing (lr {lrs[0]}, seed 0, same samples and "
        f"noise): max |Δx| = {err:.2e}.",
        "",
    ])
    args.out.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
