"""lora_risk: Zindari, Mulayoff & Stich, "LoRA vs. Full Fine-Tuning: A Theoretical Perspective".

Declarations only (cheap to import): configs, experiments, artifacts. The synthetic experiments
(fig1–fig5 and claims 1–9) are Monte Carlo of the authors' linear model with this project's
closed forms ("prediction (ours)"); the practical ones fine-tune MiniLM-L6 on Rotten Tomatoes
with peft LoRA (fig6, fig7, tab1); the paper-scale LLM path (Qwen2.5 on BoolQ/ARC/CSQA) needs
the Hugging Face downloads. The config defaults are the paper-scale settings;
experiments/lora_risk/{smoke,default}.yaml override them. Method, math and the source of every
claim: docs/papers/lora_risk.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from reprosuite.registry import Artifact, Experiment, Paper, register, single_seed

from .configs import (
    F1_N,
    FFTCellsConfig,
    Fig2Config,
    GDConfig,
    HybridConfig,
    IdentitiesConfig,
    LLMConfig,
    PhaseConfig,
    PracticalConfig,
    Sweep,
)

P = "reprosuite.papers.lora_risk"


def _f3_sigmas(count: int = 40) -> tuple[float, ...]:
    return tuple(2 ** (i * math.log2(100) / (count - 1)) for i in range(count))


@dataclass(frozen=True)
class Fig1Config:
    """F1 (≈ Fig. 1(a)) and the decaying-spectrum panel that shows the crossover n*."""

    gauss: Sweep = field(default_factory=Sweep)
    decay: Sweep = field(default_factory=lambda: Sweep(true_rank=(100,), spectrum="fast_decay", scale=5.0,
                                                       decay=(0.5,)))


@dataclass(frozen=True)
class Fig5Config:
    """Rank U-curve (F4 setting at one decay rate) and the two phase diagrams."""

    rank: Sweep = field(default_factory=lambda: Sweep(dx=40, dy=40, n=(200,), sigma=(0.5,), true_rank=(40,),
                                                      decay=(1.0,), spectrum="fast_decay", scale=5.0,
                                                      ranks=tuple(range(1, 40)), base_seed=42))
    phase_decay: PhaseConfig = field(default_factory=PhaseConfig)
    phase_sigma: PhaseConfig = field(default_factory=lambda: PhaseConfig(
        axis="sigma", dx=100, dy=100, spectrum="gaussian", true_rank=10, scale=1.0, axis_min=1.0,
        axis_max=100.0))
    mc_check: bool = True  # Monte Carlo check points on the coarse grid


@dataclass(frozen=True)
class LoraRiskConfig:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # training seeds of the practical task; MC uses base_seed + i
    identities: IdentitiesConfig = field(default_factory=IdentitiesConfig)
    firstorder: Sweep = field(default_factory=lambda: Sweep(
        dx=60, dy=60, n=(10, 30, 45, 52, 70, 120), true_rank=(3,), spectrum="constant", scale=100.0,
        ranks=(3,), n_seeds=400))
    fft_cells: FFTCellsConfig = field(default_factory=FFTCellsConfig)
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    fig1: Fig1Config = field(default_factory=Fig1Config)
    fig2: Fig2Config = field(default_factory=Fig2Config)
    fig3: Sweep = field(default_factory=lambda: Sweep(n=(1000,), sigma=_f3_sigmas(), true_rank=(10,),
                                                      ranks=(1, 2, 4, 8, 16), n_seeds=100))
    fig4: Sweep = field(default_factory=lambda: Sweep(
        dx=40, dy=40, n=(200,), sigma=(0.5,), true_rank=(40,), decay=tuple(i * 0.125 for i in range(21)),
        spectrum="fast_decay", scale=5.0, ranks=(1, 2, 4, 8, 16), base_seed=42))
    fig5: Fig5Config = field(default_factory=Fig5Config)
    gd: GDConfig = field(default_factory=GDConfig)
    practical: PracticalConfig = field(default_factory=PracticalConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    synthetic: bool = True

    def __post_init__(self):
        if not self.seeds:
            raise ValueError("seeds = () must not be empty")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds = {self.seeds!r} must be >= 0")


def _mc(cfg, shards):
    return shards if cfg.synthetic else {}


def _practical_cells(p) -> dict[str, dict]:
    """Every (method, rank, n) cell of the practical grid, by name (``fft-n512``, ``lora8-n64``)."""
    out = {}
    for method in p.methods:
        ranks = p.ranks if method == "lora" else (0,)
        for r in ranks:
            for n in p.ns:
                name = f"{method}{r if method == 'lora' else ''}-n{n}"
                out[name] = {"method": method, "rank": int(r), "n": int(n)}
    return out


def _practical_job(jobs: str, name: str, cell: dict) -> str:
    """The shard that runs a cell: the cell itself, its n (``n64``) or ``all`` (``practical.jobs``)."""
    return {"cell": name, "n": f"n{cell['n']}", "all": "all"}[jobs]


def _practical_shards(cfg):
    """Shard -> its cells' parameters (one cell: the cell's own; several: ``cells``, in grid order)."""
    cells = _practical_cells(cfg.practical)
    if cfg.practical.jobs == "cell":
        return cells
    out: dict[str, dict] = {}
    for name, cell in cells.items():
        out.setdefault(_practical_job(cfg.practical.jobs, name, cell), {"cells": []})["cells"].append(cell)
    return out


def _practical_resources(cfg):
    """10 minutes a cell (the cluster profile's time limit), times the cells of the largest job."""
    jobs = _practical_shards(cfg).values() if cfg.practical.enabled else ()
    cells = max((len(j.get("cells", [j])) for j in jobs), default=1)
    return {"mem_mb": 6000, "runtime": 10 * cells, "gpu": 0}


def _spectrum_needs(cfg, shard, seed):
    n = max(cfg.practical.ns)
    cell = {"method": "fft", "rank": 0, "n": n}
    return [("practical", _practical_job(cfg.practical.jobs, f"fft-n{n}", cell), seed)]


def _spectrum_shards(cfg):
    return {"all": {}} if "fft" in cfg.practical.methods and cfg.practical.spectrum else {}


def _llm_shards(cfg):
    if not cfg.llm.enabled:
        return {}
    methods = [("fft", 0)] + [("lora", r) for r in cfg.llm.ranks]
    return {f"{task}-{m}{r or ''}": {"task": task, "method": m, "rank": r}
            for task in cfg.llm.tasks for m, r in methods}


def _res(mem: int, minutes: int):
    return lambda cfg: {"mem_mb": mem, "runtime": minutes, "gpu": 0}


EXPERIMENTS = {
    "identities": Experiment("identities", run=f"{P}.synthetic:run_identities",
                             shards=lambda c: _mc(c, {"all": {}}), seeds=single_seed,
                             resources=_res(1000, 2), description="claim 1: estimator identities"),
    "firstorder": Experiment("firstorder", run=f"{P}.synthetic:run_firstorder",
                             shards=lambda c: _mc(c, {"all": {}}), seeds=single_seed,
                             resources=_res(2000, 5), description="claim 3: first-order LoRA table"),
    "fft_cells": Experiment("fft_cells", run=f"{P}.cells:run_fft_cells", shards=lambda c: _mc(c, {"all": {}}),
                            seeds=single_seed, resources=_res(3000, 5),
                            description="claim 2: exact FFT risk, seeds sized to the tolerance"),
    "hybrid": Experiment("hybrid", run=f"{P}.synthetic:run_hybrid",
                         shards=lambda c: _mc(c, {"all": {"cells": ["f1like", "noise", "decay", "rank"]}}),
                         seeds=single_seed, resources=_res(2000, 5), description="claim 4: hybrid accuracy cells"),
    "fig1": Experiment("fig1", run=f"{P}.synthetic:run_sweep",
                       shards=lambda c: _mc(c, {"all": {"panels": ["gauss", "decay"]}}),
                       seeds=single_seed, resources=_res(3000, 5), description="F1: risk vs dx/n"),
    "fig2": Experiment("fig2", run=f"{P}.synthetic:run_sweep",
                       shards=lambda c: _mc(c, {"all": {"panels": list(c.fig2.variants)}}),
                       seeds=single_seed, resources=_res(2000, 5), description="F2: risk vs true rank"),
    "fig3": Experiment("fig3", run=f"{P}.synthetic:run_sweep", shards=lambda c: _mc(c, {"all": {}}),
                       seeds=single_seed, resources=_res(3000, 5), description="F3: risk vs noise"),
    "fig4": Experiment("fig4", run=f"{P}.synthetic:run_sweep", shards=lambda c: _mc(c, {"all": {}}),
                       seeds=single_seed, resources=_res(2000, 5), description="F4: risk vs decay rate"),
    "fig5": Experiment("fig5", run=f"{P}.phase:run_fig5",
                       shards=lambda c: _mc(c, {"all": {"parts": [k for k in (
                           "rank", "decay_theory", "decay_mc", "sigma_theory", "sigma_mc")
                           if c.fig5.mc_check or not k.endswith("_mc")]}}),
                       seeds=single_seed, resources=_res(3000, 5), description="rank curve and phase diagrams"),
    "gd": Experiment("gd", run=f"{P}.gd:run_gd",
                     shards=lambda c: _mc(c, {"all": {"ns": list(c.gd.ns)}} if c.gd.enabled else {}),
                     seeds=single_seed, resources=_res(2000, 5), description="claim 9: peft GD vs closed form"),
    "params": Experiment("params", run=f"{P}.practical:run_param_counts",
                         shards=lambda c: {"all": {}} if c.practical.enabled else {}, seeds=single_seed,
                         resources=_res(4000, 3), settings=("practical",),
                         description="claim 12: trainable parameter counts"),
    "practical": Experiment("practical", run=f"{P}.practical:run_practical",
                            shards=lambda c: _practical_shards(c) if c.practical.enabled else {},
                            resources=_practical_resources, description="MiniLM + Rotten Tomatoes, FFT vs LoRA"),
    "spectrum": Experiment("spectrum", run=f"{P}.practical:run_spectrum",
                           shards=lambda c: _spectrum_shards(c) if c.practical.enabled else {},
                           needs=_spectrum_needs, resources=_res(2000, 2), settings=("practical",),
                           description="SVD spectra of the FFT update ΔW"),
    "llm": Experiment("llm", run=f"{P}.llm:run_llm", shards=_llm_shards,
                      resources=lambda c: {"mem_mb": 64000, "runtime": 240, "gpu": 1},
                      description="paper scale: Qwen2.5 on BoolQ/ARC/CSQA (needs downloads)"),
}

_PRED = "Theory curves are this project's closed forms, labelled 'prediction (ours)'."

PAPER = register(Paper(
    id="lora_risk",
    title="LoRA vs. Full Fine-Tuning: A Theoretical Perspective",
    citation="A. Zindari, R. Mulayoff, S. U. Stich. LoRA vs. Full Fine-Tuning: A Theoretical "
             "Perspective. arXiv:2605.19018, 2026.",
    config=LoraRiskConfig,
    experiments=EXPERIMENTS,
    tables={
        "tab_fft_exact": Artifact("tab_fft_exact", ("fft_cells",), f"{P}.tables:tab_fft_exact",
                                  "Claim 2: mean FFT excess risk vs the exact formula (ours) at every n of fig1 "
                                  "(both panels), fig2 and fig4 with |n − dx| ≥ 5; the worst Δ family per row; "
                                  "seeds sized to the 5% tolerance; mean ± 95% t interval."),
        "tab_firstorder": Artifact("tab_firstorder", ("firstorder",), f"{P}.tables:tab_firstorder",
                                   "Claim 3: in-span excess risk, Monte Carlo (mean ± 95% interval) vs the first-order "
                                   "formula (ours), dx = dy = 60, r* = r = 3, σ = 1, constant spectrum 100."),
        "tab_hybrid": Artifact("tab_hybrid", ("hybrid",), f"{P}.tables:tab_hybrid",
                               "Claim 4: Monte Carlo (mean ± 95% interval) vs the finite-SNR hybrid prediction "
                               "(ours) in the 24 accuracy cells; tolerance 10% (r ≤ r*) or 40% (r > r*)."),
        "tab_gd": Artifact("tab_gd", ("gd",), f"{P}.tables:tab_gd",
                           "Claim 9: excess risk of peft-trained LoRA on nn.Linear vs the closed-form optimum "
                           "(mean ± 95% interval over seeds); the antithetic pair mean cancels the cross term."),
        "tab1": Artifact("tab1", ("practical", "params"), f"{P}.tables:tab1",
                         "MiniLM-L6 on Rotten Tomatoes: test accuracy (%, mean ± 95% interval over seeds) and "
                         "trainable parameters."),
        "tab1_reference": Artifact("tab1_reference", (), f"{P}.tables:tab1_reference",
                                   "REFERENCE, not reproduced here: the authors' Qwen2.5 accuracies (%) hard-coded "
                                   "in their plotting code."),
    },
    figures={
        "fig1": Artifact("fig1", ("fig1",), f"{P}.plots:fig1",
                         "Excess risk vs dx/n (F1 ≈ Fig. 1(a)), Monte Carlo mean ± std; and a decaying spectrum "
                         "with crossover n*. " + _PRED + " The hybrid is off where claim "
                         "c4_hybrid_on_figure_panels measured it: near n = dx and in the decay panel (r = 4: 35% below "
                         "Monte Carlo at n = 106, 25% at n = 128, 16% at n = 154); see claims.json for every panel."),
        "fig2": Artifact("fig2", ("fig2",), f"{P}.plots:fig2",
                         "Excess risk vs true rank r* (F2), four spectra. " + _PRED + " Claim "
                         "c4_hybrid_on_figure_panels found no point here off by more than its tolerance at 100 seeds "
                         "(some points stay open)."),
        "fig3": Artifact("fig3", ("fig3",), f"{P}.plots:fig3",
                         "Excess risk vs noise σ (F3) with the best rank. " + _PRED + " The hybrid "
                         "over-predicts LoRA r = 8 and r = 16 at large σ (14-17% at σ = 80-100, beyond the 10% "
                         "tolerance for r = 8; claim c4_hybrid_on_figure_panels)."),
        "fig4": Artifact("fig4", ("fig4",), f"{P}.plots:fig4",
                         "Singular-value profiles and excess risk vs decay rate a (F4). " + _PRED + " The hybrid "
                         "over-predicts LoRA r = 16 at small a (12% at a = 0.25; claim c4_hybrid_on_figure_panels)."),
        "fig5": Artifact("fig5", ("fig5",), f"{P}.plots:fig5",
                         "Excess risk vs LoRA rank and phase diagrams log10(R_LoRA/R_FFT). " + _PRED + " Claim "
                         "c4_hybrid_on_figure_panels tests the hybrid on the rank curve."),
        "fig_gd": Artifact("fig_gd", ("gd",), f"{P}.plots:fig_gd", "peft-trained LoRA vs the closed-form optimum (claim 9)."),
        "fig6": Artifact("fig6", ("practical",), f"{P}.plots_practical:fig6",
                         "MiniLM-L6 on Rotten Tomatoes: accuracy and error vs training-set size."),
        "fig7": Artifact("fig7", ("practical", "spectrum"), f"{P}.plots_practical:fig7",
                         "Accuracy vs LoRA rank (FFT dashed) and cumulative energy of the FFT update ΔW."),
    },
    checks=f"{P}.checks:CHECKS",
))

__all__ = ["PAPER", "LoraRiskConfig", "F1_N"]
