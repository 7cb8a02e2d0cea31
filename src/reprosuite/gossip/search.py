"""Choosing the number of active nodes k for TELEPORTATION (the paper's Algorithm 2) and the grid.

The paper states that its search finds a suitable k "within 2T iterations"; its exact schedule is
not in the text we had, so two readings are implemented (``schedule``):

- ``parallel_waves`` (default): candidates K = {1, 2, 4, ..., 2^m} with 2^m <= n. Wave 1 runs
  every candidate k <= 2^(m-1) at the same time for T iterations on disjoint node blocks (they use
  1 + 2 + ... + 2^(m-1) = 2^m - 1 < n nodes per round, a fresh random block each round); wave 2
  runs k = 2^m for T iterations. Cost: 2T iterations of wall-clock, T·(2^(m+1) - 1) node-steps.
- ``doubling``: k = 1, 2, 4, ... one after the other, each for ⌊2T / |K|⌋ iterations, stopping at
  the first doubling that does not lower the selection metric. Cost: at most 2T iterations.

Both pick the candidate with the lowest selection metric (final training loss: the mean over the
last evaluation window of the slots' f(x_i) - f*), each candidate at its best learning rate of the
grid. The reference is the grid search: every k in K for T iterations, one after the other
(T·|K| iterations, T·Σ K node-steps). Costs are per learning rate of the grid (the grid over
learning rates multiplies every method's cost by the same factor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SCHEDULES = ("parallel_waves", "doubling")


def candidates(n: int) -> list[int]:
    """K = {1, 2, 4, ..., 2^m}, 2^m <= n."""
    out, k = [], 1
    while k <= n:
        out.append(k)
        k *= 2
    return out


@dataclass
class SearchResult:
    schedule: str
    chosen_k: int
    iterations: int  # simulated wall-clock iterations spent
    node_steps: int
    budget: int  # the stated iteration budget (2T)
    losses: dict[int, float] = field(default_factory=dict)  # selection metric per tried candidate


# run(k, iterations, block) -> selection metric (lower is better); block = (lo, hi) of the round's
# node permutation the candidate uses (parallel waves) or None (the candidate draws its own nodes)
RunFn = Callable[[int, int, tuple[int, int] | None], float]


def search_k(n: int, horizon: int, run: RunFn, *, schedule: str = "parallel_waves") -> SearchResult:
    """Algorithm 2 under ``schedule``; ``horizon`` is T. Never spends more than 2T iterations."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule = {schedule!r}; allowed: {', '.join(SCHEDULES)}")
    ks = candidates(n)
    budget = 2 * horizon
    losses: dict[int, float] = {}
    if schedule == "parallel_waves":
        lo = 0
        for k in ks[:-1]:  # wave 1: disjoint blocks of one permutation per round
            losses[k] = run(k, horizon, (lo, lo + k))
            lo += k
        losses[ks[-1]] = run(ks[-1], horizon, None)  # wave 2
        iterations = horizon if len(ks) == 1 else 2 * horizon
        node_steps = horizon * sum(ks)
    else:
        per = max(1, budget // len(ks))
        iterations = node_steps = 0
        for k in ks:
            losses[k] = run(k, per, None)
            iterations += per
            node_steps += per * k
            if len(losses) >= 2 and losses[k] >= losses[k // 2]:
                break
    assert iterations <= budget
    chosen = min(losses, key=lambda k: (losses[k], k))
    return SearchResult(schedule, chosen, iterations, node_steps, budget, losses)


def grid_cost(ks: list[int], horizon: int) -> tuple[int, int]:
    """(iterations, node-steps) of the sequential grid search over ``ks`` at T = horizon."""
    return horizon * len(ks), horizon * int(np.sum(ks))
