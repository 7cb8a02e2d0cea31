"""What the Snakefile needs at parse time: the validated suite config and the job plan.

Everything is checked here, before Snakemake schedules a single job: the suite config against
``config/schema.yaml`` and every selected paper's YAML overrides against its dataclasses. Errors
are one line naming the key and what is allowed (``WorkflowConfigError``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import (
    ConfigError,
    parse_seeds,
    parse_sets,
    resolve_config,
    set_targets_someone,
    to_dict,
    write_resolved,
)
from .registry import Paper, _config_seeds, iter_runs, load_papers


class WorkflowConfigError(ConfigError):
    pass


def validate_suite_config(config: dict[str, Any], schema_path: Path) -> dict[str, Any]:
    """Fill defaults from the JSON schema and validate; raise a one-line error on the first problem."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    props = schema["properties"]
    unknown = sorted(set(config) - set(props))
    if unknown:
        raise WorkflowConfigError(f"config: unknown key '{unknown[0]}'; allowed: {', '.join(props)}")
    out = {k: v.get("default") for k, v in props.items()}
    out.update(config)
    if isinstance(out.get("papers"), str):  # --config papers=topology,lora_risk
        out["papers"] = [p for p in out["papers"].replace(" ", ",").split(",") if p]
    out["seeds"] = parse_seeds(out.get("seeds"))  # seeds=3, seeds=1,2, seeds=[1,2]
    error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(schema).iter_errors(out))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "config"
        top = str(error.absolute_path[0]) if error.absolute_path else key
        sub = props.get(top, {})
        allowed = sub.get("enum") or sub.get("items", {}).get("enum")
        hint = f"; allowed: {', '.join(map(str, allowed))}" if allowed else f"; expected: {sub.get('description', error.message)}"
        raise WorkflowConfigError(f"config: {key} = {error.instance!r} is not allowed{hint}")
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def experiment_settings(paper: Paper, cfg: Any, name: str) -> dict[str, Any]:
    """The settings an experiment's jobs depend on: the sections it reads (``Experiment.settings``;
    by default the section named like the experiment, or every section if there is none) plus the
    top-level keys, except ``seeds`` where the seeds are the jobs' own axis (adding a seed adds
    jobs and leaves the others alone) or the jobs do not read them (``Experiment.reads_seeds``)."""
    flat = to_dict(cfg)
    sections = {f.name for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, f.name))}
    exp = paper.experiment(name)
    reads = set(exp.settings) if exp.settings is not None else ({name} if name in sections else sections)
    unknown = reads - sections
    if unknown:
        raise ValueError(f"paper {paper.id!r}: experiment {name!r} reads unknown sections {sorted(unknown)}")
    skip_seeds = exp.seeds is _config_seeds or not exp.reads_seeds
    return {k: v for k, v in flat.items() if (k in reads if k in sections else not (skip_seeds and k == "seeds"))}


def experiment_hashes(paper: Paper, cfg: Any, runs: list[tuple[str, str, int]]) -> dict[str, str]:
    """One hash per experiment over its own settings and those of the experiments it needs, so an
    edit re-runs only the jobs it concerns (and what depends on them)."""
    needs: dict[str, set[str]] = {e: set() for e, _, _ in runs}
    for e, shard, seed in runs:
        needs[e] |= {n for n, _, _ in paper.experiment(e).needs(cfg, shard, seed)}

    def closure(e: str, seen: frozenset = frozenset()) -> set[str]:
        out = {e}
        for n in needs.get(e, ()):
            if n not in seen:
                out |= closure(n, seen | {e})
        return out

    return {e: _digest({n: experiment_settings(paper, cfg, n) for n in sorted(closure(e))}) for e in needs}


@dataclass
class PaperPlan:
    paper: Paper
    cfg: Any
    config_hash: str
    config_path: str = ""
    runs: list[tuple[str, str, int]] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)

    def experiment_hash(self, name: str) -> str:
        return self.hashes.get(name, self.config_hash)


@dataclass
class Plan:
    scale: str
    results: str
    papers: dict[str, PaperPlan]

    def run_path(self, pid: str, experiment: str, shard: str, seed: int, name: str = "records.csv") -> str:
        return f"{self.results}/{pid}/runs/{experiment}/{shard}/seed{seed}/{name}"

    def needs(self, pid: str, experiment: str, shard: str, seed: int) -> list[str]:
        plan = self.papers[pid]
        exp = plan.paper.experiment(experiment)
        return [self.run_path(pid, e, s, k) for e, s, k in exp.needs(plan.cfg, shard, int(seed))]

    def report_inputs(self, pid: str) -> list[str]:
        """Every run's records of a paper (what its one report job reads)."""
        return [self.run_path(pid, e, s, k) for e, s, k in self.papers[pid].runs]

    def report_outputs(self, pid: str) -> dict[str, list[str]]:
        """What a paper's report job writes: aggregated records, tables, figures, claims."""
        plan, base = self.papers[pid], f"{self.results}/{pid}"
        return {
            "records": [f"{base}/records/{e}.csv" for e in plan.paper.active_experiments(plan.cfg)],
            "tables": [f"{base}/tables/{t}.{ext}" for t in plan.tables for ext in ("csv", "md")],
            "figures": [f"{base}/figures/{f}.{ext}" for f in plan.figures for ext in ("pdf", "caption.rst")],
            "pngs": [f"{base}/figures/{f}.png" for f in plan.figures],
            "claims": [f"{base}/claims.json"],
        }

    def targets(self) -> list[str]:
        out = [f"{self.results}/summary.md"]
        for pid, plan in self.papers.items():
            out.append(f"{self.results}/{pid}/claims.json")
            out += [f"{self.results}/{pid}/tables/{t}.md" for t in plan.tables]
            out += [f"{self.results}/{pid}/figures/{f}.{ext}" for f in plan.figures for ext in ("pdf", "png")]
        return out


def default_results(scale: str) -> str:
    """Where a scale writes unless told otherwise: results/ (default) or results/<scale>/."""
    return "results" if scale == "default" else f"results/{scale}"


def make_plan(config: dict[str, Any], root: Path, *, write: bool = False) -> Plan:
    """Validate the suite config and every selected paper's config; list every job.

    With ``write`` the resolved config of each paper goes to ``<results>/<paper>/config.json``
    (rewritten only when it changed), which every step then reads.
    """
    config = validate_suite_config(config, root / "config" / "schema.yaml")
    registered = load_papers()
    selected = list(registered) if "all" in config["papers"] else list(dict.fromkeys(config["papers"]))
    for pid in selected:
        if pid not in registered:
            raise WorkflowConfigError(f"config: papers = {pid!r} is not allowed; allowed: all, {', '.join(registered)}")
    if not selected:
        raise WorkflowConfigError(f"config: papers = [] is not allowed; allowed: all, {', '.join(registered)}")
    scale = config["scale"]
    results = (config["results"] or default_results(scale)).rstrip("/")
    if config.get("data_dir") and not Path(config["data_dir"]).is_dir():
        raise WorkflowConfigError(f"config: data_dir = {config['data_dir']!r} is not allowed; allowed: an existing "
                                  f"folder holding the paper-scale data sets (python -m reprosuite fetch DATASET "
                                  f"--data-dir DIR fills one)")
    sets = parse_sets(config.get("set"))
    options = {"scale": scale, "seeds": config.get("seeds"), "set": config.get("set")}
    plans = {}
    for pid in (p for p in registered if p in selected):
        paper = registered[pid]
        cfg = resolve_config(paper, scale, seeds=config.get("seeds"), sets=sets, root=root)
        tables, figures = paper.active_artifacts(cfg)
        runs = list(iter_runs(paper, cfg))
        path = f"{results}/{pid}/config.json"
        plans[pid] = PaperPlan(paper, cfg, _digest(to_dict(cfg)), path, runs, list(tables), list(figures),
                               experiment_hashes(paper, cfg, runs))
    set_targets_someone(sets, {pid: p.cfg for pid, p in plans.items()})
    if write:
        from .runner import OutputError, check_writable

        try:
            check_writable(Path(results))
        except OutputError as err:
            raise WorkflowConfigError(f"config: results = {results!r} is not allowed: {err}") from None
        for pid, plan in plans.items():
            write_resolved(Path(plan.config_path), pid, scale, plan.cfg, options)  # relative to the workdir
    return Plan(scale=scale, results=results, papers=plans)
