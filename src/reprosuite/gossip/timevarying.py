"""Time-varying gossip graphs: one-peer exponential and Base-(k+1) (finite-time exact consensus).

A time-varying graph is a period of mixing matrices W_0, ..., W_{m-1} used cyclically
(round t uses W_{t mod m}). Each matrix is doubly stochastic but need not be symmetric, so its
spectral quantities come from ``spectra.product_gap`` on one period's product, never from a
symmetrised eigen-decomposition.

- ``one_peer_exponential(n)``: round t, node i averages with node (i + 2^(t mod ⌈log2 n⌉)) mod n
  with weights 1/2 (each node sends to one peer and receives from one peer). For n a power of 2
  the product of one period is exactly J/n: exact consensus after log2 n rounds.
- ``base_graph(n, k)``: the Base-(k+1) graph of Takezawa et al. (NeurIPS 2023) for n = (k+1)^m,
  written from its definition: in round j the nodes whose base-(k+1) digits differ only in digit
  j form a clique of k+1 nodes that averages exactly (weights 1/(k+1)); every node talks to at
  most k peers per round and after m rounds all models are equal. The paper's general-n
  construction (n not a power of k+1) is not implemented here and raises ``ValueError``.
"""

from __future__ import annotations

import math

import numpy as np

TIME_VARYING = ("one_peer_exp", "base2")


def one_peer_exponential(n: int) -> list[np.ndarray]:
    """One period (⌈log2 n⌉ matrices) of the one-peer exponential graph, weights 1/2. # [(n, n)]"""
    if n < 1:
        raise ValueError(f"n = {n} must be >= 1")
    if n == 1:
        return [np.ones((1, 1))]
    period = max(1, math.ceil(math.log2(n)))
    mats = []
    for j in range(period):
        w = 0.5 * np.eye(n)
        idx = np.arange(n)
        w[idx, (idx + (1 << j)) % n] += 0.5
        mats.append(w)
    return mats


def base_graph(n: int, k: int = 1) -> list[np.ndarray]:
    """One period of the Base-(k+1) graph for n = (k+1)^m (exact consensus after m rounds). # [(n, n)]"""
    if k < 1:
        raise ValueError(f"k = {k} must be >= 1")
    b = k + 1
    m = round(math.log(n, b)) if n > 1 else 0
    if n < 1 or b**m != n:
        raise ValueError(f"base_graph(n = {n}, k = {k}) needs n = (k+1)^m; the general-n construction "
                         "of the Base-(k+1) paper is not implemented")
    if n == 1:
        return [np.ones((1, 1))]
    idx = np.arange(n)
    mats = []
    for j in range(m):
        digit = (idx // b**j) % b
        anchor = idx - digit * b**j  # the node with digit j = 0 in the same clique
        same = anchor[:, None] == anchor[None, :]
        mats.append(same / b)
    return mats


def period(name: str, *, n: int) -> list[np.ndarray]:
    """The period of a named time-varying graph: ``one_peer_exp`` or ``base2`` (Base-2)."""
    if name == "one_peer_exp":
        return one_peer_exponential(n)
    if name == "base2":
        return base_graph(n, 1)
    raise KeyError(f"unknown time-varying graph {name!r}; known: {', '.join(TIME_VARYING)}")


def at_round(mats: list[np.ndarray], t: int) -> np.ndarray:
    """W used at round t (cyclic)."""
    return mats[t % len(mats)]
