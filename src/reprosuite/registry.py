"""The paper registry: what each paper declares, and the dict that holds them.

A paper is a declaration (``Paper``) plus pure functions. The runner, the workflow and the
contract test read only this module's types; they never branch on a paper id.

Callables may be given as ``"module:attribute"`` strings so that declaring a paper stays cheap
(the Snakefile imports every declaration at parse time; torch and transformers are imported
only when a job actually runs the function).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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


def param_needs(shards: Callable[[Any], Mapping[str, Mapping[str, Any]]],
                fn: Callable[[Any, Mapping[str, Any], int], Iterable[tuple[str, str, int]]],
                ) -> Callable[[Any, str, int], list[tuple[str, str, int]]]:
    """An ``Experiment.needs`` from ``fn(cfg, params, seed)``, where ``params`` are the consumer's own
    declared shard parameters (``shards(cfg)[shard]``): producers are addressed by parameters,
    never by parsing a shard id back."""

    def needs(cfg: Any, shard: str, seed: int) -> list[tuple[str, str, int]]:
        return list(fn(cfg, shards(cfg)[shard], int(seed)))

    return needs


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
    # config sections this experiment reads (its jobs re-run when they change); None: the section
    # named like the experiment if there is one, else every section. Top-level scalars (seeds, ...)
    # always count, and so do the settings of the experiments it ``needs``.
    settings: tuple[str, ...] | None = None
    # False where the jobs ignore the top-level ``seeds`` (their seeds come from a section, e.g. the
    # unlearning bank's model seeds): adding an experiment seed then leaves these jobs alone
    reads_seeds: bool = True


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
            from .config import ConfigError

            known = ", ".join(self.experiments)
            raise ConfigError(f"experiment = {name!r} is not allowed for paper {self.id!r}; allowed: {known}") from None

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
PAPER_PACKAGE = "reprosuite.papers"
# The order papers are listed in (summary, README); papers not named here follow alphabetically.
PREFERRED_ORDER = ("topology", "teleportation", "lora_risk", "collateral", "certified")
_ID = re.compile(r"[a-z][a-z0-9_]*")


def register(paper: Paper) -> Paper:
    """Called by a paper package on import: ``register(Paper(id=<its folder name>, ...))``."""
    if not _ID.fullmatch(paper.id):
        raise ValueError(f"paper id {paper.id!r} must be lower-case letters, digits and _ (its folder name)")
    PAPERS[paper.id] = paper
    return paper


def discover() -> list[str]:
    """The paper packages under ``reprosuite/papers/``: each folder is one paper, named by its id."""
    package = importlib.import_module(PAPER_PACKAGE)
    found = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg and not m.name.startswith("_"))
    return [p for p in PREFERRED_ORDER if p in found] + [p for p in found if p not in PREFERRED_ORDER]


def load_papers() -> dict[str, Paper]:
    """Import every paper package found; each registers itself on import. Ordered as ``discover``."""
    order = discover()
    for pid in order:
        if pid not in PAPERS:
            importlib.import_module(f"{PAPER_PACKAGE}.{pid}")
            if pid not in PAPERS:
                raise ValueError(f"{PAPER_PACKAGE}.{pid} does not register a paper with id {pid!r}")
    return {pid: PAPERS[pid] for pid in order}


def get_paper(pid: str) -> Paper:
    """One paper, importing only its own package (a run job pays for one paper's imports)."""
    if pid not in PAPERS and pid in discover():
        importlib.import_module(f"{PAPER_PACKAGE}.{pid}")
    if pid in PAPERS:
        return PAPERS[pid]
    from .config import ConfigError

    raise ConfigError(f"paper = {pid!r} is not allowed; allowed: {', '.join(load_papers())}") from None


def iter_runs(paper: Paper, cfg: Any) -> Iterable[tuple[str, str, int]]:
    """Every (experiment, shard, seed) job of a paper at the config's scale."""
    for name, exp in paper.active_experiments(cfg).items():
        for shard in exp.shards(cfg):
            for seed in exp.seeds(cfg):
                yield name, shard, int(seed)
