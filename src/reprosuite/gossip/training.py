"""The decentralized training loop shared by topology (Fig. 3) and teleportation (Tab. 2, Fig. 4).

``train`` runs a ``GossipSimulator`` for a number of epochs with a per-round learning-rate
schedule (``learning_rate``: linear warm-up, then cosine), draws the minibatches of every node
from ``NodeBatches`` (one epoch without replacement per node at a time), asks a ``MixingPlan``
which node each slot sits on and which W to gossip with, evaluates x̄ (the slot mean) and the
individual slots on the test set, and checkpoints after every epoch (``ctx.save_state``), so a
killed job resumes where it stopped and yields the same records.

``train_runs`` does the same for several independent ``Run``s stacked in one simulator (one job
trains every topology or method of a seed: one batched forward/backward per round, W block-
diagonal). Each run reads a named minibatch stream (runs with the same data split and batch
seed share one, as separate jobs drew the same batches), has its own plan and records, and
computes exactly what it computes alone: per-slot arithmetic does not depend on the other slots.

``MixingPlan`` covers D-SGD (slot i = node i, a fixed or cyclic W) and TELEPORTATION (k slots
on k nodes drawn by a ``SlotSampler``), with optional accounting of samples processed,
node-steps and simulated time on a heterogeneous network (``gossip.cost``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data import normalisation
from .cost import gossip_time, link_costs, teleport_time
from .schedule import learning_rate
from .simulator import GossipSimulator, NodeBatches
from .teleport import SlotSampler


@dataclass
class Clock:
    """Simulated time: link cost 1 on the preferred topology, τ elsewhere, plus compute per round."""

    n: int
    tau: float = 5.0
    compute_cost: float = 0.0
    preferred: str = "ring"
    teleport_cost: str = "max_link"

    def __post_init__(self):
        self.cost = link_costs(self.n, tau=self.tau, preferred=self.preferred)


class MixingPlan:
    """Which node each slot sits on and which W mixes the slots, round by round.

    D-SGD: ``sampler=None`` (slot i is node i), ``mixing`` one W or a cyclic list (time-varying).
    TELEPORTATION: a ``SlotSampler`` of k nodes per round and the k x k slot mixing matrix.
    ``account=True`` adds samples processed, node-steps and simulated time to the records.
    """

    def __init__(self, mixing: np.ndarray | Sequence[np.ndarray], *, n_nodes: int, sampler: SlotSampler | None = None,
                 clock: Clock | None = None, account: bool = False, batch_size: int = 1):
        mats = [np.asarray(mixing)] if np.ndim(mixing) == 2 else [np.asarray(m) for m in mixing]
        self.mats, self.n_nodes, self.sampler, self.clock = mats, n_nodes, sampler, clock
        self.account, self.batch_size = account, batch_size
        self.k = mats[0].shape[0]
        if sampler is None and self.k != n_nodes:
            raise ValueError(f"without a sampler the slots are the nodes: W is {self.k}x{self.k}, n = {n_nodes}")
        self._w: list[torch.Tensor] | None = None
        self.prev = np.arange(self.k) if sampler is None else None  # slots start on nodes (first round: no move)
        self.samples = self.node_steps = 0
        self.sim_time = 0.0

    def bind(self, sim: GossipSimulator) -> None:
        self._w = [torch.as_tensor(m, dtype=sim.dtype, device=sim.device) for m in self.mats]

    def next(self, round_: int) -> tuple[np.ndarray | None, torch.Tensor]:
        """(nodes of the slots or None for identity, W) of this round; updates the accounting."""
        assert self._w is not None, "call bind(sim) first"
        nodes = None if self.sampler is None else self.sampler.next()
        w_np, w = self.mats[round_ % len(self.mats)], self._w[round_ % len(self._w)]
        if self.account:
            where = np.arange(self.k) if nodes is None else nodes
            self.samples += self.k * self.batch_size
            self.node_steps += self.k
            if self.clock is not None:
                move = 0.0 if self.prev is None else teleport_time(self.prev, where, self.clock.cost,
                                                                   mode=self.clock.teleport_cost, tau=self.clock.tau)
                self.sim_time += self.clock.compute_cost + move + gossip_time(w_np, where, self.clock.cost)
            self.prev = where
        return nodes, w

    def record(self) -> dict[str, Any]:
        if not self.account:
            return {}
        row = {"samples_processed": self.samples, "node_steps": self.node_steps}
        if self.clock is not None:
            row["sim_time"] = self.sim_time
        return row

    def state(self) -> dict[str, Any]:
        return {"sampler": None if self.sampler is None else self.sampler.state(), "prev": self.prev,
                "samples": self.samples, "node_steps": self.node_steps, "sim_time": self.sim_time}

    def set_state(self, state: dict[str, Any]) -> None:
        if self.sampler is not None:
            self.sampler.set_state(state["sampler"])
        self.prev, self.samples = state["prev"], state["samples"]
        self.node_steps, self.sim_time = state["node_steps"], state["sim_time"]


@dataclass
class Run:
    """One training run inside a stacked simulator: its consecutive slots (``plan.k`` of them), the
    key of the minibatch stream it reads and the columns of its records."""

    plan: MixingPlan
    stream: str
    base: dict[str, Any]


@dataclass
class EvalSets:
    """Test tensors: x̄ is evaluated on (x, y), the individual slots on the subset ``nodes``."""

    x: torch.Tensor
    y: torch.Tensor
    nodes: torch.Tensor


class _Stream:
    """Per-node minibatch indices, one ``NodeBatches.epoch`` block after another (resumable)."""

    def __init__(self, batches: NodeBatches, gen: torch.Generator):
        self.batches, self.gen = batches, gen
        self.block: torch.Tensor | None = None
        self.pos = 0

    def next(self) -> torch.Tensor:  # (n_nodes, B)
        if self.block is None or self.pos >= len(self.block):
            self.block, self.pos = self.batches.epoch(self.gen), 0
        self.pos += 1
        return self.block[self.pos - 1]


def train(ctx, *, sim: GossipSimulator, batches: NodeBatches, gen: torch.Generator, x_train: torch.Tensor,
          y_train: torch.Tensor, test: EvalSets, hp: Any, plan: MixingPlan, base: dict[str, Any],
          rounds_per_epoch: int | None = None, desc: str = "train") -> Iterator[dict[str, Any]]:
    """Train for ``hp.epochs`` epochs of ``rounds_per_epoch`` rounds; yield one row per epoch.

    ``hp`` has the schedule fields of ``learning_rate`` plus ``eval_every`` (epochs) and
    ``eval_on`` in {xbar, nodes, both}. Rows: ``base``, epoch, rounds, train_loss_node_mean,
    consensus_distance, the plan's accounting, then test metrics at evaluation epochs.
    """
    yield from train_runs(ctx, sim=sim, runs=[Run(plan, "batches", base)], streams={"batches": (batches, gen)},
                          x_train=x_train, y_train=y_train, test=test, hp=hp, rounds_per_epoch=rounds_per_epoch,
                          desc=desc)


def train_runs(ctx, *, sim: GossipSimulator, runs: Sequence[Run],
               streams: dict[str, tuple[NodeBatches, torch.Generator]], x_train: torch.Tensor, y_train: torch.Tensor,
               test: EvalSets, hp: Any, rounds_per_epoch: int | None = None,
               desc: str = "train") -> Iterator[dict[str, Any]]:
    """``train`` for several runs stacked in ``sim`` (run r on the next ``runs[r].plan.k`` slots),
    each reading minibatches from ``streams[run.stream]``; per epoch one row per run, in run order.
    Every stream must have the same rounds per epoch (equal-size shards of one data set);
    ``rounds_per_epoch`` overrides it (TELEPORTATION's epochs counted in samples)."""
    sizes = [run.plan.k for run in runs]
    if sum(sizes) != sim.n_slots:
        raise ValueError(f"the runs have {sum(sizes)} slots; the simulator has {sim.n_slots}")
    per_epoch = {b.rounds_per_epoch for b, _ in streams.values()}
    if len(per_epoch) != 1:
        raise ValueError(f"stacked runs need streams with equal rounds per epoch; got {sorted(per_epoch)}")
    rpe = rounds_per_epoch or per_epoch.pop()
    bounds = np.cumsum([0, *sizes])  # run r: slots bounds[r] .. bounds[r + 1] - 1
    slots = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    # momentum_home='stays' keeps one buffer per node: run r owns buffer rows r*n .. r*n + n - 1
    stays = sim.buf is not None and sim.momentum_home == "stays"
    offsets = np.cumsum([0] + [run.plan.n_nodes for run in runs])
    for run in runs:
        run.plan.bind(sim)
    feeds = {key: _Stream(b, g) for key, (b, g) in streams.items()}
    rows, start = [], 0
    state = ctx.load_state()
    if state is not None:
        sim.load_state_dict(state["sim"])
        rows, start = state["rows"], state["epoch"]
        for key, feed in feeds.items():
            feed.gen.set_state(state["streams"][key]["generator"])
            feed.block, feed.pos = state["streams"][key]["block"], state["streams"][key]["pos"]
        for run, plan_state in zip(runs, state["plans"]):
            run.plan.set_state(plan_state)
        yield from rows
    for epoch in ctx.progress(range(start, hp.epochs), total=hp.epochs - start, desc=desc):
        losses = []
        for r in range(rpe):
            round_ = epoch * rpe + r
            drawn = {key: feed.next() for key, feed in feeds.items()}  # (n_nodes, B) per stream
            idx, ws, where = [], [], []
            for run, offset in zip(runs, offsets):
                nodes, w = run.plan.next(round_)
                batch = drawn[run.stream]
                if nodes is None:
                    nodes = torch.arange(run.plan.k, device=batch.device)  # slot i is node i
                else:
                    nodes = torch.as_tensor(nodes, device=batch.device)
                    batch = batch[nodes]  # (k, B): each slot reads its current node's minibatch
                idx.append(batch)
                ws.append(w)
                where.append(nodes + int(offset))
            idx, w = (idx[0], ws[0]) if len(runs) == 1 else (torch.cat(idx), ws)
            lr = learning_rate(hp, round_=round_, rounds_per_epoch=rpe)
            nodes = torch.cat(where) if stays else None
            losses.append(sim.step(x_train[idx], y_train[idx], lr=lr, w=w, nodes=nodes))
        for run, sl in zip(runs, slots):
            rows.append(_epoch_row(sim, run, sl, epoch, rpe, losses, test, hp))
        ctx.save_state({"sim": sim.state_dict(), "rows": rows, "epoch": epoch + 1, "plans": [r.plan.state() for r in runs],
                        "streams": {key: {"generator": f.gen.get_state(), "block": f.block, "pos": f.pos}
                                    for key, f in feeds.items()}})
        yield from rows[-len(runs):]


def _epoch_row(sim: GossipSimulator, run: Run, sl: slice, epoch: int, rpe: int, losses: list[torch.Tensor],
               test: EvalSets, hp: Any) -> dict[str, Any]:
    """Every epoch: train loss and consensus distance of the run's slots; test metrics at eval epochs."""
    own = torch.stack([loss[sl] for loss in losses])  # (rounds, k)
    row = {**run.base, "epoch": epoch + 1, "rounds": (epoch + 1) * rpe, "train_loss_node_mean": float(own.mean()),
           "consensus_distance": sim.consensus_distance(sl), **run.plan.record()}
    if (epoch + 1) % hp.eval_every == 0 or epoch + 1 == hp.epochs:
        if hp.eval_on in ("xbar", "both"):
            loss, acc = sim.evaluate(test.x, test.y, at="xbar", slots=sl)
            row |= {"test_loss_xbar": float(loss), "test_accuracy_xbar": float(acc)}
        if hp.eval_on in ("nodes", "both"):
            loss, acc = sim.evaluate(test.x[test.nodes], test.y[test.nodes], at="nodes", slots=sl)
            row |= {"test_loss_node_mean": float(loss.mean()), "test_accuracy_node_mean": float(acc.mean()),
                    "test_accuracy_node_min": float(acc.min())}
    return row


def image_tensor(x: np.ndarray, device: str, *, mean: float | Sequence[float],
                 std: float | Sequence[float]) -> torch.Tensor:
    """uint8 (N, H, W) -> normalised float (N, 1, H, W); colour (N, H, W, C) -> (N, C, H, W) with
    per-channel ``mean`` and ``std`` (sequences of length C, statistics of pixels on [0, 1])."""
    x = torch.as_tensor(np.array(x), dtype=torch.float32, device=device) / 255.0
    if x.ndim == 3:  # grey: one channel, scalar statistics (the arithmetic of topology Fig. 3, unchanged)
        (mean,), (std,) = np.atleast_1d(mean), np.atleast_1d(std)
        return ((x - float(mean)) / float(std)).unsqueeze(1)
    if x.ndim != 4 or len(np.atleast_1d(mean)) != x.shape[-1] or len(np.atleast_1d(std)) != x.shape[-1]:
        raise ValueError(f"image_tensor takes (N, H, W) or (N, H, W, C) pixels with C means and stds; got "
                         f"{tuple(x.shape)} with {len(np.atleast_1d(mean))} means, {len(np.atleast_1d(std))} stds")
    m, s = (torch.as_tensor(np.atleast_1d(v), dtype=torch.float32, device=device) for v in (mean, std))
    return ((x - m) / s).permute(0, 3, 1, 2).contiguous()


@dataclass
class ImageSplit:
    """Stratified train subset and test tensors of one image data set (seed-independent)."""

    train_idx: np.ndarray
    x_train: torch.Tensor
    y_train: torch.Tensor
    y_train_np: np.ndarray
    test: EvalSets


def image_split(data: Any, *, n_train: int | None, n_test: int | None, n_test_nodes: int, device: str) -> ImageSplit:
    """The first n_train (stratified, seed 0) training images and the test set (full or stratified),
    normalised with the data set's per-channel statistics (``reprosuite.data.normalisation``);
    grey images become (N, 1, H, W), colour images (N, H, W, C) become (N, C, H, W)."""
    from reprosuite.data import stratified_indices

    mean, std = normalisation(data.name)
    train = stratified_indices(data.y_train, n_train or len(data.y_train), seed=0)
    x_train = image_tensor(data.x_train[train], device, mean=mean, std=std)
    y_train = torch.as_tensor(data.y_train[train], device=device)
    test = stratified_indices(data.y_test, n_test or len(data.y_test), seed=0)
    x_test = image_tensor(data.x_test[test], device, mean=mean, std=std)
    y_test = torch.as_tensor(data.y_test[test], device=device)
    sub = torch.as_tensor(stratified_indices(y_test.cpu().numpy(), n_test_nodes, seed=0), device=device)
    return ImageSplit(train, x_train, y_train, data.y_train[train], EvalSets(x_test, y_test, sub))

