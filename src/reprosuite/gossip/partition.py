"""Dirichlet label-skew splits into equal-size node shards (topology Fig. 3; teleportation Tab. 2).

``relaysgd_equal`` follows Tao Lin's partitioner (``epfml/relaysgd``): workers in groups of 10, a
per-class Dirichlet(α) split inside each group, resampled until the smallest shard holds >= 50%
of the group mean; the shards are then concatenated in worker order and re-split into equal
sizes (label skew kept approximately, sizes equalised). ``plain_dirichlet`` is one per-class
Dirichlet(α) over all n workers, then the same concatenate-and-re-split (the suite's pilot).
Both return a list of n index arrays that together cover every example exactly once.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Partitioner = Literal["relaysgd_equal", "plain_dirichlet"]


def _dirichlet_split(labels: np.ndarray, idx: np.ndarray, *, n_workers: int, alpha: float,
                     rng: np.random.Generator, balance: bool) -> list[np.ndarray]:
    """One per-class Dirichlet split of ``idx`` among n_workers (relaysgd's inner step)."""
    target = len(idx) / n_workers
    shards: list[list[int]] = [[] for _ in range(n_workers)]
    for cls in np.unique(labels[idx]):
        members = idx[labels[idx] == cls]
        prop = rng.dirichlet(np.full(n_workers, alpha))
        if balance:  # relaysgd: a worker already at the mean size takes no more
            prop = prop * np.array([len(s) < target for s in shards])
            if prop.sum() <= 0:
                prop = np.full(n_workers, 1.0)
            prop = prop / prop.sum()
        cuts = (np.cumsum(prop) * len(members)).astype(int)[:-1]
        for shard, part in zip(shards, np.split(members, cuts)):
            shard.extend(part.tolist())
    return [np.asarray(s, dtype=np.int64) for s in shards]


def dirichlet_shards(labels: np.ndarray, *, n_nodes: int, alpha: float, seed: int,
                     partitioner: Partitioner = "relaysgd_equal", group: int = 10,
                     min_ratio: float = 0.5, max_tries: int = 10_000) -> list[np.ndarray]:
    """Split example indices 0..N-1 into n_nodes equal-size (±1) label-skewed shards."""
    if alpha <= 0:
        raise ValueError(f"alpha = {alpha} must be > 0")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    if partitioner == "plain_dirichlet":
        parts = _dirichlet_split(labels, order, n_workers=n_nodes, alpha=alpha, rng=rng, balance=False)
    elif partitioner == "relaysgd_equal":
        sizes = [min(group, n_nodes - g) for g in range(0, n_nodes, group)]
        bounds = np.cumsum([0] + [int(s / n_nodes * len(labels)) for s in sizes[:-1]] + [0])
        bounds[-1] = len(labels)
        parts = []
        for k, workers in enumerate(sizes):
            sub = order[bounds[k]:bounds[k + 1]]
            for _ in range(max_tries):
                split = _dirichlet_split(labels, sub, n_workers=workers, alpha=alpha, rng=rng, balance=True)
                if min(len(s) for s in split) >= int(min_ratio * len(sub) / workers):
                    break
            parts.extend(split)
    else:
        raise KeyError(f"unknown partitioner {partitioner!r}; known: relaysgd_equal, plain_dirichlet")
    return [np.asarray(s) for s in np.array_split(np.concatenate(parts), n_nodes)]
