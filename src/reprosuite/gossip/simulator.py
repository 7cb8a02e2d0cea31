"""Batched multi-node D-SGD simulator (topology Fig. 2-3; the core reused by teleportation).

k parameter *slots* of one architecture live in one flat tensor ``flat`` of shape (k, d). A round
is one batched forward/backward for all slots (``torch.func.functional_call`` under ``vmap``,
autograd on the stacked parameters), a local heavy-ball step per slot, then gossip
``flat <- W @ flat`` (the paper's X^(r+1) = (X^(r) - η G^(r)) W in row layout). There is no
Python loop over slots.

For D-SGD slot i is node i. For teleportation-style methods the caller passes, each round, the
batch of the node a slot currently sits on (``NodeBatches.draw(assignment)``) and any k x k
(possibly time-varying) W. Several independent runs can share one simulator (one batched
forward/backward for all of them): W is then a list of diagonal blocks, one per run's
consecutive slots, and ``xbar``/``consensus_distance``/``evaluate`` take the run's ``slots``. Momentum buffers are indexed by slot, so they travel with the slot
(``momentum_home="travels"``, the default); with ``momentum_home="stays"`` there is one buffer per
*node* (``n_nodes`` of them) and a slot uses the buffer of the node it currently sits on
(``nodes`` argument of ``step``/``apply``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # per-example: (..., C), (...) -> (...)


def reuse_freed_memory() -> None:
    """Keep freed memory in this process for the next tensor of the same size (glibc only).

    A simulation allocates and frees tensors of tens of MB every round; by default glibc returns
    each to the kernel (mmap/munmap), and the next one page-faults in again: 15-30% of a stacked
    LeNet-GN job's CPU time was kernel time. With the mmap threshold and the trim threshold at
    1 GiB the allocator reuses the freed blocks. It changes no result, only where memory comes from.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc (macOS, musl): the default allocator
        pass


def cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy for any leading dims: (..., C), (...) -> (...).

    Losses are per example (not vmapped means): vmap over F.cross_entropy is ~30x slower on CPU.
    """
    flat = nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="none")
    return flat.reshape(y.shape)


def linear_grouped_forward(params: dict[str, torch.Tensor], x: torch.Tensor,
                           shared_input: bool = False) -> torch.Tensor:
    """k stacked nn.Linear models: x (k, B, F) or shared (B, F) -> (k, B, C).

    The shared-input case is one (B, F) @ (F, k*C) matmul; vmap's version is ~10x slower on CPU.
    """
    weight, bias = params["weight"], params.get("bias")  # (k, C, F), (k, C) or None
    if shared_input:
        k, c, f = weight.shape
        out = x @ weight.reshape(k * c, f).T  # (B, k*C)
        if bias is not None:
            out = out + bias.reshape(-1)
        return out.reshape(len(x), k, c).transpose(0, 1)
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


class GossipSimulator:
    """k stacked copies of ``model`` trained by D-SGD (local step, then gossip with W)."""

    # slots per batched forward/backward: many slots at once (stacked runs) make tensors that
    # outgrow the caches and are freshly mapped by the allocator on every call (~1.5x slower
    # per slot at 200 slots of LeNet-GN on CPU); every slot's arithmetic is the same either way
    slot_chunk = 50

    def __init__(self, model: nn.Module, *, n_slots: int, loss_fn: LossFn = cross_entropy, momentum: float = 0.0,
                 weight_decay: float = 0.0, mix_momentum: bool = False, device: str = "cpu",
                 dtype: torch.dtype = torch.float32, momentum_home: str = "travels", n_nodes: int | None = None):
        if n_slots < 1:
            raise ValueError(f"n_slots = {n_slots} must be >= 1")
        if momentum_home not in ("travels", "stays"):
            raise ValueError(f"momentum_home = {momentum_home!r}; allowed: travels, stays")
        if momentum_home == "stays" and mix_momentum:
            raise ValueError("mix_momentum = True needs momentum_home = 'travels' (node buffers are not gossiped)")
        self.momentum_home = momentum_home
        self.model = model.to(device=device, dtype=dtype)
        self.loss_fn, self.momentum, self.weight_decay = loss_fn, momentum, weight_decay
        self.mix_momentum, self.device, self.dtype = mix_momentum, device, dtype
        named = [(k, p.detach()) for k, p in self.model.named_parameters()]
        self.names = [k for k, _ in named]
        self.shapes = [tuple(p.shape) for _, p in named]
        self.numels = [p.numel() for _, p in named]
        base = torch.cat([p.reshape(-1) for _, p in named])  # (d,) every slot starts at x^(0)
        self.flat = base.unsqueeze(0).repeat(n_slots, 1).contiguous()  # (k, d)
        self.buf = torch.zeros_like(self.flat) if momentum else None  # (k, d), not mixed by default
        if momentum and momentum_home == "stays":  # one buffer per node: (n_nodes, d)
            self.buf = torch.zeros((n_nodes or n_slots, base.numel()), dtype=dtype, device=device)
        # a model may supply an equivalent grouped kernel (params (k, ...), x (k, B, ...)) -> (k, B, C)
        grouped = getattr(self.model, "grouped_forward", None)
        if grouped is None and type(self.model) is nn.Linear:
            grouped = linear_grouped_forward
        self._fwd = grouped if grouped is not None else vmap(self._forward, in_dims=(0, 0))
        self._fwd_shared_x = (vmap(self._forward, in_dims=(0, None)) if grouped is None
                              else lambda params, x: grouped(params, x, shared_input=True))

    # --- views ----------------------------------------------------------------------------
    @property
    def n_slots(self) -> int:
        return self.flat.shape[0]

    @property
    def dim(self) -> int:
        return self.flat.shape[1]

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """(k, d) -> {name: (k, *shape)} views; (d,) -> {name: shape} views."""
        lead = flat.shape[:-1]
        chunks = torch.split(flat, self.numels, dim=-1)
        return {n: c.reshape(*lead, *s) for n, c, s in zip(self.names, chunks, self.shapes)}

    def _forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, params, (x,))

    def start_from(self, model: nn.Module, slots: slice = slice(None)) -> None:
        """Every slot in ``slots`` starts at ``model``'s parameters (runs of a stacked simulator
        may start from different models)."""
        base = torch.cat([p.detach().reshape(-1) for _, p in model.named_parameters()])
        self.flat[slots] = base.to(device=self.flat.device, dtype=self.dtype)

    def xbar(self, slots: slice = slice(None)) -> torch.Tensor:
        """Average model x̄ (of the slots ``slots``). # (d,)"""
        return self.flat[slots].mean(dim=0)

    def consensus_distance(self, slots: slice = slice(None)) -> float:
        """(1/n) ‖X - X̄‖²_F (over the slots ``slots``)."""
        return float(((self.flat[slots] - self.xbar(slots)) ** 2).sum(dim=1).mean())

    # --- one round --------------------------------------------------------------------------
    def local_gradients(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-slot minibatch gradients and losses; x (k, B, ...), y (k, B, ...) -> (k, d), (k,)."""
        if self._fwd is linear_grouped_forward:
            return self._linear_gradients(x, y)
        if self.n_slots <= self.slot_chunk:
            return self._gradients(self.flat, x, y)
        grad, losses = torch.empty_like(self.flat), torch.empty(self.n_slots, dtype=self.dtype, device=self.flat.device)
        for start in range(0, self.n_slots, self.slot_chunk):
            part = slice(start, start + self.slot_chunk)
            grad[part], losses[part] = self._gradients(self.flat[part], x[part], y[part])
        return grad, losses

    def _gradients(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        leaf = flat.detach().requires_grad_(True)
        out = self._fwd(self.unflatten(leaf), x)  # (k, B, C)
        losses = self.loss_fn(out, y).mean(dim=1)  # (k,) minibatch mean per slot
        (grad,) = torch.autograd.grad(losses.sum(), leaf)  # slot losses are separable
        return grad, losses.detach()

    def _linear_gradients(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``local_gradients`` of stacked nn.Linear models: autograd only from the loss to the outputs,
        then ∂/∂W = (∂L/∂out)ᵀ x and ∂/∂b = Σ_B ∂L/∂out as one batched matmul each (2-3x faster on CPU
        than autograd through baddbmm; equal up to float rounding, tests/test_gossip.py)."""
        params = self.unflatten(self.flat)
        out = linear_grouped_forward(params, x).requires_grad_(True)  # (k, B, C)
        losses = self.loss_fn(out, y).mean(dim=1)  # (k,)
        (dout,) = torch.autograd.grad(losses.sum(), out)  # (k, B, C)
        grads = {"weight": torch.bmm(dout.transpose(1, 2), x)}  # (k, C, F)
        if "bias" in params:
            grads["bias"] = dout.sum(dim=1)  # (k, C)
        flat = torch.cat([grads[n].reshape(self.n_slots, -1) for n in self.names], dim=1)  # (k, d)
        return flat, losses.detach()

    def step(self, x: torch.Tensor, y: torch.Tensor, *, lr: float,
             w, nodes: torch.Tensor | None = None) -> torch.Tensor:
        """x_i <- Σ_j W_ij (x_j - lr * m_j) with heavy-ball m_j = β m_j + g_j; returns losses (k,)."""
        grad, losses = self.local_gradients(x, y)
        self.apply(grad, lr=lr, w=w, nodes=nodes, scratch=True)
        return losses

    def apply(self, grad: torch.Tensor, *, lr: float, w, nodes: torch.Tensor | None = None,
              scratch: bool = False) -> None:
        """Local SGD step with the given gradients (k, d), then gossip with W (k, k) (None: no gossip),
        a ``MixingOperator`` or a block-diagonal W given as its list of square blocks (stacked runs).

        ``nodes`` (k,) names the node each slot sits on; it matters only for ``momentum_home='stays'``.
        ``scratch``: ``grad`` may be overwritten (in-place arithmetic, the same roundings).
        """
        if self.weight_decay:
            decay = self.weight_decay * self.flat
            grad, scratch = (grad.add_(decay) if scratch else grad + decay), True
        if self.buf is not None and self.momentum_home == "stays":
            where = torch.arange(self.n_slots, device=self.flat.device) if nodes is None else torch.as_tensor(nodes, device=self.flat.device)
            local = self.buf[where].mul_(self.momentum).add_(grad)  # (k, d) gathered copy
            self.buf[where] = local
            grad, scratch = local, True
        elif self.buf is not None:
            self.buf.mul_(self.momentum).add_(grad)
            grad, scratch = self.buf, False
        # x - lr g; in place as (-lr g) + x, which rounds exactly like it
        half = grad.mul_(-lr).add_(self.flat) if scratch else self.flat - lr * grad  # (k, d)
        if w is None:
            self.flat = half
            return
        self.flat = self._mix(w, half)
        if self.mix_momentum and self.buf is not None:
            self.buf = self._mix(w, self.buf)

    def _mix(self, w, x: torch.Tensor) -> torch.Tensor:
        """W x for W a matrix, a ``MixingOperator`` (gossip/operators.py) or a list of diagonal blocks."""
        if not isinstance(w, list | tuple):
            return w(x) if callable(w) else self.as_matrix(w) @ x
        if sum(len(b) for b in w) != self.n_slots:
            raise ValueError(f"W blocks cover {sum(len(b) for b in w)} slots; expected {self.n_slots}")
        out, start = torch.empty_like(x), 0
        for block in w:  # each run's own matmul: the same arithmetic as a simulator of that run alone
            stop = start + len(block)
            if callable(block):
                out[start:stop] = block(x[start:stop])
            else:
                torch.mm(block, x[start:stop], out=out[start:stop])
            start = stop
        return out

    def as_matrix(self, w: torch.Tensor | np.ndarray) -> torch.Tensor:
        w = torch.as_tensor(w, dtype=self.dtype, device=self.device)
        if w.shape != (self.n_slots, self.n_slots):
            raise ValueError(f"W has shape {tuple(w.shape)}; expected ({self.n_slots}, {self.n_slots})")
        return w

    # --- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, *, at: str = "xbar", chunk: int = 2000,
                 slots: slice = slice(None), accuracy: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mean loss and accuracy of x̄ (at='xbar', shapes ()) or of every slot (at='nodes', (k,)),
        over the slots ``slots`` (one run of a stacked simulator); accuracy None if not asked for."""
        if at not in ("xbar", "nodes"):
            raise ValueError(f"at = {at!r}; allowed: xbar, nodes")
        loss_sum, correct = 0.0, 0.0
        flat = self.flat[slots]
        mean = self.unflatten(flat.mean(dim=0)) if at == "xbar" else None
        for start in range(0, len(x), chunk):
            xb, yb = x[start:start + chunk], y[start:start + chunk]
            if at == "xbar":
                out = self._forward(mean, xb)  # (B, C)
                loss_sum = loss_sum + self.loss_fn(out, yb).sum()
                if accuracy:
                    correct = correct + (out.argmax(-1) == yb).sum().to(self.dtype)
            else:
                out = self._fwd_shared_x(self.unflatten(flat), xb)  # (k, B, C)
                loss_sum = loss_sum + self.loss_fn(out, yb.expand(out.shape[0], -1)).sum(dim=1)
                if accuracy:
                    correct = correct + (out.argmax(-1) == yb).sum(dim=1).to(self.dtype)
        return loss_sum / len(x), (correct / len(x) if accuracy else None)

    # --- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor | None]:
        return {"flat": self.flat.cpu(), "buf": None if self.buf is None else self.buf.cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor | None]) -> None:
        self.flat = state["flat"].to(self.device, self.dtype)
        if state.get("buf") is not None:
            self.buf = state["buf"].to(self.device, self.dtype)


class NodeBatches:
    """Minibatch indices per node from equal-size (±1) shards; all draws through a generator."""

    def __init__(self, shards: list[np.ndarray], *, batch_size: int, device: str = "cpu"):
        sizes = np.array([len(s) for s in shards])
        if sizes.min() < batch_size:
            raise ValueError(f"smallest shard has {sizes.min()} examples < batch_size {batch_size}")
        pad = np.full((len(shards), sizes.max()), -1, dtype=np.int64)
        for i, s in enumerate(shards):  # bookkeeping once, not per round
            pad[i, :len(s)] = s
        self.index = torch.as_tensor(pad, device=device)  # (n_nodes, m_max), -1 = padding
        self.sizes = torch.as_tensor(sizes, device=device)  # (n_nodes,)
        self.batch_size = batch_size
        self.rounds_per_epoch = int(sizes.min()) // batch_size

    def epoch(self, generator: torch.Generator) -> torch.Tensor:
        """One epoch without replacement per node. # (rounds, n_nodes, B)"""
        keys = torch.rand(self.index.shape, generator=generator, device=self.index.device)
        keys = keys.masked_fill(self.index < 0, 2.0)
        perm = torch.gather(self.index, 1, keys.argsort(dim=1))  # valid entries first
        used = perm[:, : self.rounds_per_epoch * self.batch_size]
        return used.reshape(len(self.sizes), self.rounds_per_epoch, self.batch_size).transpose(0, 1)

    def draw(self, nodes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """With replacement, from the shard of each given node (slot re-indexing). # (k, B)"""
        u = torch.rand((len(nodes), self.batch_size), generator=generator, device=self.index.device)
        pos = (u * self.sizes[nodes, None]).long()
        return self.index[nodes[:, None], pos]
