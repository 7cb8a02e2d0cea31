"""Frozen configs of lora_risk. Defaults are the paper-scale settings (the authors' synthetic
settings of F1-F4 and the wider practical grid); experiments/lora_risk/{smoke,default}.yaml
override them. See docs/papers/lora_risk.md.

Kept free of numpy/torch so the paper declaration stays cheap to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Spectrum = Literal["gaussian", "constant", "fast_decay", "slow_decay"]

# authors' F1 grid: int(10 * 1.2**k) <= 1000
F1_N = (10, 12, 14, 17, 20, 24, 29, 35, 42, 51, 61, 74, 89, 106, 128, 154, 184, 221, 266, 319,
        383, 460, 552, 662, 794, 953)


def _positive(name: str, values) -> None:
    for v in values if isinstance(values, tuple) else (values,):
        if v <= 0:
            raise ValueError(f"{name} = {values!r} must be > 0")


@dataclass(frozen=True)
class Sweep:
    """One Monte Carlo sweep over the product grid n × r* × decay × σ (authors' F1 by default).

    Seeds are base_seed + i, i < n_seeds, reused at every grid point (common random numbers).
    """

    dx: int = 100
    dy: int = 100
    n: tuple[int, ...] = F1_N
    sigma: tuple[float, ...] = (1.0,)
    true_rank: tuple[int, ...] = (4,)
    decay: tuple[float, ...] = (0.5,)
    spectrum: Spectrum = "gaussian"
    scale: float = 1.0
    ranks: tuple[int, ...] = (1, 2, 4, 8)
    n_seeds: int = 100
    base_seed: int = 0

    def __post_init__(self):
        _positive("dx", self.dx)
        _positive("dy", self.dy)
        _positive("n", self.n)
        _positive("sigma", self.sigma)
        _positive("true_rank", self.true_rank)
        _positive("ranks", self.ranks)
        if self.n_seeds < 2:
            raise ValueError(f"n_seeds = {self.n_seeds} must be >= 2 (std over seeds)")
        if self.spectrum != "gaussian" and max(self.true_rank) > min(self.dx, self.dy):
            raise ValueError(f"true_rank = {max(self.true_rank)} exceeds min(dx, dy) = {min(self.dx, self.dy)} "
                             f"for spectrum {self.spectrum!r}")
        if any(a < 0 for a in self.decay):
            raise ValueError(f"decay = {self.decay!r} must be >= 0")
        _positive("scale", self.scale)


@dataclass(frozen=True)
class Fig2Config:
    """F2: risk vs true rank, 40×40, n = 30, σ = 2; spectrum variants of the authors' script."""

    sweep: Sweep = Sweep(dx=40, dy=40, n=(30,), sigma=(2.0,), true_rank=tuple(range(1, 41)),
                         ranks=(1, 2, 4, 8, 32))
    variants: tuple[Spectrum, ...] = ("gaussian", "constant", "fast_decay", "slow_decay")
    scale: float = 8.0  # UNKNOWN for the decay variants; the authors' `constant` uses 8
    fast_decay: float = 0.5
    slow_decay: float = 0.2

    def __post_init__(self):
        if not self.variants:
            raise ValueError("fig2.variants = () must not be empty")
        _positive("fig2.scale", self.scale)
        if self.fast_decay < 0 or self.slow_decay < 0:
            raise ValueError(f"fig2.fast_decay = {self.fast_decay} and slow_decay = {self.slow_decay} must be >= 0")


@dataclass(frozen=True)
class PhaseConfig:
    """A phase diagram of log10(R_LoRA / R_FFT) over (axis, log10 n/dx) (fig5); values UNKNOWN."""

    axis: Literal["decay", "sigma"] = "decay"
    dx: int = 40
    dy: int = 40
    spectrum: Spectrum = "fast_decay"
    true_rank: int = 40
    scale: float = 5.0
    sigma: float = 0.5  # fixed σ when axis = decay
    decay: float = 0.5  # fixed decay when axis = sigma (unused for a gaussian spectrum)
    axis_min: float = 0.0
    axis_max: float = 2.5
    log_ratio_min: float = -1.0  # log10(n/dx)
    log_ratio_max: float = 1.0
    theory_grid: int = 60
    theory_seeds: int = 20  # spectra averaged for a random (gaussian) Δ
    mc_grid: int = 10
    mc_seeds: int = 100
    rank: int = 4
    base_seed: int = 0

    def __post_init__(self):
        for name in ("dx", "dy", "true_rank", "rank", "sigma", "scale"):
            _positive(f"phase.{name}", getattr(self, name))
        if self.axis_max <= self.axis_min:
            raise ValueError(f"phase.axis_max = {self.axis_max} must be > axis_min = {self.axis_min}")
        if self.log_ratio_max <= self.log_ratio_min:
            raise ValueError(f"phase.log_ratio_max = {self.log_ratio_max} must be > log_ratio_min = {self.log_ratio_min}")
        if self.axis == "sigma" and self.axis_min <= 0:
            raise ValueError(f"axis_min = {self.axis_min} must be > 0 on a log σ axis")
        if self.theory_grid < 2 or self.mc_grid < 2:
            raise ValueError("theory_grid and mc_grid must be >= 2")
        if self.mc_seeds < 2 or self.theory_seeds < 1:
            raise ValueError("mc_seeds must be >= 2 and theory_seeds >= 1")


@dataclass(frozen=True)
class IdentitiesConfig:
    """Claim 1: random small cases in both regimes."""

    n_cases: int = 8
    dx: int = 12
    dy: int = 9
    base_seed: int = 1000

    def __post_init__(self):
        if self.n_cases < 1:
            raise ValueError(f"identities.n_cases = {self.n_cases} must be >= 1")
        if self.dx < 5 or self.dy < 3:
            raise ValueError(f"identities.dx = {self.dx} must be >= 5 and dy = {self.dy} >= 3 (cases use n = dx - 3, rank <= 3)")


@dataclass(frozen=True)
class GDConfig:
    """Claim 9: peft LoRA on nn.Linear trained by full-batch L-BFGS/GD vs the closed form."""

    enabled: bool = True
    dx: int = 40
    dy: int = 40
    true_rank: int = 2
    rank: int = 2
    sigma: float = 0.5
    ns: tuple[int, ...] = (200, 30)
    n_seeds: int = 20  # antithetic pairs at n = 30: ~20 pairs resolve a +1% gap against 0.5%
    base_seed: int = 0
    init_scales: tuple[float, ...] = (1.0, 1e-3)  # multiplies peft's default A init (B = 0)
    optimizer: Literal["lbfgs", "gd"] = "lbfgs"
    max_iter: int = 3000
    warmup_steps: int = 300  # curvature-scaled GD steps before L-BFGS (escape the B = 0 saddle)
    antithetic: bool = True  # n < dx: also train from A_init(2P - I) (cancels the cross term)

    def __post_init__(self):
        if self.rank < 1 or self.rank > min(self.dx, self.dy):
            raise ValueError(f"gd.rank = {self.rank} must be in 1..min(dx, dy)")
        _positive("gd.ns", self.ns)
        _positive("gd.sigma", self.sigma)
        _positive("gd.init_scales", self.init_scales)
        if self.n_seeds < 2 or self.max_iter < 1 or self.warmup_steps < 0:
            raise ValueError(f"gd.n_seeds = {self.n_seeds} must be >= 2, max_iter = {self.max_iter} >= 1, "
                             f"warmup_steps = {self.warmup_steps} >= 0")


@dataclass(frozen=True)
class PracticalConfig:
    """MiniLM-L6 + Rotten Tomatoes (default grid; paper scale in the defaults). Per-method lr grids: one value at
    default; several values are chosen on the validation split (paper scale)."""

    enabled: bool = True
    methods: tuple[Literal["head", "fft", "lora"], ...] = ("head", "fft", "lora")
    ranks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    count_ranks: tuple[int, ...] = (1, 8, 64)
    ns: tuple[int, ...] = (64, 256, 1024, 4096, 8894)  # 8894 = the whole train pool ("all")
    data_seed: int = 42
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    split_seed: int = 0
    test_subset: int = 1000
    val_subset: int = 500
    lr_head: float = 3e-3
    lrs_fft: tuple[float, ...] = (2e-5, 5e-5, 1e-4)
    lrs_lora: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    lrs_head: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    alpha_over_r: float = 2.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ("query", "key", "value", "dense")
    weight_decay: float = 0.01
    warmup: float = 0.02
    batch_size: int = 16
    max_length: int = 64
    epochs: float = 2.0
    min_steps: int = 40
    max_steps: int | None = None  # hard cap (smoke)
    head_pooling: Literal["mean", "cls_pooler"] = "mean"
    eval_batch: int = 100
    spectrum: bool = True  # save the SVD spectra of the FFT update ΔW
    checkpoint_steps: int = 25  # a killed job resumes from its last multiple of this (0: no checkpoints)
    # jobs: one per (method, rank, n) cell, one per n, or one for all cells, which run in turn; a job
    # pays the start-up (torch, transformers, peft, the encoder) once and its head-only cells share
    # the frozen encoder's features; every cell is seeded as a job of its own (the same records)
    jobs: Literal["cell", "n", "all"] = "cell"

    def __post_init__(self):
        if abs(sum(self.split) - 1.0) > 1e-9:
            raise ValueError(f"practical.split = {self.split} must sum to 1")
        if any(not 0 < f < 1 for f in self.split):
            raise ValueError(f"practical.split = {self.split} must hold fractions in (0, 1)")
        _positive("practical.ns", self.ns)
        _positive("practical.ranks", self.ranks)
        _positive("practical.count_ranks", self.count_ranks)
        for name in ("lr_head", "lrs_fft", "lrs_lora", "lrs_head", "alpha_over_r", "epochs"):
            _positive(f"practical.{name}", getattr(self, name))
        for name in ("batch_size", "min_steps", "test_subset", "val_subset", "max_length", "eval_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"practical.{name} = {getattr(self, name)} must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"practical.max_steps = {self.max_steps} must be >= 1 (or null)")
        if not 0 <= self.dropout < 1 or not 0 <= self.warmup < 1:
            raise ValueError(f"practical.dropout = {self.dropout} and warmup = {self.warmup} must be in [0, 1)")
        if self.weight_decay < 0:
            raise ValueError(f"practical.weight_decay = {self.weight_decay} must be >= 0")
        if self.checkpoint_steps < 0:
            raise ValueError(f"practical.checkpoint_steps = {self.checkpoint_steps} must be >= 0 (0: no checkpoints)")
        if not self.methods:
            raise ValueError("practical.methods = () must not be empty")


@dataclass(frozen=True)
class LLMConfig:
    """Paper scale (ii): Qwen2.5 on BoolQ/ARC/CSQA via the normal HF download path (the authors'
    recipe, docs/papers/lora_risk.md "Practical")."""

    enabled: bool = True
    model: str = "Qwen/Qwen2.5-0.5B"
    tasks: tuple[Literal["boolq", "arc_easy", "arc_challenge", "commonsense_qa"], ...] = (
        "boolq", "arc_easy", "arc_challenge", "commonsense_qa")
    ranks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    lr_fft: float = 1e-5
    lr_lora: float = 2e-4
    epochs: float = 1.0
    batch_size: int = 16
    cutoff: int = 128
    warmup: float = 0.05
    lora_dropout: float = 0.05
    val_fraction: float = 0.2
    data_seed: int = 42
    max_train: int | None = None
    max_eval: int | None = None
    system_prompt: str = "You are a helpful assistant."
    cache_dir: str | None = None  # HF cache to read offline (HF_HOME layout)

    def __post_init__(self):
        for name in ("lr_fft", "lr_lora", "epochs", "ranks"):
            _positive(f"llm.{name}", getattr(self, name))
        for name in ("batch_size", "cutoff"):
            if getattr(self, name) < 1:
                raise ValueError(f"llm.{name} = {getattr(self, name)} must be >= 1")
        if not 0 <= self.warmup < 1 or not 0 <= self.lora_dropout < 1:
            raise ValueError(f"llm.warmup = {self.warmup} and lora_dropout = {self.lora_dropout} must be in [0, 1)")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"llm.val_fraction = {self.val_fraction} must be in (0, 1)")
        for name in ("max_train", "max_eval"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"llm.{name} = {getattr(self, name)} must be >= 1 (or null)")
        if not self.tasks:
            raise ValueError("llm.tasks = () must not be empty")


@dataclass(frozen=True)
class FFTCellsConfig:
    """Claim 2: the exact FFT risk at the sweep geometries of fig1, fig2 and fig4, with seeds sized to
    the tolerance by an independent pilot (see cells.py and docs/papers/lora_risk.md)."""

    min_gap: int = 5  # |n - dx| >= 5: the variance of the FFT risk is finite only for |n - dx| >= 4
    pilot_seeds: int = 200
    min_seeds: int = 200
    max_seeds: int = 20000
    size_rtol: float = 0.05  # the claim's tolerance: size N so the expected half-width <= size_rtol / 3
    level: float = 0.95  # family-wise (Bonferroni over the cells)
    chunk: int = 500

    def __post_init__(self):
        if self.min_gap < 4:
            raise ValueError(f"fft_cells.min_gap = {self.min_gap} must be >= 4 (the variance is infinite below)")
        if self.pilot_seeds < 2 or self.min_seeds < 2:
            raise ValueError(f"fft_cells.pilot_seeds = {self.pilot_seeds} and min_seeds = {self.min_seeds} must be >= 2")
        if self.max_seeds < self.min_seeds:
            raise ValueError(f"fft_cells.max_seeds = {self.max_seeds} must be >= min_seeds = {self.min_seeds}")
        if not 0 < self.size_rtol < 1:
            raise ValueError(f"fft_cells.size_rtol = {self.size_rtol} must be in (0, 1)")
        if not 0 < self.level < 1:
            raise ValueError(f"fft_cells.level = {self.level} must be in (0, 1)")
        if self.chunk < 1:
            raise ValueError(f"fft_cells.chunk = {self.chunk} must be >= 1")


@dataclass(frozen=True)
class HybridConfig:
    """Claim 4: Monte Carlo seeds per accuracy-cell panel, sized before the measurement from a
    1,000-seed pilot on a disjoint seed range (base seed 10^6; 300 seeds for `noise`): over the 24
    cells (Bonferroni, z = 3.08) the expected half-width is at most a third of the 10% tolerance
    when N >= (sd_rel / 0.0108)^2. Pilot per-seed sd_rel: f1like 0.09-0.18 at n = 25, 100 (N >= 280)
    and 0.67-0.91 at n = 54 = dx + 4 (N >= 6,900; tail index 2.5, so the sample s.d. itself is
    unreliable there: 10,000); noise 0.02-0.06 (N >= 31); decay 0.01-0.10 (N >= 93); rank 0.09-0.22
    (N >= 415)."""

    f1like_seeds: int = 1000
    near_seeds: int = 10000  # cells with |n - dx| < near_gap (n = 54 at dx = 50)
    near_gap: int = 8
    noise_seeds: int = 100
    decay_seeds: int = 400
    rank_seeds: int = 1000
    hybrid_spectra: int = 1000  # the hybrid prediction averages the spectra of the first seeds
    chunk: int = 1000

    def __post_init__(self):
        for name in ("f1like_seeds", "near_seeds", "noise_seeds", "decay_seeds", "rank_seeds"):
            if getattr(self, name) < 2:
                raise ValueError(f"hybrid.{name} = {getattr(self, name)} must be >= 2")
        if self.hybrid_spectra < 1 or self.chunk < 1:
            raise ValueError(f"hybrid.hybrid_spectra = {self.hybrid_spectra} and chunk = {self.chunk} must be >= 1")
