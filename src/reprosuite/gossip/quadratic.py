"""Batched closed-form kernel for decentralized SGD on heterogeneous quadratics.

Node j of n holds f_j(x) = ½ (x - b_j)ᵀ diag(h_j) (x - b_j); a stochastic gradient is
h_j ⊙ (x - b_j) + σ ξ with ξ ~ N(0, I). The kernel keeps the iterates of k slots for every
learning rate and every seed in one tensor X of shape (L, S, k, d) (learning rate × seed × slot ×
dimension; stored slot-first inside) and runs rounds of

    X_half = X - η ⊙ (h_{v} ⊙ (X - b_{v}) + σ ξ)       (slot i on node v_i^(t), per seed)
    X      = W_t X_half                                 (gossip along the slot axis)

with no Python loop over learning rates, seeds or slots. Circulant W (ring, symmetric
exponential, one-peer exponential, J/2) are applied as a sum of rolls, other W as a matmul.
D-SGD is ``nodes=None`` (slot i is node i, k = n); TELEPORTATION passes a sampler of k distinct
nodes per seed and round. Metrics are exact: f(x) - f* = ½ Σ_d h̄_d (x_d - x*_d)² with
h̄ = mean_j h_j and x* = Σ_j h_j b_j / Σ_j h_j (per coordinate).

It is the same algorithm as ``GossipSimulator`` (autograd on stacked parameters) on a model
whose loss is that quadratic; tests/test_gossip.py checks the two agree on a small case and
benchmarks/bench_teleportation.py times both on the same grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Quadratics:
    """Per-seed problem instances: h, b of shape (S, n, d) (float64)."""

    h: torch.Tensor
    b: torch.Tensor

    @property
    def n(self) -> int:
        return self.h.shape[1]

    @property
    def hbar(self) -> torch.Tensor:  # (S, d)
        return self.h.mean(dim=1)

    @property
    def xstar(self) -> torch.Tensor:  # (S, d)
        return (self.h * self.b).sum(dim=1) / self.h.sum(dim=1)

    def excess(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) - f* for x (..., S, m, d) -> (..., S, m)."""
        return 0.5 * (self.hbar[:, None, :] * (x - self.xstar[:, None, :]) ** 2).sum(dim=-1)

    @classmethod
    def toy(cls, *, n: int, d: int, seeds: Sequence[int], h_low: float = 0.5, h_high: float = 1.5,
            mean_scale: float = 5.0, spread: float = 5.0) -> Quadratics:
        """h_j ~ U[h_low, h_high]^d, b_j = μ + spread·N(0, I), μ ~ N(0, mean_scale² I); one instance per seed."""
        hs, bs = [], []
        for s in seeds:
            rng = np.random.default_rng([int(s), n, d, 7919])
            mu = mean_scale * rng.standard_normal(d)
            hs.append(rng.uniform(h_low, h_high, size=(n, d)))
            bs.append(mu + spread * rng.standard_normal((n, d)))
        return cls(torch.tensor(np.stack(hs)), torch.tensor(np.stack(bs)))


def circulant_shifts(w: np.ndarray, tol: float = 1e-15) -> list[tuple[int, float]] | None:
    """(shift, weight) pairs if W is circulant (W_ij = c_{(j-i) mod k}), else None."""
    w = np.asarray(w, dtype=float)
    k = len(w)
    first = w[0]
    idx = (np.arange(k)[None, :] + np.arange(k)[:, None]) % k  # row i: columns i+s
    if np.max(np.abs(w[np.arange(k)[:, None], idx] - first[None, :])) > 1e-12:
        return None
    return [(int(s), float(first[s])) for s in range(k) if abs(first[s]) > tol]


class Mixer:
    """Applies W_t (cyclic list) along the leading slot axis of X (k, ...).

    Circulant W are sums of shifted slices added in place (no copies of X per shift); others a matmul.
    """

    def __init__(self, mats: np.ndarray | Sequence[np.ndarray], dtype=torch.float64):
        mats = [np.asarray(mats)] if np.ndim(mats) == 2 else [np.asarray(m) for m in mats]
        self.k = mats[0].shape[0]
        self.ops = []
        for m in mats:
            shifts = circulant_shifts(m)
            self.ops.append(("roll", shifts) if shifts is not None else ("dense", torch.tensor(m, dtype=dtype)))

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        kind, op = self.ops[t % len(self.ops)]
        if self.k == 1:
            return x
        if kind == "dense":
            return (op @ x.reshape(self.k, -1)).reshape(x.shape)
        k = self.k
        w0 = dict(op).get(0, 0.0)
        out = x * w0
        for s, wgt in op:  # out_i += w_s x_{(i + s) mod k}
            if s == 0:
                continue
            out[: k - s].add_(x[s:], alpha=wgt)
            out[k - s:].add_(x[:s], alpha=wgt)
        return out


Sampler = Callable[[int, int], torch.Tensor]  # (first round, rounds) -> (rounds, S, k) node indices
CHUNK = 100  # rounds whose samples and noise are drawn in one call


def uniform_sampler(n: int, k: int, n_seeds: int, generator: torch.Generator) -> Sampler:
    """A fresh uniform k-subset of the n nodes per seed and round (in random slot order)."""

    def draw(t0: int, count: int) -> torch.Tensor:
        return torch.rand((count, n_seeds, n), generator=generator).argsort(dim=-1)[..., :k]

    return draw


def block_sampler(n: int, lo: int, hi: int, n_seeds: int, seed: int) -> Sampler:
    """Nodes perm[lo:hi] of one random permutation per seed and round, the permutations drawn from
    ``seed`` (candidates that share ``seed`` get disjoint node blocks every round: Algorithm 2).
    Draws must be requested in order from round 0 (as ``simulate`` does)."""
    gen = torch.Generator().manual_seed(seed)

    def draw(t0: int, count: int) -> torch.Tensor:
        return torch.rand((count, n_seeds, n), generator=gen).argsort(dim=-1)[..., lo:hi]

    return draw


def fixed_sampler(nodes: torch.Tensor) -> Sampler:
    """The same assignment every round: nodes (S, k) (e.g. the identity, for tests)."""

    def draw(t0: int, count: int) -> torch.Tensor:
        return nodes.expand(count, *nodes.shape)

    return draw


def simulate(problem: Quadratics, *, lrs: Sequence[float], sigma: float, iterations: int,
             mixing: np.ndarray | Sequence[np.ndarray], sampler: Sampler | None = None,
             eval_every: int = 10, generator: torch.Generator | None = None,
             noise: Callable[[int, int, tuple[int, ...]], torch.Tensor] | None = None,
             x0: torch.Tensor | None = None, trace: bool = False) -> dict[str, torch.Tensor]:
    """Run D-SGD (``sampler=None``) or TELEPORTATION on every (lr, seed) at once.

    Node samples and gradient noise are drawn ``CHUNK`` rounds at a time; the noise comes from a
    numpy generator seeded with ``generator.initial_seed()``, one draw per (round, seed, slot)
    shared by all learning rates (common random numbers across the lr grid), unless
    ``noise(t0, count, shape)`` supplies it: (count, L, S, k, d). Returns ``iters`` (E,) of the checked
    iterations (0, eval_every, ..., iterations) and the metrics ``nodes`` (L, S, E) = mean over
    slots of f(x_i) - f*, ``xbar`` (L, S, E) = f(x̄) - f*; with ``trace=True`` also ``X`` (L, S, k, d).
    """
    mixer = Mixer(mixing)
    k = mixer.k
    n_seeds, n, d = problem.h.shape
    if sampler is None and k != n:
        raise ValueError(f"D-SGD needs W of size n = {n}; got {k}")
    lr = torch.tensor(list(lrs), dtype=torch.float64)
    shape = (len(lrs), n_seeds, k, d)  # the public layout (L, S, k, d)
    inner = (k, len(lrs), n_seeds, d)  # slot-first inside: shifts are contiguous slices
    x = torch.zeros(inner, dtype=torch.float64) if x0 is None else x0.expand(shape).permute(2, 0, 1, 3).contiguous()
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    rng = np.random.default_rng(gen.initial_seed())  # numpy's ziggurat normals: ~8x faster than torch.randn
    seed_t = torch.arange(n_seeds)[None, None, :]  # (1, 1, S) against v (C, k, S)
    h_all = problem.h.permute(1, 0, 2)  # (n, S, d)
    hb_all = (problem.h * problem.b).permute(1, 0, 2)
    hbar, xstar = problem.hbar, problem.xstar  # (S, d)
    checks, nodes_m, xbar_m = [], [], []

    def excess(y: torch.Tensor) -> torch.Tensor:  # (..., L, S, d) -> (..., L, S)
        return 0.5 * (hbar * (y - xstar) ** 2).sum(dim=-1)

    def record(t: int) -> None:
        checks.append(t)
        nodes_m.append(excess(x).mean(dim=0))  # (L, S)
        xbar_m.append(excess(x.mean(dim=0)))

    record(0)
    lr4 = lr.reshape(1, -1, 1, 1)  # (1, L, 1, 1) against x (k, L, S, d)
    hb_all = hb_all.contiguous()
    for t0 in range(0, iterations, CHUNK):
        count = min(CHUNK, iterations - t0)
        if noise is not None:
            z = noise(t0, count, shape).permute(0, 3, 1, 2, 4)  # (C, k, L, S, d)
        else:  # slot-first layout; one draw per (seed, slot) shared by every learning rate
            z = torch.from_numpy(rng.standard_normal((count, k, 1, n_seeds, d)))
        if sampler is None:
            h = h_all.expand(count, *h_all.shape)  # (C, k, S, d)
            hb = hb_all.expand(count, *hb_all.shape)
        else:
            v = sampler(t0, count).transpose(1, 2)  # (C, k, S)
            h, hb = problem.h[seed_t, v], (problem.h * problem.b)[seed_t, v]  # (C, k, S, d)
        q = (sigma * z - hb[:, :, None]).contiguous()  # (C, k, L or 1, S, d): σ ξ - h ⊙ b
        for c in range(count):
            # x - lr (h ⊙ (x - b) + σ ξ) = x - lr (h ⊙ x) - lr (σ ξ - h ⊙ b)
            x.addcmul_(h[c][:, None] * x, lr4, value=-1.0).addcmul_(q[c], lr4, value=-1.0)
            x = mixer(x, t0 + c)  # a fresh buffer (or x itself for k = 1)
            if (t0 + c + 1) % eval_every == 0:
                record(t0 + c + 1)
    out = {"iters": torch.tensor(checks), "nodes": torch.stack(nodes_m, dim=-1), "xbar": torch.stack(xbar_m, dim=-1)}
    if trace:
        out["X"] = x.permute(1, 2, 0, 3)  # (L, S, k, d)
    return out


def iterations_to_target(metric: np.ndarray, iters: np.ndarray, *, target: float, window: int = 5) -> np.ndarray:
    """First checked iteration t whose window mean (checks t .. t+window-1) is <= target; NaN if never.

    metric (..., E), iters (E,) -> (...)."""
    metric = np.asarray(metric, dtype=float)
    e = metric.shape[-1]
    w = max(1, min(window, e))
    csum = np.cumsum(np.concatenate([np.zeros(metric.shape[:-1] + (1,)), metric], axis=-1), axis=-1)
    means = (csum[..., w:] - csum[..., :-w]) / w  # (..., E - w + 1)
    hit = means <= target
    first = np.where(hit.any(axis=-1), hit.argmax(axis=-1), -1)
    out = np.where(first >= 0, np.asarray(iters)[np.maximum(first, 0)], np.nan)
    return out.astype(float)
