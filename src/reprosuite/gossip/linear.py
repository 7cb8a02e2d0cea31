"""Batched D-SGD of linear models that share their minibatches (topology Fig. 2).

A fixed-p family has M members (mixing matrices) trained with common random numbers: at every
round, node i of every member reads the same minibatch. ``LinearFamily`` keeps the weights of
the K slots (seeds x nodes) of every member slot-major, (K, M, C, F), and runs a round as

    logits = x [W_1; ...; W_M]ᵀ + b          one batched matmul over the K slots, M·C outputs each
    G = dLᵀ x                               one batched matmul: every member's weight gradient
    X_m <- W_m (X_m - lr (G_m + l2 X_m))    the member's mixing operator (gossip/operators.py)

The arithmetic is ``GossipSimulator.step``'s for an ``nn.Linear`` (autograd from the loss to the
logits, closed-form weight gradients), with the members' logits and weight gradients in one
matmul each: equal up to float rounding (tests/test_gossip.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # per-example: (..., C), (...) -> (...)


class LinearFamily:
    """M members x K slots of a linear model F -> C, every slot starting at 0."""

    def __init__(self, members: int, slots: int, features: int, classes: int, *, loss_fn: LossFn,
                 weight_decay: float = 0.0, dtype: torch.dtype = torch.float32, device: str = "cpu"):
        self.m, self.k, self.f, self.c = members, slots, features, classes
        self.loss_fn, self.weight_decay = loss_fn, weight_decay
        # slot-major: the M members' weights of a slot are one (M·C, F) matrix (one matmul per round)
        self.w = torch.zeros(slots, members, classes, features, dtype=dtype, device=device)
        self.b = torch.zeros(slots, members, classes, dtype=dtype, device=device)

    def params(self, m: int, slots: slice = slice(None)) -> torch.Tensor:
        """Member m's parameters of the slots ``slots`` as GossipSimulator lays them out. # (k, C·F + C)"""
        w, b = self.w[slots, m], self.b[slots, m]
        return torch.cat([w.reshape(len(w), -1), b], dim=1)

    def step(self, x: torch.Tensor, y: torch.Tensor, *, lr: float, mixing: Sequence[Callable]) -> None:
        """One round for every member: x (K, B, F), y (K, B) the slots' minibatches; ``mixing[m]``
        maps (K, D) -> (K, D) (member m's W on every seed's block)."""
        k, m, c, f = self.k, self.m, self.c, self.f
        out = torch.baddbmm(self.b.view(k, 1, m * c), x, self.w.view(k, m * c, f).transpose(1, 2))
        out.requires_grad_(True)  # (K, B, M·C): autograd from the loss to the logits only
        b = x.shape[1]
        losses = self.loss_fn(out.view(k, b, m, c), y[:, :, None].expand(k, b, m)).mean(dim=1)  # (K, M)
        (dout,) = torch.autograd.grad(losses.sum(), out)  # (K, B, M·C)
        grad_w = torch.bmm(dout.transpose(1, 2), x).view(k, m, c, f)  # every member's weight gradient
        grad_b = dout.sum(dim=1).view(k, m, c)
        if self.weight_decay:
            grad_w.add_(self.weight_decay * self.w)
            grad_b.add_(self.weight_decay * self.b)
        half_w, half_b = grad_w.mul_(-lr).add_(self.w), grad_b.mul_(-lr).add_(self.b)  # x - lr g
        new_w, new_b = torch.empty_like(self.w), torch.empty_like(self.b)
        for i in range(m):
            new_w[:, i] = mixing[i](half_w[:, i].reshape(k, c * f)).view(k, c, f)
            new_b[:, i] = mixing[i](half_b[:, i])
        self.w, self.b = new_w, new_b

    @torch.no_grad()
    def node_losses(self, m: int, x: torch.Tensor, y: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
        """Mean loss over (x, y) of every slot of member m. # (K,)"""
        w = self.w[:, m].reshape(self.k * self.c, self.f)
        b = self.b[:, m].reshape(1, -1)
        total = 0.0
        for start in range(0, len(x), chunk):
            xb, yb = x[start:start + chunk], y[start:start + chunk]
            out = torch.addmm(b, xb, w.t()).view(len(xb), self.k, self.c)  # (B, K, C)
            total = total + self.loss_fn(out, yb[:, None].expand(len(xb), self.k)).sum(dim=0)
        return total / len(x)

    @torch.no_grad()
    def mean_loss(self, m: int, slots: slice, x: torch.Tensor, y: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
        """Mean loss over (x, y) of x̄, the average of member m's slots ``slots``. # ()"""
        w, b = self.w[slots, m].mean(dim=0), self.b[slots, m].mean(dim=0)
        total = 0.0
        for start in range(0, len(x), chunk):
            total = total + self.loss_fn(torch.addmm(b, x[start:start + chunk], w.t()), y[start:start + chunk]).sum()
        return total / len(x)
