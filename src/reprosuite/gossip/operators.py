"""W @ X for structured mixing matrices with fewer operations than a dense matmul.

The gossip step of a simulation with many parameters per node (topology Fig. 2: 7,850 per node)
is a dense (n, n) @ (n, D) product. Many mixing matrices have structure that makes it cheaper:

- a multiple of I plus low rank, W = αI + Σ_j c_j v_j v_jᵀ (the spectral family: 'spike' has
  rank 2, 'flat' = 0.9 I + 0.1 J/n): 2 r n D operations instead of n² D;
- a Kronecker product W = A ⊗ B (the Kronecker family, ring8 ⊗ G): (p + q) n D instead of n² D;
- sparse (ring, path, torus, ...): nnz D.

``mixing_operator(w)`` picks the cheapest form (found from W itself, exactly up to 1e-12) and
returns a callable x -> W x for x of shape (n, D). The products are the same as the dense
matmul's up to float rounding (other terms, summed in another order).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

TOL = 1e-12  # a structure must reproduce W to this absolute error (float64)


class MixingOperator:
    """x (n, D) -> W x, with ``kind`` in {dense, lowrank, kronecker, sparse}."""

    def __init__(self, n: int, kind: str, apply: Callable[[torch.Tensor], torch.Tensor]):
        self.n, self.kind, self._apply = n, kind, apply

    def __len__(self) -> int:
        return self.n

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply(x)


def _lowrank(w: np.ndarray, max_rank: int):
    """(α, V, c) with W = αI + V diag(c) Vᵀ and rank(V) <= max_rank, else None (W symmetric)."""
    if not np.allclose(w, w.T, atol=TOL, rtol=0):
        return None
    lam, vec = np.linalg.eigh(w)
    values, counts = np.unique(np.round(lam, 10), return_counts=True)
    alpha = float(values[np.argmax(counts)])
    keep = np.abs(lam - alpha) > 1e-10
    if keep.sum() > max_rank:
        return None
    v, c = vec[:, keep], lam[keep] - alpha
    if np.abs(alpha * np.eye(len(w)) + (v * c) @ v.T - w).max() > TOL:
        return None
    return alpha, v, c


def _kronecker(w: np.ndarray):
    """(A, B) with W = A ⊗ B, the smallest such A of at least 2 rows, else None (Van Loan–Pitsianis)."""
    n = len(w)
    for p in range(2, n // 2 + 1):
        if n % p:
            continue
        q = n // p
        r = w.reshape(p, q, p, q).transpose(0, 2, 1, 3).reshape(p * p, q * q)  # rank 1 iff W = A ⊗ B
        u, s, vt = np.linalg.svd(r, full_matrices=False)
        a = (u[:, 0] * s[0]).reshape(p, p)
        b = vt[0].reshape(q, q)
        if np.abs(np.kron(a, b) - w).max() <= TOL:
            return a, b
    return None


def mixing_operator(w: np.ndarray, *, repeat: int = 1, dtype: torch.dtype = torch.float32,
                    device: str = "cpu") -> MixingOperator:
    """The cheapest exact form of W (n, n) as an operator on (n, D) tensors; with ``repeat`` = S,
    of the block-diagonal I_S ⊗ W on (S n, D) tensors (S independent runs on the same graph)."""
    w = np.asarray(w, dtype=np.float64)
    n, s = len(w), repeat
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)  # noqa: E731
    dense_cost, best = n * n, None
    low = _lowrank(w, max_rank=n // 8)
    if low is not None:
        alpha, v, c = low
        vt, vc = t(v.T), t(v * c).expand(s, n, v.shape[1])

        def apply_lowrank(x: torch.Tensor) -> torch.Tensor:  # αx + V diag(c) (Vᵀ x), per block
            x3 = x.reshape(s, n, -1)
            return torch.baddbmm(x3, vc, torch.matmul(vt, x3), beta=alpha).reshape(x.shape)

        best = (2 * n * v.shape[1], MixingOperator(s * n, "lowrank", apply_lowrank))
    kron = _kronecker(w)
    if kron is not None and (best is None or n * (len(kron[0]) + len(kron[1])) < best[0]):
        a, b = t(kron[0]), t(kron[1])
        p, q = len(a), len(b)
        b_all = b.expand(s * p, q, q)

        def apply_kron(x: torch.Tensor) -> torch.Tensor:  # x as (S, p, q, D): A on p, then B on q
            z = torch.matmul(a, x.reshape(s, p, -1)).reshape(s * p, q, -1)
            return torch.bmm(b_all, z).reshape(x.shape)

        best = (n * (p + q), MixingOperator(s * n, "kronecker", apply_kron))
    nnz = int(np.count_nonzero(w))
    if nnz <= n * n / 8 and (best is None or nnz < best[0]):
        sparse = t(np.kron(np.eye(s), w)).to_sparse()
        best = (nnz, MixingOperator(s * n, "sparse", lambda x: torch.sparse.mm(sparse, x)))
    if best is None or best[0] > dense_cost / 2:
        dense = t(w)
        return MixingOperator(s * n, "dense", lambda x: torch.matmul(dense, x.reshape(s, n, -1)).reshape(x.shape))
    return best[1]
