"""TELEPORTATION (Takezawa & Stich, ICLR 2025, Algorithm 1) as a re-indexing of D-SGD.

k parameter *slots* live in the simulator; at round t a set V_t of k distinct nodes is sampled
from the n nodes, slot i moves ("teleports") to node v_i^(t) and takes an SGD step on that node's
data, then the k slots gossip with the k x k slot mixing matrix W^(k). In one process the
teleport is only an index: slot i reads node v_i^(t)'s minibatch. With k = n, sampling off
(``sampling="identity"``) the method is D-SGD on the slot graph.

``SlotSampler`` draws V_t; ``slot_mixing`` builds W^(k) (k = 1: [1]; k = 2: J/2; k >= 3: the
Metropolis matrix of the slot graph).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .topologies import mixing_matrix

SAMPLINGS = ("uniform", "permutation_cycle", "identity")


def slot_mixing(graph_name: str, k: int) -> np.ndarray:
    """Mixing matrix among the k active slots. # (k, k)"""
    return mixing_matrix(graph_name, n=k)


class SlotSampler:
    """k distinct nodes out of n per round.

    - ``uniform``: a fresh uniform k-subset each round (in random slot order);
    - ``permutation_cycle``: consecutive k-blocks of a random permutation of the nodes, a new
      permutation when fewer than k nodes remain (every node is visited once per cycle);
    - ``identity``: slot i always on node i (needs k = n; D-SGD).
    """

    def __init__(self, n: int, k: int, *, sampling: str = "uniform", rng: np.random.Generator):
        if not 1 <= k <= n:
            raise ValueError(f"k = {k} must be in [1, n = {n}]")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling = {sampling!r}; allowed: {', '.join(SAMPLINGS)}")
        if sampling == "identity" and k != n:
            raise ValueError(f"sampling = 'identity' needs k = n; got k = {k}, n = {n}")
        self.n, self.k, self.sampling, self.rng = n, k, sampling, rng
        self._perm = np.empty(0, dtype=np.int64)

    def next(self) -> np.ndarray:
        """Nodes of the k slots this round. # (k,)"""
        if self.sampling == "identity":
            return np.arange(self.n)
        if self.sampling == "uniform":
            return self.rng.choice(self.n, size=self.k, replace=False)
        if len(self._perm) < self.k:
            self._perm = self.rng.permutation(self.n)
        out, self._perm = self._perm[: self.k], self._perm[self.k:]
        return out

    def state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "perm": self._perm.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self._perm = np.asarray(state["perm"], dtype=np.int64)
