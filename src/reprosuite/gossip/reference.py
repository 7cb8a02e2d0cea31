"""Plain per-node reference of D-SGD (a Python loop over n nn.Modules).

Used only to check the batched ``GossipSimulator`` (tests/test_gossip.py) and to time it
(benchmarks/bench_simulator.py): same init, same batches, same heavy-ball step, same gossip.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class LoopDSGD:
    def __init__(self, model: nn.Module, *, n_nodes: int, momentum: float = 0.0):
        self.nodes = [copy.deepcopy(model) for _ in range(n_nodes)]
        self.momentum = momentum
        self.bufs = [[torch.zeros_like(p) for p in m.parameters()] for m in self.nodes]

    def step(self, x: torch.Tensor, y: torch.Tensor, *, lr: float, w: torch.Tensor) -> None:
        """x (n, B, ...), y (n, B); local heavy-ball step on every node, then gossip with W (n, n)."""
        for i, m in enumerate(self.nodes):
            m.zero_grad()
            nn.functional.cross_entropy(m(x[i]), y[i]).backward()
            with torch.no_grad():
                for p, b in zip(m.parameters(), self.bufs[i]):
                    b.mul_(self.momentum).add_(p.grad)
                    p.sub_(lr * b)
        with torch.no_grad():
            for params in zip(*(m.parameters() for m in self.nodes)):
                mixed = torch.einsum("ij,j...->i...", w, torch.stack(params))  # (n, *shape)
                for i, p in enumerate(params):
                    p.copy_(mixed[i])

    def flat(self) -> torch.Tensor:
        """Stacked parameters. # (n, d)"""
        return torch.stack([torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in self.nodes])
