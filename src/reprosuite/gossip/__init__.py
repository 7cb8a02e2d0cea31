"""Shared gossip core (topology paper, reused by teleportation).

- ``topologies``: networkx graphs, Metropolis weights, the two fixed-gap families;
- ``spectra``: p, (1-p)/p, T_new and transient-iteration counts (pure functions);
- ``partition``: Dirichlet label-skew splits into equal-size node shards;
- ``simulator``: the batched multi-node D-SGD simulator (stacked parameters, vmap, W as a matmul).
"""
