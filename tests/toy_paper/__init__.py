"""A toy paper used by tests/test_workflow.py: dropped into a copy of the package to show that a
paper is a folder under papers/ plus a folder under experiments/, and nothing else."""

from dataclasses import dataclass

from reprosuite.claims import Outcome
from reprosuite.registry import Artifact, Experiment, Paper, register


@dataclass(frozen=True)
class Sweep:
    steps: int = 4

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps = {self.steps} must be >= 1")


@dataclass(frozen=True)
class ToyPaperConfig:
    seeds: tuple[int, ...] = (0, 1)
    sweep: Sweep = Sweep()


def run_sweep(cfg, ctx, shard):
    rng = ctx.numpy_rng("noise")
    for step in range(cfg.sweep.steps):
        yield {"step": step, "value": step + float(rng.normal(scale=0.01)), "dataset": "none"}


def tab1(tables, cfg):
    return tables["sweep"].groupby("step", as_index=False)["value"].mean()


def fig1(tables, cfg):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(tables["tab1"]["step"], tables["tab1"]["value"], label="mean over seeds")
    ax.set_xlabel("step")
    ax.set_ylabel("value (a.u.)")
    ax.legend()
    return fig


def increasing(tables):
    v = tables["tab1"]["value"].to_numpy()
    return Outcome(bool((v[1:] > v[:-1]).all()), float(v[-1] - v[0]), "> 0")


register(Paper(
    id="toy_paper", title="A toy paper", citation="none", config=ToyPaperConfig,
    experiments={"sweep": Experiment("sweep", run=run_sweep)},
    tables={"tab1": Artifact("tab1", ("sweep",), tab1, "Mean value per step.")},
    figures={"fig1": Artifact("fig1", ("tab1",), fig1, "Mean value against step.")},
    checks={"increasing": increasing},
))
