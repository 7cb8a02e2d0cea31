"""Simulated communication time on a heterogeneous network (teleportation Fig. 4).

Links of a *preferred* topology over all n nodes (a ring by default) cost 1 time unit, every
other link costs τ (default 5). A round costs the compute time plus, for each communication
phase, the slowest link used in that phase (phases run one after the other, links of one phase
in parallel). D-SGD on a graph uses one phase (gossip over the graph's edges); TELEPORTATION's
simple version uses two: the teleport of each slot's parameters from its previous node to its
new one, then gossip among the k active nodes. This clock is the suite's reading of the paper's
Fig. 4 setting (the exact model is not stated in the text we had).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .topologies import graph


def link_costs(n: int, *, tau: float = 5.0, preferred: str = "ring") -> np.ndarray:
    """c[i, j] = 1 on edges of the preferred topology, τ elsewhere, 0 on the diagonal. # (n, n)"""
    if tau <= 0:
        raise ValueError(f"tau = {tau} must be > 0")
    c = np.full((n, n), float(tau))
    if n >= 2:
        for i, j in graph(preferred, n=n).edges():
            c[i, j] = c[j, i] = 1.0
    np.fill_diagonal(c, 0.0)
    return c


def gossip_time(w: np.ndarray, nodes: Sequence[int] | np.ndarray, cost: np.ndarray) -> float:
    """Slowest link of one gossip phase: max c[v_i, v_j] over W_ij != 0, i != j (slot i on node v_i)."""
    w = np.asarray(w)
    nodes = np.asarray(nodes)
    i, j = np.nonzero((np.abs(w) > 0) & ~np.eye(len(w), dtype=bool))
    return float(cost[nodes[i], nodes[j]].max()) if len(i) else 0.0


def teleport_time(prev: Sequence[int] | np.ndarray, nodes: Sequence[int] | np.ndarray, cost: np.ndarray, *,
                  mode: str = "max_link", tau: float = 5.0) -> float:
    """Slowest parameter move prev_i -> v_i; ``max_link`` uses the link cost, ``tau`` charges τ per move."""
    prev, nodes = np.asarray(prev), np.asarray(nodes)
    moved = prev != nodes
    if not moved.any():
        return 0.0
    if mode == "tau":
        return float(tau)
    if mode == "max_link":
        return float(cost[prev[moved], nodes[moved]].max())
    raise ValueError(f"teleport_cost = {mode!r}; allowed: max_link, tau")


def training_resources(epochs: int, n_train: int | None, *, full: int = 60_000, mem_mb: int = 3000,
                       runs: float = 1.0) -> dict[str, int]:
    """Scheduler resources of one decentralized training job, following the scale: about 0.75 s of
    CPU per epoch and 1,000 training examples for LeNet-GN on 25 nodes (default-scale jobs, with a
    3x margin), times ``runs`` (a job that stacks several runs: their slots / 25); a job over an
    hour asks for a GPU (paper scale)."""
    minutes = max(15, int(epochs * (n_train or full) / 1000 * 0.75 / 60 * runs) + 1)
    return {"mem_mb": mem_mb, "runtime": minutes, "gpu": int(minutes >= 60)}
