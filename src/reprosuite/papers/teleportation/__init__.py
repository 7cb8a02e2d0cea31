"""Paper ``teleportation``: Takezawa & Stich, "Scalable Decentralized Learning with Teleportation"
(arXiv 2501.15259, ICLR 2025).

Declarations only (cheap to import). Experiments: ``mixing`` (slot mixing matrices, spectral
gaps, TELEPORTATION with k = n equals D-SGD), ``fig2`` (iterations to a target on heterogeneous
quadratics against n, every (lr, seed) in one batched computation), ``alg2`` (the k search against
the grid), ``tab2`` (Dirichlet split, D-SGD against TELEPORTATION: VGG-11-GN on CIFAR-10 at paper
scale, LeNet-GN on Fashion-MNIST at default and smoke scale; its records also carry the simulated
time that Fig. 4 is drawn against). The dataclass defaults are
the paper's settings (paper scale); ``experiments/teleportation/{smoke,default}.yaml`` override them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reprosuite.gossip.cost import training_resources
from reprosuite.gossip.schedule import check_schedule
from reprosuite.registry import Artifact, Experiment, Paper, register, single_seed

DSGD_GRAPHS = ("ring", "sym_exp", "one_peer_exp", "base2")
SLOT_GRAPHS = ("ring", "sym_exp", "complete")
# Table 3 of the paper lists {0.1, 0.075, 0.05, 0.025, 0.01, ..., 0.0001}; the elided middle is
# filled with the same 1 / 0.75 / 0.5 / 0.25 pattern per decade (our reading).
TABLE3_LRS = (0.1, 0.075, 0.05, 0.025, 0.01, 0.0075, 0.005, 0.0025, 0.001, 0.00075, 0.0005, 0.00025, 0.0001)
# tab2: the data sets each architecture takes (lenet_gn: 1x28x28 grey, vgg_gn: 3x32x32 colour)
TAB2_ARCH_DATA = {"lenet_gn": ("fashion_mnist",), "vgg_gn": ("cifar10",)}


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{key} = {value} must be > 0")


def _subset(key: str, values: tuple, allowed: tuple) -> None:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"{key} has {bad[0]!r}; allowed: {', '.join(allowed)}")
    if not values:
        raise ValueError(f"{key} is empty; allowed: {', '.join(allowed)}")


@dataclass(frozen=True)
class MixingConfig:
    """Claims 1, 2, 10: slot mixing matrices, gaps, k = n equals D-SGD, k = 1 is local SGD."""

    ks: tuple[int, ...] = (1, 2, 3, 4, 8, 16, 64, 256)
    one_peer_n: tuple[int, ...] = (16, 64, 256)
    equality_n: int = 16
    equality_rounds: int = 200

    def __post_init__(self):
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"mixing.ks = {self.ks} must be non-empty and >= 1")
        if self.equality_n < 3 or self.equality_rounds < 1:
            raise ValueError(f"mixing.equality_n = {self.equality_n} must be >= 3 and equality_rounds "
                             f"= {self.equality_rounds} >= 1")


@dataclass(frozen=True)
class SyntheticConfig:
    """Fig. 2 / fig_k: heterogeneous quadratics f_j(x) = ½ (x - b_j)ᵀ diag(h_j) (x - b_j)."""

    n_values: tuple[int, ...] = (16, 32, 64, 128, 256)
    d: int = 10
    sigma: float = 0.5  # gradient noise
    h_low: float = 0.5
    h_high: float = 1.5
    mean_scale: float = 5.0  # μ ~ N(0, mean_scale² I)
    spread: float = 5.0  # b_j = μ + spread · N(0, I): heterogeneity
    dsgd_graphs: tuple[str, ...] = DSGD_GRAPHS
    tele_graphs: tuple[str, ...] = ("ring", "sym_exp")
    ks: tuple[int, ...] | None = None  # None: 1, 2, 4, ..., n
    lrs: tuple[float, ...] = TABLE3_LRS
    iterations: int = 4000
    target: float = 0.05
    eval_every: int = 10
    window: int = 5  # iterations to target: first check whose mean over `window` checks is <= target
    seeds: tuple[int, ...] = tuple(range(10))  # a tensor axis of one job
    sampling: Literal["uniform", "permutation_cycle"] = "uniform"

    def __post_init__(self):
        if not self.n_values or min(self.n_values) < 2:
            raise ValueError(f"fig2.n_values = {self.n_values} must be non-empty and >= 2")
        _subset("fig2.dsgd_graphs", self.dsgd_graphs, DSGD_GRAPHS)
        _subset("fig2.tele_graphs", self.tele_graphs, SLOT_GRAPHS)
        for key in ("sigma", "target", "h_low", "spread"):
            _positive(f"fig2.{key}", getattr(self, key))
        if self.h_high < self.h_low:
            raise ValueError(f"fig2.h_high = {self.h_high} must be >= h_low = {self.h_low}")
        if not self.lrs or min(self.lrs) <= 0:
            raise ValueError(f"fig2.lrs = {self.lrs} must be non-empty and > 0")
        if self.ks is not None and (not self.ks or min(self.ks) < 1):
            raise ValueError(f"fig2.ks = {self.ks} must be >= 1")
        for key in ("d", "iterations", "eval_every", "window"):
            if getattr(self, key) < 1:
                raise ValueError(f"fig2.{key} = {getattr(self, key)} must be >= 1")
        if len(self.seeds) < 1:
            raise ValueError("fig2.seeds is empty; at least one seed is needed")


@dataclass(frozen=True)
class Alg2Config:
    """Algorithm 2 (k search) against the grid, on the fig2 problem (same lrs, seeds, target)."""

    n_values: tuple[int, ...] = (16, 32, 64, 128, 256)
    horizon: int = 2000  # T: the search spends at most 2T iterations
    schedules: tuple[Literal["parallel_waves", "doubling"], ...] = ("parallel_waves", "doubling")
    metric: Literal["train_loss"] = "train_loss"  # selection: final slot loss f(x_i) - f* (window mean)
    slot_graph: Literal["ring", "sym_exp", "complete"] = "ring"

    def __post_init__(self):
        if not self.n_values or min(self.n_values) < 2:
            raise ValueError(f"alg2.n_values = {self.n_values} must be non-empty and >= 2")
        if self.horizon < 1:
            raise ValueError(f"alg2.horizon = {self.horizon} must be >= 1")
        if not self.schedules:
            raise ValueError("alg2.schedules is empty; allowed: parallel_waves, doubling")


@dataclass(frozen=True)
class Tab2Config:
    """Tab. 2 / Fig. 4: VGG-11-GN on CIFAR-10 (paper scale) or LeNet-GN on Fashion-MNIST (the
    paper's other Table 2 column; default and smoke scale). ``arch`` must fit ``dataset``."""

    dataset: Literal["fashion_mnist", "cifar10"] = "cifar10"
    arch: Literal["lenet_gn", "vgg_gn"] = "vgg_gn"  # models registry; vgg_gn: GroupNorm for BatchNorm (models/vgg.py)
    n_train: int | None = None  # stratified subset; None = the full training set
    n_test: int | None = None
    n_test_nodes: int = 2000
    n_nodes: int = 25
    alphas: tuple[float, ...] = (10.0, 0.1)
    partitioner: Literal["relaysgd_equal", "plain_dirichlet"] = "relaysgd_equal"
    dsgd_graphs: tuple[str, ...] = ("ring", "sym_exp")
    tele_ks: tuple[int, ...] = (4, 8, 16)
    tele_graph: Literal["ring", "sym_exp", "complete"] = "ring"
    tele_output: Literal["slot_mean"] = "slot_mean"  # accuracy of the average of the k slots
    sampling: Literal["uniform", "permutation_cycle"] = "uniform"
    momentum_home: Literal["travels", "stays"] = "travels"
    epoch_def: Literal["iterations", "samples"] = "iterations"
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.05
    lr_min: float = 0.0
    warmup_epochs: int = 0
    warmup_lr: float = 5e-5
    momentum: float = 0.9
    weight_decay: float = 0.0
    eval_every: int = 1
    eval_on: Literal["xbar", "nodes", "both"] = "both"
    tau: float = 5.0  # Fig. 4: links off the preferred ring cost tau
    compute_cost: float = 0.0
    preferred_topology: Literal["ring"] = "ring"
    teleport_cost: Literal["max_link", "tau"] = "max_link"

    def __post_init__(self):
        if self.dataset not in TAB2_ARCH_DATA.get(self.arch, ()):
            raise ValueError(f"tab2.arch = {self.arch!r} does not take tab2.dataset = {self.dataset!r}; allowed: "
                             + ", ".join(f"{a} with {'/'.join(d)}" for a, d in TAB2_ARCH_DATA.items()))
        if self.n_nodes < 3:
            raise ValueError(f"tab2.n_nodes = {self.n_nodes} must be >= 3")
        if not self.alphas or min(self.alphas) <= 0:
            raise ValueError(f"tab2.alphas = {self.alphas} must be non-empty and > 0")
        bad = [k for k in self.tele_ks if not 1 <= k <= self.n_nodes]
        if bad:
            raise ValueError(f"tab2.tele_ks has k = {bad[0]}; must be in [1, n_nodes = {self.n_nodes}]")
        if set(self.dsgd_graphs) - {"ring", "sym_exp", "complete", "torus"}:
            raise ValueError(f"tab2.dsgd_graphs = {self.dsgd_graphs}; allowed: ring, sym_exp, complete, torus")
        check_schedule(self, "tab2")
        _positive("tab2.tau", self.tau)
        if self.compute_cost < 0:
            raise ValueError(f"tab2.compute_cost = {self.compute_cost} must be >= 0")


@dataclass(frozen=True)
class TeleportationConfig:
    seeds: tuple[int, ...] = (0, 1, 2)  # tab2 jobs (one per seed); fig2/alg2 batch fig2.seeds inside
    mixing: MixingConfig = field(default_factory=MixingConfig)
    fig2: SyntheticConfig = field(default_factory=SyntheticConfig)
    alg2: Alg2Config = field(default_factory=Alg2Config)
    tab2: Tab2Config = field(default_factory=Tab2Config)


MINUTES_PER_N = 20  # cluster time budget of one n of fig2 / alg2 (CPU kernel)


def _n_shards(n_values) -> dict[str, dict]:
    """One job for every n while that stays within an hour of CPU (start-up paid once; the random
    streams are named by n, so the records are those of a job per n), else one job per n: the
    kernel runs on the CPU, and paper scale's five n would make one job of 100 minutes."""
    if MINUTES_PER_N * len(n_values) <= 60:
        return {"all": {"n_values": list(n_values)}}
    return {f"n{n}": {"n_values": [n]} for n in n_values}


def _n_resources(n_values) -> dict[str, int]:
    per_job = max(len(p["n_values"]) for p in _n_shards(n_values).values())
    return {"mem_mb": 2000, "runtime": MINUTES_PER_N * per_job, "gpu": 0}


def _fig2_shards(cfg):
    return _n_shards(cfg.fig2.n_values)


def _alg2_shards(cfg):
    return _n_shards(cfg.alg2.n_values)


def tab2_methods(c: Tab2Config) -> list[tuple[str, str, int]]:
    """(method, graph, k) of every Tab. 2 row."""
    return ([("dsgd", g, c.n_nodes) for g in c.dsgd_graphs]
            + [("tele", c.tele_graph, k) for k in c.tele_ks])


def tab2_groups(c: Tab2Config) -> dict[int, list[tuple[str, str, int]]]:
    """Tab. 2 rows by rounds per epoch (in units of the data's rounds per epoch): 1 for D-SGD and
    for ``epoch_def = iterations``, n / k for TELEPORTATION with ``epoch_def = samples``."""
    groups: dict[int, list[tuple[str, str, int]]] = {}
    for m, g, k in tab2_methods(c):
        factor = 1 if m == "dsgd" or c.epoch_def == "iterations" else max(1, round(c.n_nodes / k))
        groups.setdefault(factor, []).append((m, g, k))
    return groups


def _tab2_shards(cfg):
    """One job per seed and rounds-per-epoch class (one class, ``all``, unless epoch_def = samples):
    its runs (every method and α) are stacked in one simulator (papers/teleportation/nn.py)."""
    groups = tab2_groups(cfg.tab2)
    alphas = [float(a) for a in cfg.tab2.alphas]
    return {("all" if len(groups) == 1 else f"x{f}"): {"methods": [list(m) for m in ms], "alphas": alphas, "rounds_factor": f}
            for f, ms in groups.items()}


def _tab2_runs(cfg) -> float:
    """The largest tab2 job in 25-slot LeNet-GN runs (scheduler resources)."""
    c = cfg.tab2
    return max(sum(k for _, _, k in ms) * len(c.alphas) * f for f, ms in tab2_groups(c).items()) / 25


_MOD = "reprosuite.papers.teleportation"
PAPER = register(Paper(
    id="teleportation",
    title="Scalable Decentralized Learning with Teleportation",
    citation="Y. Takezawa, S. U. Stich. Scalable Decentralized Learning with Teleportation. ICLR 2025. "
             "arXiv:2501.15259.",
    config=TeleportationConfig,
    experiments={
        "mixing": Experiment("mixing", run=f"{_MOD}.synthetic:run_mixing", seeds=single_seed,
                             resources=lambda cfg: {"mem_mb": 1000, "runtime": 5, "gpu": 0},
                             description="slot mixing matrices, gaps, k = n equals D-SGD, k = 1 is local SGD"),
        "fig2": Experiment("fig2", run=f"{_MOD}.synthetic:run_fig2", shards=_fig2_shards, seeds=single_seed,
                           resources=lambda cfg: _n_resources(cfg.fig2.n_values),
                           description="iterations to target on heterogeneous quadratics vs n (batched lr x seed)"),
        "alg2": Experiment("alg2", run=f"{_MOD}.synthetic:run_alg2", shards=_alg2_shards, seeds=single_seed,
                           resources=lambda cfg: _n_resources(cfg.alg2.n_values),
                           description="Algorithm 2 k search against the grid over k"),
        "tab2": Experiment("tab2", run=f"{_MOD}.nn:run_tab2", shards=_tab2_shards,
                           resources=lambda cfg: training_resources(
                               cfg.tab2.epochs, cfg.tab2.n_train, full=50_000, runs=_tab2_runs(cfg),
                               mem_mb=8000 if cfg.tab2.dataset == "cifar10" else 3000),
                           description="D-SGD vs TELEPORTATION, Dirichlet α: VGG-11-GN on CIFAR-10 (paper) or "
                                       "LeNet-GN on Fashion-MNIST (default, smoke)"),
    },
    tables={
        "tab_mixing": Artifact("tab_mixing", inputs=("mixing",), make=f"{_MOD}.tables:tab_mixing",
                               caption="Slot mixing matrices: spectral gap p of W^(k) (ring, symmetric exponential) "
                                       "and of one period of the one-peer exponential graph; stochasticity errors."),
        "tab_fig2": Artifact("tab_fig2", inputs=("fig2",), make=f"{_MOD}.tables:tab_fig2",
                             caption="Iterations to reach mean_i f(x_i) - f* <= target (checked every 10, window "
                                     "mean), best step size per method, mean ± 95% interval over seeds; not "
                                     "reached counts as T."),
        "tab_alg2": Artifact("tab_alg2", inputs=("alg2",), make=f"{_MOD}.tables:tab_alg2",
                             caption="Algorithm 2's chosen k against the grid-best k, with the cost of each in "
                                     "iterations (simulated wall-clock) and node-steps, per learning rate."),
        "tab2_acc": Artifact("tab2_acc", inputs=("tab2",), make=f"{_MOD}.tables:tab2_acc",
                             caption="Final test accuracy (%) of x̄ (D-SGD) / the slot average (TELEPORTATION), "
                                     "mean ± 95% interval and std over seeds; Dirichlet α split (tab2.arch on tab2.dataset: "
                                     "LeNet-GN on Fashion-MNIST at default, VGG-11-GN on CIFAR-10 at paper scale)."),
    },
    figures={
        "fig2": Artifact("fig2", inputs=("fig2",), make=f"{_MOD}.plots:fig2",
                         caption="Iterations to target vs number of nodes n: D-SGD per topology and TELEPORTATION "
                                 "with the grid-best k, mean ± 95% interval over seeds."),
        "fig_k": Artifact("fig_k", inputs=("fig2",), make=f"{_MOD}.plots:fig_k",
                          caption="Iterations to target of TELEPORTATION vs k for each n (best step size), best k marked."),
        "fig4": Artifact("fig4", inputs=("tab2",), make=f"{_MOD}.plots:fig4",
                         caption="Test accuracy vs simulated communication time (ring links 1, others τ), "
                                 "homogeneous (α = 10) and heterogeneous (α = 0.1) panels; re-plotted from Tab. 2 runs."),
    },
    checks=f"{_MOD}.checks:CHECKS",
))
