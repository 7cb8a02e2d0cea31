"""The paper registry: what each paper declares, and the dict that holds them.

A paper is a declaration (``Paper``) plus pure functions. The runner, the workflow and the
contract test read only this module's types; they never branch on a paper id.

Callables may be given as ``"module:attribute"`` strings so that declaring a paper stays cheap
(the Snakefile imports every declaration at parse time; torch and transformers are imported
only when a job actually runs the function).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PAPER_IDS = ("topology", "teleportation", "lora_risk", "collateral", "certified")
SCALES = ("smoke", "default", "paper")

Ref = str | Callable[..., Any] | Mapping[str, Any]


def resolve(ref: Ref) -> Callable[..., Any]:
    """Turn a ``"package.module:attr"`` reference into the object it names."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    if not attr:
        raise ValueError(f"reference {ref!r} must look like 'package.module:attribute'")
    return getattr(importlib.import_module(module), attr)


def single_seed(cfg: Any) -> tuple[int, ...]:
    """Seeds of an experiment that runs once: deterministic, internally batched over seeds,
    or a shared model/reference that every seed of another experiment loads."""
    return (0,)


def _one_shard(cfg: Any) -> dict[str, dict]:
    return {"all": {}}


def _config_seeds(cfg: Any) -> Sequence[int]:
    return tuple(cfg.seeds)


def _no_needs(cfg: Any, shard: str, seed: int) -> list[tuple[str, str, int]]:
    return []


@dataclass(frozen=True)
class Experiment:
    """One experiment: a pure function ``run(cfg, ctx, shard_params) -> Iterable[record]``.

    - ``shards(cfg)`` maps a file-system-safe shard id to its grid parameters; one Snakemake job
      runs per (shard, seed). An empty mapping disables the experiment at that scale.
    - ``seeds(cfg)`` lists the seeds (default: ``cfg.seeds``).
    - ``needs(cfg, shard, seed)`` lists the (experiment, shard, seed) runs whose saved
      artifacts this run loads through ``ctx.load_artifact`` (shared models trained once).
    - ``resources(cfg)`` gives mem_mb, runtime (minutes) and gpu for the cluster profile.
    """

    name: str
    run: Ref
    shards: Callable[[Any], Mapping[str, Mapping[str, Any]]] = _one_shard
    seeds: Callable[[Any], Sequence[int]] = _config_seeds
    needs: Callable[[Any, str, int], list[tuple[str, str, int]]] = _no_needs
    resources: Callable[[Any], Mapping[str, int]] = lambda cfg: {}
    description: str = ""


@dataclass(frozen=True)
class Artifact:
    """A figure or a table numbered as in the paper (``fig3``, ``tab1``).

    ``make(tables, cfg)`` receives a dict of DataFrames keyed by the names in ``inputs``
    (experiment names for aggregated records, or names of other tables) and returns a
    matplotlib Figure (for figures) or a DataFrame (for tables). It never opens files.
    """

    name: str
    inputs: tuple[str, ...]
    make: Ref
    caption: str


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    citation: str
    config: type
    experiments: Mapping[str, Experiment]
    tables: Mapping[str, Artifact] = field(default_factory=dict)
    figures: Mapping[str, Artifact] = field(default_factory=dict)
    checks: Ref = ""  # "module:CHECKS", a dict check-name -> function(tables, **params)

    def __post_init__(self) -> None:
        clash = set(self.experiments) & set(self.tables)
        if clash:
            raise ValueError(f"paper {self.id!r}: {sorted(clash)} name both an experiment and a table")
        for key, exp in self.experiments.items():
            if key != exp.name:
                raise ValueError(f"paper {self.id!r}: experiment registered as {key!r} is named {exp.name!r}")
        known = set(self.experiments) | set(self.tables)
        for art in (*self.tables.values(), *self.figures.values()):
            missing = set(art.inputs) - known
            if missing:
                raise ValueError(f"paper {self.id!r}: {art.name} reads unknown inputs {sorted(missing)}")

    def experiment(self, name: str) -> Experiment:
        try:
            return self.experiments[name]
        except KeyError:
            known = ", ".join(sorted(self.experiments))
            raise KeyError(f"paper {self.id!r} has no experiment {name!r}; known: {known}") from None

    def active_experiments(self, cfg: Any) -> dict[str, Experiment]:
        return {n: e for n, e in self.experiments.items() if e.shards(cfg)}

    def active_artifacts(self, cfg: Any) -> tuple[dict[str, Artifact], dict[str, Artifact]]:
        """(tables, figures) whose inputs all exist at this config's scale.

        Tables are resolved in declaration order, so a table may feed a later table or a figure.
        """
        available = set(self.active_experiments(cfg))
        tables: dict[str, Artifact] = {}
        for art in self.tables.values():
            if set(art.inputs) <= available:
                tables[art.name] = art
                available.add(art.name)
        figures = {n: a for n, a in self.figures.items() if set(a.inputs) <= available}
        return tables, figures


PAPERS: dict[str, Paper] = {}
_PAPER_MODULES = {pid: f"reprosuite.papers.{pid}" for pid in PAPER_IDS}


def register(paper: Paper) -> Paper:
    if paper.id not in PAPER_IDS:
        raise ValueError(f"unknown paper id {paper.id!r}; allowed: {', '.join(PAPER_IDS)}")
    PAPERS[paper.id] = paper
    return paper


def load_papers() -> dict[str, Paper]:
    """Import every paper package that exists; each registers itself on import."""
    for pid, module in _PAPER_MODULES.items():
        if pid in PAPERS:
            continue
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # a real import error inside the paper: surface it
                raise
    return PAPERS


def get_paper(pid: str) -> Paper:
    papers = load_papers()
    try:
        return papers[pid]
    except KeyError:
        raise KeyError(f"unknown paper {pid!r}; registered: {', '.join(sorted(papers))}") from None


def iter_runs(paper: Paper, cfg: Any) -> Iterable[tuple[str, str, int]]:
    """Every (experiment, shard, seed) job of a paper at the config's scale."""
    for name, exp in paper.active_experiments(cfg).items():
        for shard in exp.shards(cfg):
            for seed in exp.seeds(cfg):
                yield name, shard, int(seed)
