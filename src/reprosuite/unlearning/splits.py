"""Forget/retain splits (docs/papers/collateral.md §2.1; certified: random-subset and class-wise deletion).

All splits are deterministic: partial- and full-class splits depend on data-set order only,
random subsets on an explicit seed. Indices are int64 arrays into the training set, sorted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """Indices of the forget set D_f and the retain set D_r (disjoint, covering 0..n-1)."""

    forget: np.ndarray
    retain: np.ndarray
    kind: str
    forget_class: int | None = None
    frac: float | None = None

    def __post_init__(self):
        if np.intersect1d(self.forget, self.retain).size:
            raise ValueError("forget and retain sets overlap")


def _complement(n: int, forget: np.ndarray) -> np.ndarray:
    mask = np.ones(n, dtype=bool)
    mask[forget] = False
    return np.flatnonzero(mask).astype(np.int64)


def partial_class_split(y: np.ndarray, forget_class: int, frac: float) -> Split:
    """D_f = the first floor(frac * N_c) examples of class c in data-set order (the code's
    ``split_indices_by_forget_class``); the other class-c examples stay in D_r."""
    if not 0.0 < frac <= 1.0:
        raise ValueError(f"frac = {frac} must be in (0, 1]")
    y = np.asarray(y)
    of_class = np.flatnonzero(y == forget_class)
    if of_class.size == 0:
        raise ValueError(f"class {forget_class} has no examples")
    k = int(np.floor(frac * of_class.size))
    forget = of_class[:k].astype(np.int64)
    return Split(forget, _complement(len(y), forget), "partial_class", int(forget_class), float(frac))


def full_class_split(y: np.ndarray, forget_class: int) -> Split:
    """D_f = every example of class c (class-wise deletion, C-F2 and certified D-T1)."""
    split = partial_class_split(y, forget_class, 1.0)
    return Split(split.forget, split.retain, "full_class", int(forget_class), 1.0)


def random_subset_split(n: int, frac: float, seed: int) -> Split:
    """D_f = a uniformly random subset of round(frac * n) examples (certified's random 10%)."""
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac = {frac} must be in (0, 1)")
    rng = np.random.default_rng(seed)
    forget = np.sort(rng.choice(n, size=int(round(frac * n)), replace=False)).astype(np.int64)
    return Split(forget, _complement(n, forget), "random", None, float(frac))


def split_facts(y: np.ndarray, split: Split) -> dict[str, float]:
    """Checkable facts of a class split (collateral claim 1), one record's worth."""
    y = np.asarray(y)
    c = split.forget_class
    of_class = np.flatnonzero(y == c)
    k = int(np.floor(split.frac * of_class.size))
    return {
        "n_train": len(y), "n_forget": int(split.forget.size), "n_retain": int(split.retain.size),
        "n_class_c": int(of_class.size), "expected_n_forget": k,
        "forget_is_first_k_of_class": bool(np.array_equal(split.forget, of_class[:k])),
        "disjoint": bool(np.intersect1d(split.forget, split.retain).size == 0),
        "covers": bool(split.forget.size + split.retain.size == len(y)
                       and np.array_equal(np.union1d(split.forget, split.retain), np.arange(len(y)))),
        "retain_class_c": int((y[split.retain] == c).sum()),
        "retain_keeps_rest_of_class": bool(np.array_equal(np.sort(split.retain[y[split.retain] == c]), of_class[k:])),
    }
