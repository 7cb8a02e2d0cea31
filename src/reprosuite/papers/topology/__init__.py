"""Paper ``topology``: Takezawa, Koloskova & Stich, "Improved Convergence Analysis of Topology
Dependence in Decentralized SGD" (arXiv 2606.09154, ICML 2026).

Declarations only (cheap to import). Experiments: ``fig1`` (spectral quantities vs n),
``transient`` (Tab. 1 exponents), ``fig2a`` (stationary consensus identity), ``fig2`` (fixed-p
families on logistic/ridge regression), ``fig3`` (LeNet-GN D-SGD on Fashion-MNIST).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reprosuite.gossip.cost import training_resources
from reprosuite.gossip.schedule import check_schedule
from reprosuite.registry import Artifact, Experiment, Paper, register, single_seed

TOPOLOGIES = ("ring", "path", "torus", "grid", "hypercube", "star", "complete", "sym_exp")

# The dataclass defaults are the paper's own settings (paper scale). experiments/topology/default.yaml
# and smoke.yaml override some of them; UNKNOWN marks a value the paper does not state (see
# docs/papers/topology.md, "UNKNOWNs and options").


def _check_topologies(names: tuple[str, ...], key: str) -> None:
    if not names:
        raise ValueError(f"{key} = () must name at least one topology; allowed: {', '.join(TOPOLOGIES)}")
    bad = [t for t in names if t not in TOPOLOGIES]
    if bad:
        raise ValueError(f"{key} has {bad[0]!r}; allowed: {', '.join(TOPOLOGIES)}")


def _positive(obj, prefix: str, *keys: str) -> None:
    """Refuse a non-positive number (or any non-positive entry of a tuple) in one line."""
    for key in keys:
        value = getattr(obj, key)
        values = value if isinstance(value, tuple) else (value,)
        if value is not None and any(v <= 0 for v in values):
            raise ValueError(f"{prefix}.{key} = {value!r} must be > 0")


def _check_kronecker(members: tuple[str, ...], sizes: tuple[int, ...], key: str) -> None:
    """Kronecker members are graphs G on n / 8 nodes (W = W_ring8 ⊗ W_G): each must exist there."""
    from reprosuite.gossip.topologies import defined

    for n in sizes:
        bad = [m for m in members if n % 8 or not defined(m, n=n // 8)]
        if bad:
            raise ValueError(f"{key} has {bad[0]!r}, which is not defined on n / 8 = {n / 8:g} nodes (n = {n}); "
                             f"allowed: topologies on n / 8 nodes, n a multiple of 8")


def _at_least(obj, prefix: str, key: str, low: float) -> None:
    value = getattr(obj, key)
    values = value if isinstance(value, tuple) else (value,)
    if any(v < low for v in values):
        raise ValueError(f"{prefix}.{key} = {value!r} must be >= {low:g}")


@dataclass(frozen=True)
class Fig1Config:
    """Fig. 1: (1-p)/p and T_new vs n for Metropolis topologies; hypercube vs dimension."""

    n_values: tuple[int, ...] = (16, 25, 36, 64, 100, 144, 196, 256, 400, 576, 784, 1024)
    topologies: tuple[str, ...] = TOPOLOGIES
    hypercube_dims: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10)

    def __post_init__(self):
        _check_topologies(self.topologies, "fig1.topologies")
        _at_least(self, "fig1", "n_values", 4)
        _at_least(self, "fig1", "hypercube_dims", 1)


@dataclass(frozen=True)
class TransientConfig:
    """Tab. 1: transient iterations max(n³X², n/p²), Prop. 1 (X=(1-p)/p) vs Theorem 1 (X=T_new)."""

    n_values: tuple[int, ...] = (64, 100, 128, 144, 196, 256, 400)
    topologies: tuple[str, ...] = ("ring", "torus", "hypercube")

    def __post_init__(self):
        _check_topologies(self.topologies, "transient.topologies")
        _at_least(self, "transient", "n_values", 4)


@dataclass(frozen=True)
class Fig2aConfig:
    """Stationary consensus identity (ours): pure-noise D-SGD, consensus error / (d η² σ²) vs T_new."""

    n_values: tuple[int, ...] = (16, 25, 64)
    topologies: tuple[str, ...] = TOPOLOGIES
    families: tuple[Literal["kronecker", "spectral"], ...] = ("kronecker", "spectral")
    # the paper's Fig. 2 uses n = 200; Kronecker members live on n / 8 nodes, so n = 200 needs other
    # members (--config 'set=fig2a.family_n=[200]; fig2a.kronecker_members=[complete, sym_exp, torus]')
    family_n: tuple[int, ...] = (64,)
    kronecker_members: tuple[str, ...] = ("complete", "hypercube", "ring")
    spectral_members: tuple[str, ...] = ("spike", "graded", "flat")
    d: int = 10
    eta: float = 0.1
    sigma: float = 1.0
    mu: float = 0.0  # isotropic quadratic curvature; 0 = pure noise (T_new exactly)
    iterations: int = 20_000
    burn_in: float = 0.2  # fraction discarded before averaging (bias < 1e-4 for path n = 64; docs §2.5)
    chains: int = 5  # independent seeds, run as a tensor axis in one job (minimum per matrix)
    # more chains where the predicted Monte Carlo s.e. exceeds it; 0.003 puts the Bonferroni t
    # half-width of every W at <= 1% = 1/3 of the 3% tolerance of claim 5 (docs §4)
    target_rel_se: float | None = 0.003
    max_chains: int = 1024

    def __post_init__(self):
        _check_topologies(self.topologies, "fig2a.topologies")
        _check_topologies(self.kronecker_members, "fig2a.kronecker_members")
        _at_least(self, "fig2a", "n_values", 4)
        _at_least(self, "fig2a", "family_n", 8)
        if "kronecker" in self.families:
            _check_kronecker(self.kronecker_members, self.family_n, "fig2a.kronecker_members")
        _positive(self, "fig2a", "d", "eta", "sigma", "iterations", "target_rel_se")
        if self.mu < 0:
            raise ValueError(f"fig2a.mu = {self.mu} must be >= 0")
        if not 0.0 <= self.burn_in < 1.0:
            raise ValueError(f"fig2a.burn_in = {self.burn_in} must be in [0, 1)")
        if self.chains < 2:
            raise ValueError(f"fig2a.chains = {self.chains} must be >= 2 (the standard error needs two)")
        if self.max_chains < self.chains:
            raise ValueError(f"fig2a.max_chains = {self.max_chains} must be >= fig2a.chains = {self.chains}")


@dataclass(frozen=True)
class Fig2Config:
    """Fig. 2: logistic / ridge regression with fixed-p families, homogeneous data."""

    dataset: Literal["mnist5k", "digits", "mnist"] = "mnist"  # full MNIST (needs internet or data_dir)
    n_nodes: int = 200
    batch_size: int = 16  # UNKNOWN
    models: tuple[Literal["logistic", "ridge"], ...] = ("logistic", "ridge")
    families: tuple[Literal["kronecker", "spectral"], ...] = ("kronecker", "spectral")
    kronecker_members: tuple[str, ...] = ("complete", "sym_exp", "torus")
    spectral_members: tuple[str, ...] = ("spike", "graded", "flat")
    lr_logistic: float = 0.1  # UNKNOWN (grid {0.1, 0.01, 0.001})
    lr_ridge: float = 0.01  # UNKNOWN
    l2_ridge: float = 1e-3
    iterations: int = 5000  # UNKNOWN (5,000 proposed)
    eval_every: int = 50
    min_seeds: int = 1  # run at least this many seeds: the paper's seeds, then the next integers

    def __post_init__(self):
        _check_topologies(self.kronecker_members, "fig2.kronecker_members")
        _positive(self, "fig2", "batch_size", "lr_logistic", "lr_ridge", "iterations", "eval_every", "min_seeds")
        if self.n_nodes < 2:
            raise ValueError(f"fig2.n_nodes = {self.n_nodes} must be >= 2")
        if "kronecker" in self.families:
            _check_kronecker(self.kronecker_members, (self.n_nodes,), "fig2.kronecker_members")
        if self.l2_ridge < 0:
            raise ValueError(f"fig2.l2_ridge = {self.l2_ridge} must be >= 0")


@dataclass(frozen=True)
class Fig3Config:
    """Fig. 3: LeNet-GN D-SGD on Fashion-MNIST, n nodes, Dirichlet(α) label skew."""

    dataset: Literal["fashion_mnist", "mnist5k", "digits", "mnist"] = "fashion_mnist"
    n_train: int | None = None  # stratified train subset; None = full train set
    n_test: int | None = None  # stratified test subset for x̄ metrics; None = the full test set
    n_test_nodes: int = 2_000  # test subset (of that) for per-node metrics
    n_nodes: int = 25
    topologies: tuple[str, ...] = ("complete", "sym_exp", "torus", "grid", "ring", "path", "star")
    alphas: tuple[float, ...] = (10.0, 0.1)  # UNKNOWN (likely {10, 0.1})
    partitioner: Literal["relaysgd_equal", "plain_dirichlet"] = "relaysgd_equal"
    epochs: int = 100  # UNKNOWN (100 proposed)
    batch_size: int = 32
    lr: float = 0.1  # UNKNOWN: grid {0.1, 0.01, 0.001}; others with --config set=fig3.lr=0.01
    lr_min: float = 1e-4
    warmup_epochs: int = 10
    warmup_lr: float = 5e-5
    momentum: float = 0.9
    mix_momentum: bool = False
    weight_decay: float = 0.0
    eval_every: int = 10  # epochs (BaseGraph); the last epoch is always evaluated
    eval_on: Literal["xbar", "nodes", "both"] = "both"

    def __post_init__(self):
        _check_topologies(self.topologies, "fig3.topologies")
        _positive(self, "fig3", "n_train", "n_test", "n_test_nodes", "alphas")
        if self.n_nodes < 2:
            raise ValueError(f"fig3.n_nodes = {self.n_nodes} must be >= 2")
        if not self.alphas:
            raise ValueError("fig3.alphas = () must name at least one Dirichlet α > 0")
        check_schedule(self, "fig3")


@dataclass(frozen=True)
class TopologyConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    fig1: Fig1Config = field(default_factory=Fig1Config)
    transient: TransientConfig = field(default_factory=TransientConfig)
    fig2a: Fig2aConfig = field(default_factory=Fig2aConfig)
    fig2: Fig2Config = field(default_factory=Fig2Config)
    fig3: Fig3Config = field(default_factory=Fig3Config)

    def __post_init__(self):
        if not self.seeds:
            raise ValueError("seeds = () must list at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds = {self.seeds} must not repeat a seed")


def fig2_seeds(cfg) -> tuple[int, ...]:
    """The paper's seeds, extended by the next integers to ``fig2.min_seeds`` (claim 7 is sized by seeds)."""
    seeds = list(cfg.seeds)
    nxt = max(seeds) + 1
    while len(seeds) < cfg.fig2.min_seeds:
        seeds.append(nxt)
        nxt += 1
    return tuple(seeds)


def _fig2_shards(cfg):
    """One job: every model, family member and seed (papers/topology/linear.py); none without any."""
    if not cfg.fig2.families or not cfg.fig2.models:
        return {}
    return {"all": {"models": list(cfg.fig2.models), "families": list(cfg.fig2.families)}}


def _fig3_shards(cfg):
    """One job per seed: every (topology, α) run stacked in one simulator (papers/topology/nn.py)."""
    return {"all": {"topologies": list(cfg.fig3.topologies), "alphas": [float(a) for a in cfg.fig3.alphas]}}


_MOD = "reprosuite.papers.topology"
PAPER = register(Paper(
    id="topology",
    title="Improved Convergence Analysis of Topology Dependence in Decentralized SGD",
    citation="Y. Takezawa, A. Koloskova, S. U. Stich. Improved Convergence Analysis of Topology "
             "Dependence in Decentralized SGD. ICML 2026. arXiv:2606.09154.",
    config=TopologyConfig,
    experiments={
        "fig1": Experiment("fig1", run=f"{_MOD}.spectral:run_fig1", seeds=single_seed,
                           resources=lambda cfg: {"mem_mb": 1000, "runtime": 5, "gpu": 0},
                           description="p, (1-p)/p, T_new of Metropolis topologies vs n"),
        "transient": Experiment("transient", run=f"{_MOD}.spectral:run_transient", seeds=single_seed,
                                resources=lambda cfg: {"mem_mb": 1000, "runtime": 5, "gpu": 0},
                                description="transient iterations, Prop. 1 vs Theorem 1"),
        "fig2a": Experiment("fig2a", run=f"{_MOD}.mechanism:run_fig2a", seeds=single_seed,
                            resources=lambda cfg: {"mem_mb": 2000, "runtime": 10, "gpu": 0},
                            description="stationary consensus error of pure-noise D-SGD vs T_new"),
        "fig2": Experiment("fig2", run=f"{_MOD}.linear:run_fig2", shards=_fig2_shards, seeds=single_seed,
                           resources=lambda cfg: {"mem_mb": 2000, "runtime": 30, "gpu": 0},
                           description="logistic/ridge D-SGD with fixed-p families"),
        "fig3": Experiment("fig3", run=f"{_MOD}.nn:run_fig3", shards=_fig3_shards,
                           resources=lambda cfg: training_resources(
                               cfg.fig3.epochs, cfg.fig3.n_train,
                               runs=len(cfg.fig3.topologies) * len(cfg.fig3.alphas) * cfg.fig3.n_nodes / 25),
                           description="LeNet-GN D-SGD on Fashion-MNIST, accuracy vs T_new"),
    },
    tables={
        "tab_spectral": Artifact("tab_spectral", inputs=("fig1",), make=f"{_MOD}.tables:tab_spectral",
                                 caption="p, (1-p)/p and T_new of the Metropolis topologies (Fig. 1 data)."),
        "tab1": Artifact("tab1", inputs=("transient",), make=f"{_MOD}.tables:tab1",
                         caption="Transient iterations (homogeneous): analytic order and numeric log-log "
                                 "slope of max(n³X², n/p²), Prop. 1 (X=(1-p)/p) vs Theorem 1 (X=T_new)."),
        "tab_mechanism": Artifact("tab_mechanism", inputs=("fig2a",), make=f"{_MOD}.tables:tab_mechanism",
                                  caption="Stationary consensus error / (d η² σ²) of pure-noise D-SGD: predicted (T_new) and measured, "
                                          "mean ± half-width of the 95% t interval over chains × coordinates; deviation in %."),
        "tab_fixed_p": Artifact("tab_fixed_p", inputs=("fig2",), make=f"{_MOD}.tables:tab_fixed_p",
                                caption="Training loss at a fixed spectral gap (mean over the last 20% of iterations) per family "
                                        "member: mean ± half-width of the 95% t interval over seeds, node-averaged and "
                                        "at x̄, and the paired difference to the family's smallest-T_new member."),
        "tab_accuracy": Artifact("tab_accuracy", inputs=("fig3",), make=f"{_MOD}.tables:tab_accuracy",
                                 caption="Final test accuracy (%) of LeNet-GN D-SGD (n = 25 at default and paper scale), at x̄ and "
                                         "averaged over the nodes' own "
                                         "models: mean ± half-width of the 95% t interval over seeds, per topology "
                                         "(ordered by T_new) and Dirichlet α."),
    },
    figures={
        "fig1": Artifact("fig1", inputs=("fig1",), make=f"{_MOD}.plots:fig1",
                         caption="(1-p)/p (dashed) and T_new (solid) vs n, Metropolis weights; right: hypercube vs dimension."),
        "fig2a": Artifact("fig2a", inputs=("fig2a",), make=f"{_MOD}.plots:fig2a",
                          caption="Measured stationary consensus error / (d η² σ²) of pure-noise D-SGD against T_new "
                                  "(left) and (1-p)/p (right); the identity line is y = x."),
        "fig2": Artifact("fig2", inputs=("fig2",), make=f"{_MOD}.plots:fig2",
                         caption="Training loss vs iteration at fixed spectral gap (node average solid, x̄ dashed)."),
        "fig3": Artifact("fig3", inputs=("fig3",), make=f"{_MOD}.plots:fig3",
                         caption="LeNet-GN test accuracy of x̄ vs T_new (n = 25), mean ± std over seeds, per α."),
    },
    checks=f"{_MOD}.checks:CHECKS",
))
