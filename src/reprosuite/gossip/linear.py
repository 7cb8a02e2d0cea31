"""Batched D-SGD of linear models that share their minibatches (topology Fig. 2).

A fixed-p family has M members (mixing matrices) trained with common random numbers: at every
round, node i of every member reads the same minibatch. ``LinearFamily`` keeps the K slots
(seeds x nodes) of every member as one (K, D) tensor per member, D = C·F + C (weight, then bias,
the layout of ``GossipSimulator``), and runs a round as

    logits_m = x W_mᵀ + b_m                 one batched matmul per member
    G = dLᵀ x for all members at once       one batched matmul over the K slots, M·C outputs each
    X_m <- W_m (X_m - lr (G_m + l2 X_m))    the member's mixing operator (gossip/operators.py)

The arithmetic is ``GossipSimulator.step``'s for an ``nn.Linear`` (autograd from the loss to the
logits, closed-form weight gradients), with the members' weight gradients in one matmul: equal
up to float rounding (tests/test_gossip.py).
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
        self.params = [torch.zeros(slots, classes * features + classes, dtype=dtype, device=device)
                       for _ in range(members)]  # (K, D) per member

    def weight(self, m: int, slots: slice = slice(None)) -> torch.Tensor:  # (k, C, F) view
        p = self.params[m][slots]
        return p[:, : self.c * self.f].unflatten(1, (self.c, self.f))

    def bias(self, m: int, slots: slice = slice(None)) -> torch.Tensor:  # (k, C) view
        return self.params[m][slots][:, self.c * self.f:]

    def step(self, x: torch.Tensor, y: torch.Tensor, *, lr: float, mixing: Sequence[Callable]) -> None:
        """One round for every member: x (K, B, F), y (K, B) the slots' minibatches; ``mixing[m]``
        maps (K, D) -> (K, D) (member m's W on every seed's block)."""
        douts = []
        for m in range(self.m):
            out = torch.baddbmm(self.bias(m).unsqueeze(1), x, self.weight(m).transpose(1, 2)).requires_grad_(True)
            losses = self.loss_fn(out, y).mean(dim=1)  # (K,) minibatch mean per slot
            (dout,) = torch.autograd.grad(losses.sum(), out)  # (K, B, C)
            douts.append(dout)
        dout = torch.cat(douts, dim=2)  # (K, B, M·C)
        grad_w = torch.bmm(dout.transpose(1, 2), x)  # (K, M·C, F): every member's weight gradient
        grad_b = dout.sum(dim=1)  # (K, M·C)
        cf = self.c * self.f
        for m in range(self.m):
            own = slice(m * self.c, (m + 1) * self.c)
            grad = torch.cat([grad_w[:, own].reshape(self.k, cf), grad_b[:, own]], dim=1)  # (K, D)
            if self.weight_decay:
                grad.add_(self.weight_decay * self.params[m])
            half = grad.mul_(-lr).add_(self.params[m])  # x - lr g
            self.params[m] = mixing[m](half)

    @torch.no_grad()
    def node_losses(self, m: int, x: torch.Tensor, y: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
        """Mean loss over (x, y) of every slot of member m. # (K,)"""
        w = self.weight(m).reshape(self.k * self.c, self.f)
        b = self.bias(m).reshape(1, -1)
        total = 0.0
        for start in range(0, len(x), chunk):
            xb, yb = x[start:start + chunk], y[start:start + chunk]
            out = torch.addmm(b, xb, w.t()).view(len(xb), self.k, self.c)  # (B, K, C)
            total = total + self.loss_fn(out, yb[:, None].expand(len(xb), self.k)).sum(dim=0)
        return total / len(x)

    @torch.no_grad()
    def mean_loss(self, m: int, slots: slice, x: torch.Tensor, y: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
        """Mean loss over (x, y) of x̄, the average of member m's slots ``slots``. # ()"""
        bar = self.params[m][slots].mean(dim=0)
        w, b = bar[: self.c * self.f].view(self.c, self.f), bar[self.c * self.f:]
        total = 0.0
        for start in range(0, len(x), chunk):
            total = total + self.loss_fn(torch.addmm(b, x[start:start + chunk], w.t()), y[start:start + chunk]).sum()
        return total / len(x)
