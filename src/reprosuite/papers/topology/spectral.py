"""Fig. 1 and Tab. 1 of the topology paper: spectral quantities and transient iterations.

Purely numerical (no training): every row is one (topology, n) Metropolis matrix.
"""

from __future__ import annotations

import numpy as np

from reprosuite.gossip import spectra, topologies


def _edge_weights(w: np.ndarray) -> tuple[float, float]:
    off = w[~np.eye(len(w), dtype=bool)]
    nz = off[np.abs(off) > 0]
    return (float(nz.min()), float(nz.max())) if len(nz) else (0.0, 0.0)


def spectral_row(name: str, *, n: int) -> dict:
    """One record of spectral quantities and matrix checks for topology ``name`` on n nodes."""
    w = topologies.mixing_matrix(name, n=n)
    lo, hi = _edge_weights(w)
    return {"topology": name, "n": n, **spectra.summary(w), "edge_weight_min": lo, "edge_weight_max": hi,
            "diag_min": float(np.diag(w).min()), "diag_max": float(np.diag(w).max())}


def run_fig1(cfg, ctx, shard):
    """Fig. 1: (1-p)/p and T_new vs n per topology, plus hypercube vs dimension."""
    c = cfg.fig1
    done = set()
    grid = [(t, n) for t in c.topologies for n in c.n_values if topologies.defined(t, n=n)]
    if "hypercube" in c.topologies:
        grid += [("hypercube", 1 << dim) for dim in c.hypercube_dims]
    for name, n in ctx.progress(grid, desc="fig1"):
        if (name, n) in done:
            continue
        done.add((name, n))
        row = spectral_row(name, n=n)
        row["dim"] = n.bit_length() - 1 if name == "hypercube" else -1
        yield {"dataset": "none (spectra of W)", **row}


def run_transient(cfg, ctx, shard):
    """Tab. 1 data: transient iterations max(n³X², n/p²) with X = (1-p)/p and X = T_new."""
    c = cfg.transient
    for name in c.topologies:
        for n in c.n_values:
            if not topologies.defined(name, n=n):
                continue
            lams = spectra.eigenvalues(topologies.mixing_matrix(name, n=n))
            p, tg, tn = spectra.spectral_gap(lams), spectra.t_gap(lams), spectra.t_new(lams)
            yield {"dataset": "none (spectra of W)", "topology": name, "n": n, "p": p, "T_gap": tg, "T_new": tn,
                   "transient_prop1": spectra.transient_iterations(n=n, p=p, x=tg),
                   "transient_thm1": spectra.transient_iterations(n=n, p=p, x=tn)}
