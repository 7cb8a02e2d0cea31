"""Paper `collateral`: Dolgova & Stich, "Forgetting Has Neighbors: Localized Collateral
Forgetting in Machine Unlearning" (arXiv 2605.31317). Declarations only (no torch at import).

Experiments: ``fig1`` synthetic ripple (one job); ``fig2`` MNIST full-class deletion (one job,
the repeats inside); ``models`` the bank (``reprosuite.unlearning.bank``): the original and R
retrains per (class, frac) cell and model seed, trained once and shared; ``reference`` the
original / retrain / held-out-floor rows and split facts; ``teacher`` LTD's teacher of every
unlearning seed per cell; ``unlearn`` one job per cell running every (method, seed); ``ablation``
LTD support-size (and teacher) ablations, one job per cell. Artifacts fig1-fig5, tab1
(docs/papers/collateral.md §3). Defaults below are the paper-scale settings; scales override them in YAML.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from reprosuite.config import check_range
from reprosuite.data import N_CLASSES
from reprosuite.registry import Artifact, Experiment, Paper, param_needs, register, single_seed
from reprosuite.unlearning import bank
from reprosuite.unlearning.configs import (
    FTConfig,
    GAConfig,
    GAFTConfig,
    LTDConfig,
    RLConfig,
    SalUnConfig,
    TrainConfig,
)

METHOD_KEYS = ("ga", "rl_nr", "rl", "ft", "ga_ft", "salun", "ltd")


@dataclass(frozen=True)
class Fig1Config:
    """Synthetic ripple (docs/papers/collateral.md §2.6)."""

    ga_n_train: int = 5000
    ga_dim: int = 10
    ga_steps: int = 500
    ga_lr: float = 0.01  # times 1/||x_f||^2
    ga_noise_std: float = 0.5  # label noise of y = X w + noise [INF]; 0 gives ~1e-15 gaps
    rl_n: int = 900
    rl_dim: int = 1000
    rl_steps: int = 50
    rl_lr: float = 0.5  # times 1/||x_f||^2 [INF]
    rl_weight_decay: float = 0.0
    n_test: int = 5000
    rl_logit_scale: float = 1.5  # std of the true logits x^T w_true [INF]
    n_runs: int = 100
    n_inner: int = 50  # RL label redraws per deleted point (flip rate / logit-shift variance)
    n_bins: int = 30
    rho_range: Literal["fixed", "data"] = "data"  # RL binning range; GA always [-1, 1] (code)
    min_bin_count: int = 20  # RL bins with fewer test points are left out of the Spearman check

    def __post_init__(self):
        check_range(self, "fig1", "ga_n_train", "ga_dim", "ga_steps", "rl_n", "rl_dim", "rl_steps", "n_test", "n_runs",
                    "n_inner", "n_bins", ge=1)
        check_range(self, "fig1", "ga_lr", "rl_lr", "rl_logit_scale", gt=0)
        check_range(self, "fig1", "ga_noise_std", "min_bin_count", ge=0)
        check_range(self, "fig1", "rl_weight_decay", ge=0, lt=1)


@dataclass(frozen=True)
class Fig2Config:
    """MNIST full-class deletion (C-F2)."""

    dataset: Literal["mnist5k", "mnist"] = "mnist"
    forget_class: int = 9
    train: TrainConfig = field(default_factory=TrainConfig)
    rl_steps: int = 300
    rl_lr: float = 5e-5
    ga_steps: int = 50
    ga_lr: float = 1e-4
    batch_size: int = 64
    rl_label_reseed_bug: bool = False  # the code re-seeds labels every call (same labels each batch)
    repeats: tuple[int, ...] = tuple(range(10))

    def __post_init__(self):
        check_range(self, "fig2", "rl_steps", "ga_steps", "batch_size", ge=1)
        check_range(self, "fig2", "rl_lr", "ga_lr", gt=0)
        check_range(self, "fig2", "forget_class", "repeats", ge=0)


@dataclass(frozen=True)
class MethodsConfig:
    """Per-method hyperparameters (the paper's values are UNKNOWN; defaults = code CLI)."""

    ga: GAConfig = field(default_factory=lambda: GAConfig(epochs=5, lr=1e-4))
    rl_nr: RLConfig = field(default_factory=lambda: RLConfig(retain_fraction=0.0))
    rl: RLConfig = field(default_factory=RLConfig)
    ft: FTConfig = field(default_factory=lambda: FTConfig(lr=0.01))
    ga_ft: GAFTConfig = field(default_factory=lambda: GAFTConfig(epochs=5, lr=1e-4))
    salun: SalUnConfig = field(default_factory=lambda: SalUnConfig(lr=0.013))
    ltd: LTDConfig = field(default_factory=LTDConfig)


def _resnet_recipe() -> TrainConfig:
    return TrainConfig(epochs=200, batch_size=256, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True,
                       weight_decay=5e-4, schedule="cosine", augment=True)


@dataclass(frozen=True)
class MainConfig:
    """Partial-class deletion (C-F3, C-T1, C-F4, C-F5). The paper's classes, fractions, per-method
    budgets, seeds and checkpoint are UNKNOWN; choices marked [INF] are documented in README.md.
    The data, arch, train, forget_* , n_retrains and model_seeds fields declare the bank
    (``reprosuite.unlearning.bank``, experiment ``models``)."""

    dataset: Literal["cifar100", "fashion_mnist", "mnist5k", "digits"] = "cifar100"
    stand_in_for: str | None = None
    n_train: int | None = None  # stratified subset, data-set order kept
    n_test: int | None = None
    subset_seed: int = 0
    forget_classes: tuple[int, ...] = (25, 10, 70)  # 25 = the code's default ("couch"); 10, 70 [INF]
    forget_fracs: tuple[float, ...] = (0.1, 0.5)
    arch: Literal["small_cnn", "resnet8", "resnet56"] = "resnet56"
    train: TrainConfig = field(default_factory=_resnet_recipe)
    checkpoint: Literal["last"] = "last"
    n_retrains: int = 4  # consensus retrains + the held-out floor (last one) when floor_retrain
    model_seeds: tuple[int, ...] = (0,)  # seeds of the bank (original + retrains); each is a base/retrain set
    floor_retrain: bool = True
    methods: tuple[str, ...] = METHOD_KEYS
    hp: MethodsConfig = field(default_factory=MethodsConfig)
    n_bins: int = 10
    binnings: tuple[str, ...] = ("equal_width", "quantile")
    headline_metric: Literal["mismatch_a", "err_gap_b", "conf_drop_c", "argmax_disagree_d"] = "mismatch_a"
    min_bin_count: int = 30
    retain_eval_size: int | None = None
    mia_shadow_size: int | None = None  # None: |test| members and |test| non-members
    mia_variants: tuple[str, ...] = ("confidence", "correctness", "entropy", "m_entropy", "prob")
    support_transform: Literal["clean", "augmented"] = "clean"

    def __post_init__(self):
        check_range(self, "main", "n_train", "n_test", "n_bins", "retain_eval_size", "mia_shadow_size", ge=1)
        check_range(self, "main", "subset_seed", "forget_classes", "model_seeds", "min_bin_count", ge=0)
        check_range(self, "main", "forget_classes", lt=N_CLASSES[self.dataset])  # a class the data set has
        unknown = set(self.methods) - set(METHOD_KEYS)
        if unknown:
            raise ValueError(f"methods has {sorted(unknown)[0]!r}; allowed: {', '.join(METHOD_KEYS)}")
        if not self.model_seeds or len(set(self.model_seeds)) != len(self.model_seeds):
            raise ValueError(f"model_seeds = {self.model_seeds} must name at least one seed, each once")
        if self.n_retrains < 1 + int(self.floor_retrain):
            raise ValueError(f"n_retrains = {self.n_retrains} must be >= 2 with floor_retrain, else >= 1")
        for f in self.forget_fracs:
            if not 0 < f <= 1:
                raise ValueError(f"forget_fracs has {f}; allowed: (0, 1]")
        for v in self.mia_variants:
            if v not in ("confidence", "correctness", "entropy", "m_entropy", "prob"):
                raise ValueError(f"mia_variants has {v!r}; allowed: confidence, correctness, entropy, m_entropy, prob")
        if "confidence" not in self.mia_variants:
            raise ValueError("mia_variants must include 'confidence' (the headline SVC-MIA)")
        for b in self.binnings:
            if b not in ("equal_width", "quantile"):
                raise ValueError(f"binnings has {b!r}; allowed: equal_width, quantile")


@dataclass(frozen=True)
class Fig5Config:
    """LTD ablations: support size (KL curve), teacher threshold, support mode."""

    support_sizes: tuple[int, ...] = (250, 1000, 4000)
    teacher_thresholds: tuple[float, ...] = (0.8, 0.9, 0.95, 0.99)
    support_modes: tuple[str, ...] = ("closest", "random", "farthest")
    enabled: bool = True

    def __post_init__(self):
        check_range(self, "fig5", "support_sizes", ge=1)
        check_range(self, "fig5", "teacher_thresholds", gt=0, le=1)


@dataclass(frozen=True)
class CollateralConfig:
    seeds: tuple[int, ...] = (0, 1, 2)  # unlearning seeds (models are trained once per cell)
    fig1: Fig1Config = field(default_factory=Fig1Config)
    fig2: Fig2Config = field(default_factory=Fig2Config)
    main: MainConfig = field(default_factory=MainConfig)
    fig5: Fig5Config = field(default_factory=Fig5Config)


# the bank and the shards -----------------------------------------------------------------------
def cell_id(c: int, frac: float) -> str:
    return bank.Forget.partial(c, frac).id


def _cells(cfg) -> list[tuple[int, float]]:
    return [(c, f) for c in cfg.main.forget_classes for f in cfg.main.forget_fracs]


def bank_spec(cfg) -> bank.BankSpec:
    """The original and the R retrains of every (class, frac) cell, per model seed."""
    main = cfg.main
    return bank.BankSpec(bank.DataSpec(main.dataset, main.stand_in_for, main.n_train, main.n_test, main.subset_seed),
                         arch=main.arch, train=main.train, requests=tuple(bank.Forget.partial(c, f) for c, f in _cells(cfg)),
                         n_retrains=main.n_retrains, seeds=main.model_seeds)


def _per_model_seed(cfg, shards: dict[str, dict]) -> dict[str, dict]:
    """Every shard once per model seed; ids carry ``-m<seed>`` only when there are several."""
    seeds = cfg.main.model_seeds
    return {(sid if len(seeds) == 1 else f"{sid}-m{s}"): {**p, "model_seed": s} for s in seeds for sid, p in shards.items()}


def cell_request(params) -> bank.Forget:
    return bank.Forget.partial(params["forget_class"], params["frac"])


def _cell_shards(cfg):
    return _per_model_seed(cfg, {cell_id(c, f): {"forget_class": c, "frac": f} for c, f in _cells(cfg)})


def reference_shard(cfg, params) -> str:
    """The ``reference`` run of a consumer's (cell, model seed), found by parameters."""
    want = (params["forget_class"], params["frac"], params["model_seed"])
    return next(sid for sid, p in _cell_shards(cfg).items() if (p["forget_class"], p["frac"], p["model_seed"]) == want)


def _model_needs(cfg, params, seed):
    return bank.needs(bank_spec(cfg), cell_request(params), params["model_seed"])


def _eval_needs(cfg, params, seed):
    return _model_needs(cfg, params, seed) + [("reference", reference_shard(cfg, params), 0)]


def _teacher_shards(cfg):
    """LTD's teachers (one per unlearning seed) are fitted once per cell, when LTD runs."""
    return _cell_shards(cfg) if "ltd" in cfg.main.methods else {}


def teacher_shard(cfg, params) -> str | None:
    """The ``teacher`` run of a consumer's (cell, model seed), found by parameters; None without LTD."""
    want = (params["forget_class"], params["frac"], params["model_seed"])
    return next((sid for sid, p in _teacher_shards(cfg).items()
                 if (p["forget_class"], p["frac"], p["model_seed"]) == want), None)


def _teacher_needs(cfg, params, seed):
    return bank.needs(bank_spec(cfg), cell_request(params), params["model_seed"], retrains=False)


def _with_teacher(cfg, params) -> list[tuple[str, str, int]]:
    sid = teacher_shard(cfg, params)
    return [] if sid is None else [("teacher", sid, 0)]


def _unlearn_needs(cfg, params, seed):
    return _eval_needs(cfg, params, seed) + _with_teacher(cfg, params)


def ablation_points(cfg) -> list[tuple[tuple[int, str, float], LTDConfig]]:
    """One-factor sweeps around LTD's setting (support size, support mode, teacher threshold):
    ((n_support, mode, threshold), LTD's config at that point), sorted."""
    if not cfg.fig5.enabled:
        return []
    ltd = cfg.main.hp.ltd
    n0, mode0 = ltd.n_support, ltd.support_mode
    thr0 = ltd.teacher.stop_train_acc or 0.99
    points = ({(n, mode0, thr0) for n in cfg.fig5.support_sizes}
              | {(n0, m, thr0) for m in cfg.fig5.support_modes}
              | {(n0, mode0, t) for t in cfg.fig5.teacher_thresholds})
    return [((n, m, t), dataclasses.replace(ltd, n_support=n, support_mode=m,
                                            teacher=dataclasses.replace(ltd.teacher, stop_train_acc=t)))
            for n, m, t in sorted(points)]


def _ablation_shards(cfg):
    return _cell_shards(cfg) if ablation_points(cfg) else {}


def _ablation_needs(cfg, params, seed):
    """The reference, and the teacher run when one point is LTD's own setting (its teacher is reused)."""
    shared = any(ltd == cfg.main.hp.ltd for _, ltd in ablation_points(cfg))
    return _eval_needs(cfg, params, seed) + (_with_teacher(cfg, params) if shared else [])


def _resources(mem: int, minutes: int, per_run: bool = False):
    """Cluster resources; ``per_run``: ``minutes`` per (method, seed) of an unlearn job."""
    def res(cfg):
        runs = len(cfg.main.methods) * len(cfg.seeds) if per_run else 1
        return {"mem_mb": mem, "runtime": minutes * runs, "gpu": int(cfg.main.arch == "resnet56")}
    return res


_MOD = "reprosuite.papers.collateral"

PAPER = register(Paper(
    id="collateral",
    title="Forgetting Has Neighbors: Localized Collateral Forgetting in Machine Unlearning",
    citation="P. Dolgova, S. U. Stich. Forgetting Has Neighbors: Localized Collateral Forgetting in "
             "Machine Unlearning. arXiv:2605.31317 (2026).",
    config=CollateralConfig,
    experiments={
        "fig1": Experiment("fig1", run=f"{_MOD}.synthetic:run_fig1", seeds=single_seed,
                           resources=lambda cfg: {"mem_mb": 2000, "runtime": 5, "gpu": 0},
                           description="synthetic ripple: GA-linear, RL-logistic (one job)"),
        "fig2": Experiment("fig2", run=f"{_MOD}.fullclass:run_fig2", seeds=single_seed,
                           resources=lambda cfg: {"mem_mb": 2000, "runtime": 5 * len(cfg.fig2.repeats), "gpu": 0},
                           description="MNIST full-class deletion: accuracy drop vs class similarity (every "
                                       "repeat in one job)"),
        "models": bank.models_experiment(bank_spec, settings=("main",), resources=_resources(4000, 240),
                                         description="original + retrains per (class, frac), trained once, shared"),
        "reference": Experiment("reference", run=f"{_MOD}.main:run_reference", shards=_cell_shards, seeds=single_seed,
                                settings=("main",), reads_seeds=False,
                                needs=param_needs(_cell_shards, _model_needs),
                                resources=_resources(4000, 20),
                                description="split facts; original, retrain and held-out-floor rows"),
        "teacher": Experiment("teacher", run=f"{_MOD}.main:run_teacher", shards=_teacher_shards, seeds=single_seed,
                              settings=("main",),
                              needs=param_needs(_teacher_shards, _teacher_needs),
                              resources=lambda cfg: {**_resources(4000, 30)(cfg), "runtime": 30 * len(cfg.seeds)},
                              description="LTD's teacher of every unlearning seed (support, training), shared"),
        "unlearn": Experiment("unlearn", run=f"{_MOD}.main:run_unlearn", shards=_cell_shards, seeds=single_seed,
                              settings=("main",),
                              needs=param_needs(_cell_shards, _unlearn_needs),
                              resources=_resources(4000, 60, per_run=True),
                              description="every unlearning method at every seed of one cell: bins, aggregates, "
                                          "MIA, RTE"),
        "ablation": Experiment("ablation", run=f"{_MOD}.main:run_ablation", shards=_ablation_shards, seeds=single_seed,
                               settings=("main", "fig5"),
                               needs=param_needs(_ablation_shards, _ablation_needs),
                               resources=lambda cfg: {**_resources(4000, 30)(cfg),
                                                      "runtime": 30 * max(1, len(ablation_points(cfg)))},
                               description="LTD teacher: support size / mode / threshold, KL to the retrain"),
    },
    tables={
        "tab1": Artifact("tab1", inputs=("unlearn", "reference"), make=f"{_MOD}.tables:tab1",
                         caption="C-T1: RA, UA, TA and SVC-MIA (%), RTE (s) and Avg. Gap per method, mean ± 95 % "
                                 "t half-width over unlearning seeds (retrain: over the R retrains); raw "
                                 "columns (std, loss MIA, affected-class accuracies) in tab1.csv."),
    },
    figures={
        "fig1": Artifact("fig1", inputs=("fig1",), make=f"{_MOD}.plots:fig1",
                         caption="Synthetic ripple: squared logit gap to the retrain vs ripple coordinate ρ "
                                 "(GA-linear, RL-logistic) and RL flip rate / logit-shift variance by confidence."),
        "fig2": Artifact("fig2", inputs=("fig2",), make=f"{_MOD}.plots:fig2",
                         caption="Full-class deletion on MNIST: per-class accuracy drop vs similarity to the "
                                 "deleted class (Pearson r), and the class-similarity heatmap."),
        "fig3": Artifact("fig3", inputs=("unlearn", "reference"), make=f"{_MOD}.plots:fig3",
                         caption="Prediction mismatch with the retrain vs similarity to D_f, test and retain "
                                 "curves per method, LTD alongside; held-out retrain = noise floor."),
        "fig4": Artifact("fig4", inputs=("unlearn", "reference"), make=f"{_MOD}.plots:fig4",
                         caption="Affected-class metrics minus the retrain (pp), with the retrain ±std band."),
        "fig5": Artifact("fig5", inputs=("ablation", "unlearn", "reference"), make=f"{_MOD}.plots:fig5",
                         caption="LTD ablations: KL(hist_retrain || hist_teacher) vs support size with reference "
                                 "lines, and per-epoch unlearning dynamics."),
    },
    checks=f"{_MOD}.checks:CHECKS",
))
