"""The Snakemake workflow: dry runs, input validation before any job, lint, the smoke DAG."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reprosuite.registry import load_papers
from reprosuite.workflow import make_plan

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "workflows", "config", "experiments"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def _snakemake(*args, cwd=ROOT, timeout=600):
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _last_line(proc) -> str:
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    return next(ln for ln in reversed(lines) if ln.startswith("reprosuite:"))


def test_dry_run_lists_every_expected_output(tmp_path):
    results = tmp_path / "res"
    proc = _snakemake("-n", "--config", "scale=smoke", f"results={results}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    plan = make_plan({"scale": "smoke", "results": str(results)}, ROOT)
    assert plan.papers, "no paper is registered"
    for target in plan.targets():
        assert target in proc.stdout, f"dry run does not list {target}"
    for pid, paper_plan in plan.papers.items():
        assert f"{results}/{pid}/figures/" in proc.stdout or not paper_plan.figures


@pytest.mark.parametrize("arg, needle", [
    ("scale=bogus", "config: scale = 'bogus' is not allowed; allowed: smoke, default, paper"),
    ("device=tpu", "config: device = 'tpu' is not allowed; allowed: auto, cpu, cuda"),
    ("papers=nonsense", "config: papers = 'nonsense' is not allowed; allowed: all, topology"),
    ("sclae=smoke", "config: unknown key 'sclae'; allowed: scale, device"),
])
def test_bad_suite_config_stops_in_one_line(arg, needle, tmp_path):
    proc = _snakemake("-n", "--config", arg, cwd=_copy_workflow(tmp_path))
    assert proc.returncode != 0
    assert needle in _last_line(proc)
    assert "Job stats" not in proc.stdout


@pytest.mark.parametrize("pid", sorted(load_papers()))
def test_unknown_key_in_paper_yaml_stops_before_any_job(pid, tmp_path):
    work = _copy_workflow(tmp_path)
    default = work / "experiments" / pid / "default.yaml"
    default.write_text(default.read_text() + "\nnot_a_setting: 1\n")
    proc = _snakemake("-n", cwd=work)
    assert proc.returncode != 0
    line = _last_line(proc)
    assert f"experiments/{pid}/default.yaml: unknown key 'not_a_setting'; allowed:" in line


def test_lint_is_clean_apart_from_the_conda_lint():
    """`snakemake --lint` exits 1 on any lint; the only accepted one asks for a conda env (pip-only suite)."""
    proc = _snakemake("--lint")
    text = proc.stdout + proc.stderr
    messages = [ln.strip() for ln in text.splitlines() if ln.lstrip().startswith("* ")]
    assert "Lints for rule" in text or proc.returncode == 0
    unexpected = [m for m in messages if "conda environment or container" not in m]
    assert not unexpected, unexpected


@pytest.mark.slow
def test_smoke_dag_end_to_end(tmp_path):
    """The whole DAG at smoke scale in a temp copy: summary.md exists and every smoke claim passes."""
    work = _copy_workflow(tmp_path)
    proc = _snakemake("--cores", "2", "--config", "scale=smoke", cwd=work, timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    results = work / "results" / "smoke"
    summary = (results / "summary.md").read_text()
    assert "claims" in summary
    plan = make_plan({"scale": "smoke"}, work)
    for target in plan.targets():
        assert (work / target).exists(), target
    for pid in plan.papers:
        claims = json.loads((results / pid / "claims.json").read_text())
        gating = [c for c in claims if c["status"] in ("PASS", "FAIL")]
        assert gating, f"{pid}: no claim is checked at smoke scale"
        failed = [f"{c['id']}: {c['measured']} ({c['reason']})" for c in claims if c["status"] == "FAIL"]
        assert not failed, f"{pid} smoke claims failed: {failed}"
    # nothing left to do: a second invocation schedules no job
    again = _snakemake("-n", "--config", "scale=smoke", cwd=work)
    assert "Nothing to be done" in again.stdout + again.stderr
    # the report holds every figure with its caption
    report = _snakemake("--report", "report.html", "--config", "scale=smoke", cwd=work)
    assert report.returncode == 0, report.stderr[-2000:]
    html = (work / "report.html").read_text(errors="ignore")
    for pid, paper_plan in plan.papers.items():
        for name in paper_plan.figures:
            assert f"{name}.png" in html, f"{pid}/{name} is not in the report"


def _copy_project(dest: Path) -> Path:
    _copy_workflow(dest)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_a_paper_is_a_folder_under_papers_and_one_under_experiments(tmp_path):
    """Adding a paper needs no edit to generic code: discovery, schema, plan, DAG."""
    work = _copy_project(tmp_path)
    shutil.copytree(ROOT / "tests" / "toy_paper", work / "src" / "reprosuite" / "papers" / "toy_paper")
    exp = work / "experiments" / "toy_paper"
    exp.mkdir()
    (exp / "smoke.yaml").write_text("sweep: {steps: 3}\n")
    (exp / "claims.yaml").write_text(
        "- {id: rises, statement: the value rises, tables: [tab1], check: increasing, scales: [smoke]}\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(work / "src")}
    proc = subprocess.run([*SNAKEMAKE, "--cores", "1", "--config", "scale=smoke", "papers=toy_paper"],
                          cwd=work, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    claims = json.loads((work / "results" / "smoke" / "toy_paper" / "claims.json").read_text())
    assert [c["status"] for c in claims] == ["PASS"]
    bad = subprocess.run([*SNAKEMAKE, "-n", "--config", "papers=toy_papr"], cwd=work, capture_output=True,
                         text=True, timeout=300, env=env)
    assert "papers = 'toy_papr' is not allowed; allowed: all," in bad.stderr + bad.stdout
    assert "toy_paper" in _last_line(bad)


def _scheduled(proc) -> dict[str, int]:
    """Job counts per rule from a dry run's job-stats table."""
    counts, on = {}, False
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            on = True
            continue
        if on and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
        elif on and parts and parts[0] == "total":
            break
    return counts


@pytest.mark.slow
def test_seeds_override_reaches_every_step_and_edits_rerun_only_their_experiment(tmp_path):
    """`--config seeds=3` flows through the CLI steps into records, aggregates and provenance; then
    editing one fig3 setting schedules only fig3's jobs and what depends on them."""
    work = _copy_workflow(tmp_path)
    proc = _snakemake("--cores", "2", "--config", "scale=smoke", "seeds=3", "papers=topology", cwd=work, timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    results = work / "results" / "smoke" / "topology"
    assert json.loads((results / "config.json").read_text())["config"]["seeds"] == [3]
    plan = make_plan({"scale": "smoke", "seeds": [3], "papers": ["topology"]}, work).papers["topology"]
    assert any(seed == 3 for _, _, seed in plan.runs)
    runs = sorted(results.glob("runs/*/*/seed*/provenance.json"))
    assert [(p.parts[-4], p.parts[-3], int(p.parts[-2][4:])) for p in runs] == sorted(plan.runs)
    import pandas as pd

    for prov in runs:  # run-once experiments keep their single seed; the config they read says 3
        meta = json.loads(prov.read_text())
        assert meta["config"]["seeds"] == [3] and meta["seed"] == int(prov.parts[-2][4:])
    from reprosuite.papers.topology import fig2_seeds

    # fig2 runs its seed axis inside one job (seed 0): its rows carry the seeds it ran, from seeds=3
    inner = {"fig2": set(fig2_seeds(plan.cfg))}
    assert inner["fig2"] == {3}
    for records in (results / "records").glob("*.csv"):
        planned = inner.get(records.stem, {seed for e, _, seed in plan.runs if e == records.stem})
        assert set(pd.read_csv(records)["seed"]) == planned, records.name
    smoke = work / "experiments" / "topology" / "smoke.yaml"
    text = smoke.read_text()
    assert "  lr_min: 0.0\n" in text.split("fig3:")[1]
    smoke.write_text(text.split("fig3:")[0] + "fig3:" + text.split("fig3:")[1].replace("  lr_min: 0.0\n", "  lr_min: 1.0e-5\n", 1))
    dry = _snakemake("-n", "--config", "scale=smoke", "seeds=3", "papers=topology", cwd=work)
    counts = _scheduled(dry)
    fig3_runs = len(list((results / "runs" / "fig3").glob("*/seed3")))
    assert counts.get("run") == fig3_runs, counts
    assert counts.get("report_topology") == 1, counts
