"""Graphs and mixing matrices (topology paper §3.5, §3.6; Fig. 1-3).

Every builder returns a networkx graph on nodes ``0..n-1``; ``mixing_matrix(name, n=...)`` turns
it into a Metropolis-Hastings matrix (symmetric, doubly stochastic). The fixed-gap families
(``kronecker_family``, ``spectral_family``) build matrices whose spectral gap p is identical by
construction while the remaining eigenvalues, hence T_new, vary.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import networkx as nx
import numpy as np


def _square_side(n: int, name: str) -> int:
    side = math.isqrt(n)
    if side * side != n or side < 3:
        raise ValueError(f"{name} needs n = a*a with a >= 3; got n = {n}")
    return side


def _hypercube_dim(n: int) -> int:
    dim = n.bit_length() - 1
    if n < 2 or 1 << dim != n:
        raise ValueError(f"hypercube needs n = 2**dim; got n = {n}")
    return dim


def _integers(graph: nx.Graph) -> nx.Graph:
    return nx.convert_node_labels_to_integers(graph, ordering="sorted")


def hypercube_graph(n: int) -> nx.Graph:
    """i <-> i xor 2**k for k < log2 n (built directly; nx.hypercube_graph is slow at n = 1024)."""
    dim = _hypercube_dim(n)
    graph = nx.empty_graph(n)
    graph.add_edges_from((i, i ^ (1 << k)) for i in range(n) for k in range(dim) if i < i ^ (1 << k))
    return graph


def symmetric_exponential_graph(n: int) -> nx.Graph:
    """i <-> i +- 2**j (mod n) for 2**j < n: the undirected version of BaseGraph's exponential graph."""
    graph = nx.empty_graph(n)
    hops = [1 << j for j in range(max(1, (n - 1).bit_length())) if (1 << j) < n]
    graph.add_edges_from((i, (i + h) % n) for i in range(n) for h in hops if (i + h) % n != i)
    return graph


GRAPHS: dict[str, Callable[[int], nx.Graph]] = {
    "ring": lambda n: nx.cycle_graph(n),
    "path": lambda n: nx.path_graph(n),
    "torus": lambda n: _integers(nx.grid_2d_graph(_square_side(n, "torus"), _square_side(n, "torus"), periodic=True)),
    "grid": lambda n: _integers(nx.grid_2d_graph(_square_side(n, "grid"), _square_side(n, "grid"))),
    "hypercube": hypercube_graph,
    "star": lambda n: nx.star_graph(n - 1),  # node 0 is the hub
    "complete": lambda n: nx.complete_graph(n),
    "sym_exp": symmetric_exponential_graph,
}


def graph(name: str, *, n: int) -> nx.Graph:
    """The named topology on n nodes; raises ValueError if it is not defined at n."""
    if name not in GRAPHS:
        raise KeyError(f"unknown topology {name!r}; known: {', '.join(GRAPHS)}")
    if n < 2:
        raise ValueError(f"n = {n} must be >= 2")
    return GRAPHS[name](n)


def defined(name: str, *, n: int) -> bool:
    """Whether topology ``name`` exists on n nodes (torus/grid need squares, hypercube powers of 2)."""
    try:
        graph(name, n=n)
    except ValueError:
        return False
    return True


def metropolis(g: nx.Graph) -> np.ndarray:
    """Metropolis weights W_ij = 1/(1 + max(deg_i, deg_j)) on edges, W_ii = 1 - sum_j W_ij. # (n, n)"""
    n = g.number_of_nodes()
    deg = np.array([g.degree(i) for i in range(n)], dtype=float)
    w = np.zeros((n, n))
    for i, j in g.edges():
        w[i, j] = w[j, i] = 1.0 / (1.0 + max(deg[i], deg[j]))
    w[np.diag_indices(n)] = 1.0 - w.sum(axis=1)
    return w


def mixing_matrix(name: str, *, n: int) -> np.ndarray:
    """Metropolis matrix of a named topology; ``complete`` is exactly J/n. # (n, n)

    Any topology on one node is W = [1]; on two nodes every connected topology is J/2
    (teleportation with k = 1 or 2 active slots).
    """
    if n == 1:
        if name not in GRAPHS:
            raise KeyError(f"unknown topology {name!r}; known: {', '.join(GRAPHS)}")
        return np.ones((1, 1))
    if n == 2 and name in GRAPHS and name not in ("torus", "grid"):
        return np.full((2, 2), 0.5)
    if name == "complete":
        return np.full((n, n), 1.0 / n)
    return metropolis(graph(name, n=n))


# --- fixed-gap families (docs/papers/topology.md; the paper's own construction is UNKNOWN) ---

KRONECKER_MEMBERS = ("complete", "hypercube", "ring", "torus", "sym_exp")


def kronecker_family(member: str, *, n: int, base_n: int = 8) -> np.ndarray:
    """W = W_ring(base_n) ⊗ W_G with G = ``member`` on n / base_n nodes. # (n, n)

    The spectral gap equals the base ring's whenever |λ_2(G)| <= λ_2(ring_base_n), so every valid
    member has the same p. Raises ValueError when G would change p (e.g. grid 5x5).
    """
    if n % base_n:
        raise ValueError(f"kronecker family needs n divisible by base_n = {base_n}; got n = {n}")
    base = mixing_matrix("ring", n=base_n)
    inner = mixing_matrix(member, n=n // base_n)
    lam_base = np.sort(np.abs(np.linalg.eigvalsh(base)))[-2]
    lam_inner = np.sort(np.abs(np.linalg.eigvalsh(inner)))[-2] if inner.shape[0] > 1 else 0.0
    if lam_inner > lam_base + 1e-12:
        raise ValueError(f"kronecker member {member} on {n // base_n} nodes has |λ2| = {lam_inner:.4f} "
                         f"> {lam_base:.4f} of ring{base_n}; it would change p")
    return np.kron(base, inner)


SPECTRAL_TAILS = ("spike", "graded", "flat")


def ring_fourier_basis(n: int) -> np.ndarray:
    """Real orthonormal eigenvectors of the ring, sorted by ring eigenvalue (descending). # (n, n)

    Column 0 is the constant vector; then cos_k, sin_k for k = 1, 2, ... (and (-1)^i for even n).
    Built explicitly so degenerate pairs have a fixed, machine-independent basis.
    """
    i = np.arange(n)
    cols = [np.full(n, 1.0 / math.sqrt(n))]
    for k in range(1, n // 2 + 1):
        if 2 * k == n:
            cols.append(np.cos(math.pi * i) / math.sqrt(n))
        else:
            cols.append(np.cos(2 * math.pi * k * i / n) * math.sqrt(2.0 / n))
            cols.append(np.sin(2 * math.pi * k * i / n) * math.sqrt(2.0 / n))
    return np.stack(cols, axis=1)


def spectral_family(tail: str, *, n: int, mu2: float = 0.9) -> np.ndarray:
    """W = 11ᵀ/n + Σ_{i>=2} μ_i u_i u_iᵀ on the ring eigenvectors, μ_2 = mu2 fixed. # (n, n)

    Tails: spike μ_{3..n} = 0; graded μ_i = mu2 (n-i)/(n-2); flat μ_i = mu2 (= mu2 I + (1-mu2) J/n).
    'spike' and 'graded' have negative entries (a simulation device, not a physical graph).
    """
    if tail not in SPECTRAL_TAILS:
        raise KeyError(f"unknown spectral tail {tail!r}; known: {', '.join(SPECTRAL_TAILS)}")
    if not 0.0 < mu2 < 1.0:
        raise ValueError(f"mu2 = {mu2} must be in (0, 1)")
    idx = np.arange(1, n + 1)  # paper index i = 1..n
    mu = {"spike": np.where(idx == 2, mu2, 0.0),
          "graded": mu2 * (n - idx) / (n - 2),
          "flat": np.full(n, mu2)}[tail]
    mu[0] = 1.0
    u = ring_fourier_basis(n)
    w = (u * mu) @ u.T
    return (w + w.T) / 2.0


def family_matrix(family: str, member: str, *, n: int) -> np.ndarray:
    """One member of a fixed-gap family ('kronecker' or 'spectral'). # (n, n)"""
    if family == "kronecker":
        return kronecker_family(member, n=n)
    if family == "spectral":
        return spectral_family(member, n=n)
    raise KeyError(f"unknown fixed-p family {family!r}; known: kronecker, spectral")
