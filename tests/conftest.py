"""Shared fixtures: a toy paper (not registered) that exercises the runner and claims engine."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import pytest

from reprosuite.claims import Outcome
from reprosuite.registry import Artifact, Experiment, Paper


@dataclass(frozen=True)
class ToyExp:
    steps: int = 3
    mode: Literal["linear", "square"] = "linear"
    rate: float = 0.5
    names: tuple[str, ...] = ("a", "b")

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps = {self.steps} must be >= 1")


@dataclass(frozen=True)
class ToyConfig:
    seeds: tuple[int, ...] = (0, 1)
    exp: ToyExp = field(default_factory=ToyExp)
    diverge_at: int | None = None


def toy_run(cfg, ctx, shard):
    import numpy as np

    ctx.use_dataset("digits")
    rng = ctx.numpy_rng("noise")
    state = ctx.load_state() or {"step": 0}
    for step in range(state["step"], cfg.exp.steps):
        value = shard["k"] * step + float(rng.normal())
        if cfg.diverge_at is not None and step >= cfg.diverge_at:
            value = math.inf
        ctx.save_state({"step": step + 1})
        yield {"step": step, "value": value, "k": shard["k"], "draw": float(np.float64(rng.random()))}


def toy_table(tables, cfg):
    return tables["exp"].groupby("k", as_index=False)["value"].mean()


def toy_figure(tables, cfg):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(tables["tab1"]["k"], tables["tab1"]["value"], label="mean")
    ax.set_xlabel("k")
    ax.set_ylabel("value")
    ax.legend()
    return fig


def check_positive(tables, *, threshold):
    low = float(tables["tab1"]["value"].min())
    return Outcome(low >= threshold, low, f">= {threshold}")


def check_broken(tables):
    raise ZeroDivisionError("broken on purpose")


TOY = Paper(
    id="topology",  # any valid id: the toy is never registered
    title="toy", citation="toy", config=ToyConfig,
    experiments={"exp": Experiment("exp", run=toy_run, shards=lambda c: {"k1": {"k": 1}, "k2": {"k": 2}})},
    tables={"tab1": Artifact("tab1", ("exp",), toy_table, "Mean value per k.")},
    figures={"fig1": Artifact("fig1", ("tab1",), toy_figure, "Mean value against k.")},
    checks={"positive": check_positive, "broken": check_broken},
)


class FakeContext:
    """A stand-in for the runner's RunContext in unit tests of experiment functions: derived seeds,
    generators, an in-memory checkpoint and a pass-through progress bar."""

    experiment, paper, shard, scale, device, data_dir, seed = "x", "test", "all", "smoke", "cpu", None, 0

    def __init__(self, **fields):
        self.state, self.datasets = None, {}
        self.__dict__.update(fields)

    def use_dataset(self, name, stand_in_for=None):
        self.datasets[name] = stand_in_for
        self.dataset = name

    def seed_for(self, stage):
        from reprosuite.runner import derive_seed

        return derive_seed("test", stage)

    def torch_generator(self, stage, device="cpu"):
        import torch

        return torch.Generator().manual_seed(self.seed_for(stage))

    def numpy_rng(self, stage):
        import numpy as np

        return np.random.default_rng(self.seed_for(stage))

    def save_state(self, state):
        self.state = state

    def load_state(self):
        return self.state

    def progress(self, it, total=None, desc="", **kw):
        return iter(it)


@pytest.fixture
def toy_paper():
    return TOY
