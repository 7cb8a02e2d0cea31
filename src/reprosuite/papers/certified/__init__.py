"""Paper `certified`: Dolgova & Stich, "Sequential Subspace Noise Injection Prevents Accuracy
Collapse in Certified Unlearning" (arXiv 2601.05134). Declarations only (no torch at import).

Experiments: ``accounting`` (σ, T, q*, ε_q against ε and k; subspace geometry; no data);
``models`` (original and retrain per row and base/retrain seed pair, plus the class-deletion
retrain, trained once and shared); ``nft`` (NFT and block-NFT runs, one job per (row, variant, ε),
seeds and k inside); ``mechanism`` (claim 6b: end-of-phase perturbation with the loss gradient
off); ``fig2`` (block-type ablation); ``classdel`` (class deletion against the empirical baselines; Table 1).
Defaults below are the paper-scale settings (UNKNOWN constants fall back to the Koloskova-like
values of docs/papers/certified.md); scales override them in YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reprosuite.registry import Artifact, Experiment, Paper, param_needs, register, single_seed
from reprosuite.unlearning.configs import FTConfig, GAConfig, RLConfig, SalUnConfig

VARIANTS = ("shared", "scaled", "measured_layers", "scaled_repair")
BLOCK_TYPES = ("qr", "perm_identity", "layers", "head")
DATASETS = Literal["mnist", "mnist5k", "fashion_mnist", "cifar10", "digits"]


def _positive(obj, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if not v > 0:
            raise ValueError(f"{n} = {v} must be > 0")


@dataclass(frozen=True)
class RowConfig:
    """One row of Fig. 1: a data set, its model and its base/retrain recipe (SGD, the code's)."""

    label: str = "MNIST"
    dataset: DATASETS = "mnist"
    stand_in_for: str | None = None
    arch: str = "mlp_big"
    epsilons: tuple[float, ...] = (3.0, 1.0, 0.5)
    n_train: int | None = None  # stratified subset of the training set
    epochs: int = 182
    lr: float = 0.01
    momentum: float = 0.9
    base_weight_decay: float = 5e-4
    retrain_weight_decay: float = 1e-5
    base_batch_size: int = 64
    retrain_batch_size: int = 60
    augment: bool = False
    forget_frac: float = 0.1  # random forget set (seed 42)
    forget_seed: int = 42
    n_pairs: int = 1  # base/retrain seed pairs (chebyshev C₀ and the measured distance)
    eval_subset: int = 2000  # test images evaluated during training and after every noisy step

    def __post_init__(self):
        _positive(self, "epochs", "lr", "base_batch_size", "retrain_batch_size", "n_pairs", "eval_subset")
        if not self.epsilons or min(self.epsilons) <= 0:
            raise ValueError(f"epsilons = {self.epsilons} must be non-empty and > 0")
        if not 0 < self.forget_frac < 1:
            raise ValueError(f"forget_frac = {self.forget_frac} must be in (0, 1)")


def _cifar_row() -> RowConfig:
    return RowConfig(label="CIFAR-10", dataset="cifar10", arch="resnet18", epsilons=(7.0, 5.0, 3.0), augment=True)


@dataclass(frozen=True)
class ConstantsConfig:
    """Calibration and step loop of (block-)NFT. The paper's η, λ, C₀, C₁ are UNKNOWN: defaults are
    the Koloskova-like constants of docs/papers/certified.md (η 1e-4, λ 10, C₀ 0.01, C₁ 1)."""

    eta: float = 1e-4
    lam: float = 10.0
    c0: float = 0.01
    c1: float = 1.0
    c0_mode: Literal["fixed", "chebyshev"] = "fixed"
    rho: float = 0.1  # chebyshev: P[‖x̂ − x̄‖ > Δ(ρ)] ≤ ρ
    delta: float = 1e-5
    m: int = 2  # a noise step every m steps
    batch_size: int = 60
    budget_split: Literal["uniform", "proportional"] = "uniform"
    bn_mode: Literal["train", "eval"] = "train"
    repair_steps: int = 20  # variant scaled_repair: SGD steps of all parameters after each block
    ft_lr: float = 0.01
    ft_momentum: float = 0.9
    ft_weight_decay: float = 5e-4
    ft_batch_size: int = 60
    max_t_nft: int = 1000
    max_t_blocks: int = 1000  # the code uses 300 for blocks; one budget for both keeps claims 7-8 fair

    def __post_init__(self):
        _positive(self, "eta", "c0", "c1", "rho", "batch_size", "ft_lr", "ft_batch_size", "max_t_nft", "max_t_blocks")
        if self.lam <= 0:
            raise ValueError(f"lam = {self.lam} must be > 0")
        if not self.eta * self.lam < 1:
            raise ValueError(f"eta * lam = {self.eta * self.lam} must be < 1")
        if not self.lam * self.c0 < self.c1:
            raise ValueError(f"lam * c0 = {self.lam * self.c0} must be < c1 = {self.c1}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta = {self.delta} must be in (0, 1)")
        if not 0 < self.rho < 1:
            raise ValueError(f"rho = {self.rho} must be in (0, 1)")
        if self.m < 2:
            raise ValueError(f"m = {self.m} must be >= 2")
        if self.repair_steps < 0:
            raise ValueError(f"repair_steps = {self.repair_steps} must be >= 0")


@dataclass(frozen=True)
class NFTConfig:
    """The ``nft`` grid: variants (per-block policy, split, repair) x ε x k x seeds."""

    variants: tuple[str, ...] = ("shared", "scaled")
    gain_rows: tuple[str, ...] = ("mnist",)  # rows where measured_layers / scaled_repair run
    ks: tuple[int, ...] = (1, 2, 4, 10)
    layer_ks: tuple[int, ...] = (1, 2, 3)  # measured_layers: layer j -> block j mod k
    log_every: int = 20
    mia_size: int = 1000  # members and non-members of the SVC-MIA shadow set
    curve_seeds: int = 3  # seeds that run the whole curve; later seeds stop after the noise (claim 6)
    gain_epsilons: tuple[float, ...] | None = None  # ε of the gain variants (None: the row's)

    def __post_init__(self):
        bad = set(self.variants) - set(VARIANTS)
        if bad:
            raise ValueError(f"variants has {sorted(bad)[0]!r}; allowed: {', '.join(VARIANTS)}")
        if 1 not in self.ks or min(self.ks) < 1 or min(self.layer_ks) < 1:
            raise ValueError(f"ks = {self.ks} must contain 1 (NFT) and be >= 1")
        _positive(self, "log_every", "mia_size", "curve_seeds")


@dataclass(frozen=True)
class MechanismConfig:
    """Claim 6b: ‖x_end − x₀‖² with the loss gradient off, k = 1 vs k = 10 (both policies)."""

    row: str = "mnist"
    ks: tuple[int, ...] = (1, 10)
    draws: int = 20
    enabled: bool = True

    def __post_init__(self):
        _positive(self, "draws")


@dataclass(frozen=True)
class Fig2Config:
    """Block-type ablation (Fig. 2): one row, k = 4 (head: 2), ``scaled``."""

    row: str = "cifar10"
    epsilons: tuple[float, ...] = (7.0, 5.0, 3.0)
    block_types: tuple[str, ...] = BLOCK_TYPES
    k: int = 4
    seeds: tuple[int, ...] = (0, 1, 2)
    enabled: bool = True

    def __post_init__(self):
        bad = set(self.block_types) - set(BLOCK_TYPES)
        if bad:
            raise ValueError(f"block_types has {sorted(bad)[0]!r}; allowed: {', '.join(BLOCK_TYPES)}")
        if self.k < 2:
            raise ValueError(f"k = {self.k} must be >= 2")




@dataclass(frozen=True)
class Tab1Config:
    """Class-wise deletion (Table 1): NFT, block-NFT (both policies), retrain and the baselines."""

    row: str = "cifar10"
    forget_class: int = 5
    epsilon: float = 5.0
    k: int = 4
    seeds: tuple[int, ...] = (0, 1, 2)
    # empirical baselines (recipes as in docs/papers/collateral.md; budgets [INF]); batch 64 SGD
    ft: FTConfig = field(default_factory=lambda: FTConfig(epochs=1, batch_size=64, lr=0.01))
    ga: GAConfig = field(default_factory=lambda: GAConfig(epochs=5, batch_size=64, lr=1e-3, ua_target=0.9))
    rl: RLConfig = field(default_factory=lambda: RLConfig(epochs=1, batch_size=64, lr=0.01, forget_oversample=4))
    salun: SalUnConfig = field(default_factory=lambda: SalUnConfig(epochs=1, batch_size=64, lr=0.01,
                                                                   forget_oversample=4))
    enabled: bool = True


@dataclass(frozen=True)
class CertifiedConfig:
    seeds: tuple[int, ...] = (0, 1, 2)  # NFT seeds: minibatches, noise and QR bases
    rows: tuple[str, ...] = ("mnist", "cifar10")
    mnist: RowConfig = field(default_factory=RowConfig)
    cifar10: RowConfig = field(default_factory=_cifar_row)
    constants: ConstantsConfig = field(default_factory=ConstantsConfig)
    nft: NFTConfig = field(default_factory=NFTConfig)
    mechanism: MechanismConfig = field(default_factory=MechanismConfig)
    fig2: Fig2Config = field(default_factory=Fig2Config)
    tab1: Tab1Config = field(default_factory=Tab1Config)
    acct_epsilons: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 5.0, 7.0)
    acct_ks: tuple[int, ...] = (1, 2, 4, 10)

    def __post_init__(self):
        bad = set(self.rows) - {"mnist", "cifar10"}
        if bad or not self.rows:
            raise ValueError(f"rows = {self.rows}; allowed: mnist, cifar10 (at least one)")
        if len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise ValueError(f"seeds = {self.seeds} must be distinct and non-empty")
        for name, row in (("mechanism.row", self.mechanism.row), ("fig2.row", self.fig2.row), ("tab1.row", self.tab1.row)):
            if row not in ("mnist", "cifar10"):
                raise ValueError(f"{name} = {row!r}; allowed: mnist, cifar10")


# shards -----------------------------------------------------------------------------------------
def _fmt(e: float) -> str:
    return f"{e:g}"


def _model_rows(cfg) -> list[str]:
    rows = set(cfg.rows) | ({cfg.fig2.row} if cfg.fig2.enabled else set()) | ({cfg.tab1.row} if cfg.tab1.enabled else set())
    return sorted(rows | ({cfg.mechanism.row} if cfg.mechanism.enabled else set()))


def model_shard(row: str, role: str) -> str:
    """The ``models`` job that trains a row's model of this role: the row's job for the originals and
    retrains of its pairs; a job of its own for a class-deletion retrain (``class<c>``), so that
    another forget class adds a job instead of retraining the pairs."""
    return row if role in ("original", "retrain") else f"{row}-{role}"


def _model_shards(cfg):
    """Per row in use: one job for the original and retrain of every pair j; the class-deletion retrain."""
    out = {}
    for r in _model_rows(cfg):
        out[model_shard(r, "original")] = {"row": r, "models": tuple(
            (role, j, None) for j in range(getattr(cfg, r).n_pairs) for role in ("original", "retrain"))}
        if cfg.tab1.enabled and r == cfg.tab1.row:
            out[model_shard(r, f"class{cfg.tab1.forget_class}")] = {"row": r, "models": (("class", 0, cfg.tab1.forget_class),)}
    return out


def _models_resources(cfg):
    per_job = max(len(p["models"]) for p in _model_shards(cfg).values())
    return {"mem_mb": 4000, "runtime": 600 * per_job, "gpu": _gpu(cfg)}


def _pair_needs(cfg, row: str) -> list[tuple[str, str, int]]:
    return [("models", model_shard(row, "original"), 0)]


def _nft_shards(cfg):
    """One job per row: every ε with the variants run at it (NFT, k = 1, is shared by them)."""
    out = {}
    for r in cfg.rows:
        by_eps: dict[float, list[str]] = {}
        for v in cfg.nft.variants:
            gain = v in ("measured_layers", "scaled_repair")
            if gain and r not in cfg.nft.gain_rows:
                continue
            for e in cfg.nft.gain_epsilons if gain and cfg.nft.gain_epsilons else getattr(cfg, r).epsilons:
                by_eps.setdefault(e, []).append(v)
        out[r] = {"row": r, "cells": tuple((e, tuple(vs)) for e, vs in by_eps.items())}
    return out


def _nft_resources(cfg):
    cells = max((len(p["cells"]) for p in _nft_shards(cfg).values()), default=1)
    return {"mem_mb": 4000, "runtime": 240 * cells, "gpu": _gpu(cfg)}


def _fig2_shards(cfg):
    """One job per ε with every block type (NFT, k = 1, is shared by them)."""
    if not cfg.fig2.enabled:
        return {}
    return {f"{cfg.fig2.row}-e{_fmt(e)}": {"row": cfg.fig2.row, "epsilon": e, "block_types": tuple(cfg.fig2.block_types)}
            for e in cfg.fig2.epsilons}


def _mechanism_shards(cfg):
    return {cfg.mechanism.row: {"row": cfg.mechanism.row}} if cfg.mechanism.enabled else {}


def _tab1_shards(cfg):
    return {f"{cfg.tab1.row}-class{cfg.tab1.forget_class}": {"row": cfg.tab1.row}} if cfg.tab1.enabled else {}


def _gpu(cfg) -> int:
    return int(any(getattr(cfg, r).arch == "resnet18" for r in cfg.rows))


def _res(mem: int, minutes: int):
    return lambda cfg: {"mem_mb": mem, "runtime": minutes, "gpu": _gpu(cfg)}


_MOD = "reprosuite.papers.certified"

PAPER = register(Paper(
    id="certified",
    title="Sequential Subspace Noise Injection Prevents Accuracy Collapse in Certified Unlearning",
    citation="P. Dolgova, S. U. Stich. Sequential Subspace Noise Injection Prevents Accuracy Collapse in "
             "Certified Unlearning. arXiv:2601.05134 (2026).",
    config=CertifiedConfig,
    experiments={
        "accounting": Experiment("accounting", run=f"{_MOD}.runs:run_accounting", seeds=single_seed,
                                 settings=("constants",), resources=lambda cfg: {"mem_mb": 1000, "runtime": 2, "gpu": 0},
                                 description="σ, T, q*, ε_q vs ε and k (both policies); subspace geometry"),
        "models": Experiment("models", run=f"{_MOD}.runs:run_models", shards=_model_shards, seeds=single_seed,
                             settings=("mnist", "cifar10"), resources=_models_resources,
                             description="original and retrain of every seed pair (one job per row); class-deletion retrain"),
        "nft": Experiment("nft", run=f"{_MOD}.runs:run_nft", shards=_nft_shards, seeds=single_seed,
                          needs=param_needs(_nft_shards, lambda cfg, p, s: _pair_needs(cfg, p["row"])),
                          settings=("constants", "nft", "mnist", "cifar10"), resources=_nft_resources,
                          description="NFT and block-NFT (k in ks) at every ε and variant of one row, every seed"),
        "mechanism": Experiment("mechanism", run=f"{_MOD}.runs:run_mechanism", shards=_mechanism_shards,
                                seeds=single_seed, needs=param_needs(_mechanism_shards, lambda cfg, p, s: _pair_needs(cfg, p["row"])[:1]),
                                settings=("constants", "mechanism", "mnist", "cifar10"), resources=_res(2000, 30),
                                description="claim 6b: end-of-phase perturbation with the loss gradient off"),
        "fig2": Experiment("fig2", run=f"{_MOD}.runs:run_fig2", shards=_fig2_shards, seeds=single_seed,
                           needs=param_needs(_fig2_shards, lambda cfg, p, s: _pair_needs(cfg, p["row"])),
                           settings=("constants", "fig2", "nft", "mnist", "cifar10"),
                           resources=lambda cfg: {**_res(4000, 120)(cfg), "runtime": 120 * len(cfg.fig2.block_types)},
                           description="block-type ablation at one ε: qr / perm_identity / layers / head"),
        "classdel": Experiment("classdel", run=f"{_MOD}.runs:run_tab1", shards=_tab1_shards, seeds=single_seed,
                              needs=param_needs(_tab1_shards, lambda cfg, p, s: [
                               *_pair_needs(cfg, p["row"]),
                               ("models", model_shard(p["row"], f"class{cfg.tab1.forget_class}"), 0)]),
                           settings=("constants", "tab1", "nft", "mnist", "cifar10"), resources=_res(4000, 120),
                           description="class deletion: NFT, block-NFT, retrain, FT, GA, RL, SalUn"),
    },
    tables={
        "tab_acct": Artifact("tab_acct", inputs=("accounting",), make=f"{_MOD}.tables:tab_acct",
                             caption="Accounting at η = 1e-4, λ = 10, C₀ = 0.01, C₁ = 1, δ = 1e-5: q*, ε_q and σ "
                                     "per injection for k = 1, 2, 4, 10 under `shared`, and σ·sqrt(11.2 M)."),
        "tab_claim6": Artifact("tab_claim6", inputs=("nft",), make=f"{_MOD}.tables:tab_claim6",
                               caption="Post-noise test accuracy of NFT and the best block-NFT per (row, variant, ε), "
                                       "mean over seeds, with the paired difference and its 95% interval."),
        "tab1": Artifact("tab1", inputs=("classdel",), make=f"{_MOD}.tables:tab1",
                         caption="Class-wise deletion: RA, TA, UA, SVC-MIA, loss-LR MIA (%) and runtime per method, "
                                 "mean ± std over seeds (certified methods carry their nominal ε)."),
    },
    figures={
        "fig_acct": Artifact("fig_acct", inputs=("accounting",), make=f"{_MOD}.plots:fig_acct",
                             caption="σ per injection and noisy steps against ε for k = 1, 2, 4, 10 under the "
                                     "`shared` and `scaled` per-block policies (pure accounting)."),
        "fig1": Artifact("fig1", inputs=("nft", "models"), make=f"{_MOD}.plots:fig1",
                         caption="Test accuracy against iteration: training before the request (shaded), the noisy "
                                 "phase and fine-tuning, for NFT and block-NFT; retrain and original as references. "
                                 "One panel set per per-block policy; mean ± s.e. over seeds."),
        "fig2": Artifact("fig2", inputs=("fig2",), make=f"{_MOD}.plots:fig2",
                         caption="Block-type ablation: post-noise and final test accuracy per block type "
                                 "(random QR, permutation, cyclic layers, head), `scaled`."),
    },
    checks=f"{_MOD}.checks:CHECKS",
))
