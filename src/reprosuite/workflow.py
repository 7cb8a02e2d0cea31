"""What the Snakefile needs at parse time: the validated suite config and the job plan.

Everything is checked here, before Snakemake schedules a single job: the suite config against
``config/schema.yaml`` and every selected paper's YAML overrides against its dataclasses. Errors
are one line naming the key and what is allowed (``WorkflowConfigError``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError, load_config, to_dict
from .registry import PAPER_IDS, Paper, iter_runs, load_papers


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
    if isinstance(out.get("seeds"), int | str) and out.get("seeds") is not None:
        out["seeds"] = [int(s) for s in str(out["seeds"]).split(",") if s]
    error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(schema).iter_errors(out))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "config"
        top = str(error.absolute_path[0]) if error.absolute_path else key
        sub = props.get(top, {})
        allowed = sub.get("enum") or sub.get("items", {}).get("enum")
        hint = f"; allowed: {', '.join(map(str, allowed))}" if allowed else f"; expected: {sub.get('description', error.message)}"
        raise WorkflowConfigError(f"config: {key} = {error.instance!r} is not allowed{hint}")
    return out


@dataclass
class PaperPlan:
    paper: Paper
    cfg: Any
    config_hash: str
    runs: list[tuple[str, str, int]] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)


@dataclass
class Plan:
    scale: str
    results: str
    papers: dict[str, PaperPlan]

    def records(self, pid: str, experiment: str) -> list[str]:
        return [self.run_path(pid, e, s, k) for e, s, k in self.papers[pid].runs if e == experiment]

    def run_path(self, pid: str, experiment: str, shard: str, seed: int, name: str = "records.csv") -> str:
        return f"{self.results}/{pid}/runs/{experiment}/{shard}/seed{seed}/{name}"

    def needs(self, pid: str, experiment: str, shard: str, seed: int) -> list[str]:
        plan = self.papers[pid]
        exp = plan.paper.experiment(experiment)
        return [self.run_path(pid, e, s, k) for e, s, k in exp.needs(plan.cfg, shard, int(seed))]

    def table_inputs(self, pid: str, names) -> list[str]:
        paper = self.papers[pid].paper
        return [f"{self.results}/{pid}/{'records' if n in paper.experiments else 'tables'}/{n}.csv" for n in names]

    def targets(self) -> list[str]:
        out = [f"{self.results}/summary.md"]
        for pid, plan in self.papers.items():
            out.append(f"{self.results}/{pid}/claims.json")
            out += [f"{self.results}/{pid}/tables/{t}.md" for t in plan.tables]
            out += [f"{self.results}/{pid}/figures/{f}.{ext}" for f in plan.figures for ext in ("pdf", "png")]
        return out


def make_plan(config: dict[str, Any], root: Path) -> Plan:
    """Validate the suite config and every selected paper's config; list every job."""
    config = validate_suite_config(config, root / "config" / "schema.yaml")
    registered = load_papers()
    selected = list(registered) if "all" in config["papers"] else config["papers"]
    missing = [p for p in selected if p not in registered]
    if missing:
        raise WorkflowConfigError(f"config: papers has {missing[0]!r}, which is not implemented yet; "
                                  f"implemented: {', '.join(registered)}")
    scale = config["scale"]
    results = config["results"] or ("results" if scale == "default" else f"results/{scale}")
    extra = {"seeds": list(config["seeds"])} if config.get("seeds") else None
    plans = {}
    for pid in PAPER_IDS:
        if pid not in selected:
            continue
        paper = registered[pid]
        cfg = load_config(paper, scale, root=root, extra=extra)
        digest = hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True, default=str).encode()).hexdigest()[:12]
        tables, figures = paper.active_artifacts(cfg)
        plans[pid] = PaperPlan(paper, cfg, digest, list(iter_runs(paper, cfg)), list(tables), list(figures))
    return Plan(scale=scale, results=results.rstrip("/"), papers=plans)
