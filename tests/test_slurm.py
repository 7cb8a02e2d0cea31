"""The Slurm profile on a real Slurm: the smoke DAG of one paper through `--profile profiles/slurm`.

Opt-in (it needs a running Slurm and takes minutes): `bash scripts/slurm.sh up`, then
`REPROSUITE_SLURM=1 pytest -m slurm tests/test_slurm.py`, then `bash scripts/slurm.sh down`.
`.ci/run` does all three. Without REPROSUITE_SLURM=1 the test is skipped, even when selected.

Checks: the cluster run gives the same outputs, records and claim verdicts as a local run of
the paper (`python -m reprosuite local`, one process); a job made to fail (its run folder is a
read-only tmpfs, so the job stops on the node before computing) is reported as FAILED by Slurm while the
other jobs finish (the profile keeps going); the rerun submits only that job.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAPER = "topology"  # the quickest smoke paper: six run jobs
BROKEN = ("fig1", "all", 0)  # (experiment, shard, seed) of the job made to fail

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(os.environ.get("REPROSUITE_SLURM") != "1",
                       reason="needs a Slurm cluster: `bash scripts/slurm.sh up`, then REPROSUITE_SLURM=1"),
]


def _snakemake(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("snakemake")
    # timeout -k: the executor ignores SIGTERM while it polls Slurm
    cmd = ["timeout", "-k", "10", str(timeout), str(exe), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def _config(results: Path) -> list[str]:
    return ["--config", "scale=smoke", f"papers={PAPER}", f"results={results}"]


def _outputs(results: Path) -> set[str]:
    skip = ("logs/", ".snakemake")
    return {str(p.relative_to(results)) for p in results.rglob("*")
            if p.is_file() and not str(p.relative_to(results)).startswith(skip)}


def _claims(results: Path) -> dict[str, str]:
    return {c["id"]: c["status"] for c in json.loads((results / PAPER / "claims.json").read_text())}


def _submitted(log: str) -> list[str]:
    return re.findall(r"rule_run/([^/]+)/\d+\.log", "\n".join(
        line for line in log.splitlines() if "submitted with SLURM jobid" in line))


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("local") / "results"
    done = subprocess.run([sys.executable, "-m", "reprosuite", "local", PAPER, "--scale", "smoke",
                           "--results", str(results)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return results


def _mount_readonly(folder: Path) -> None:
    folder.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("making one job fail needs root (a read-only tmpfs as its run folder)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], check=True)


def test_smoke_dag_on_slurm_matches_local_and_reruns_only_the_failed_job(local_run, tmp_path):
    assert shutil.which("sbatch") and subprocess.run(["sinfo"], capture_output=True).returncode == 0, \
        "no Slurm answers: run `bash scripts/slurm.sh up` first"
    results = tmp_path / "results"
    experiment, shard, seed = BROKEN
    blocked = results / PAPER / "runs" / experiment / shard / f"seed{seed}"
    _mount_readonly(blocked)  # the job cannot write its records: it exits 1 on the node
    try:
        first = _snakemake("--profile", "profiles/slurm", "--retries", "0", *_config(results))
    finally:
        subprocess.run(["umount", "-l", str(blocked)], check=False)
    log = first.stdout + first.stderr
    assert first.returncode != 0, log[-3000:]
    assert "SLURM status is: 'FAILED'" in log, log[-3000:]
    failed_job = f"{PAPER}_{experiment}_{shard}_{seed}"
    from reprosuite.workflow import make_plan

    n_runs = len(make_plan({"scale": "smoke", "papers": [PAPER]}, ROOT).papers[PAPER].runs)  # every run job goes to Slurm
    assert failed_job in _submitted(log) and len(_submitted(log)) == n_runs, _submitted(log)
    slurm_logs = sorted((ROOT / ".snakemake" / "slurm_logs" / "rule_run" / failed_job).glob("*.log"),
                        key=lambda p: p.stat().st_mtime)
    assert slurm_logs and "Read-only file system" in slurm_logs[-1].read_text()  # the node's reason
    records = sorted(str(p.relative_to(results / PAPER / "runs")) for p in (results / PAPER / "runs").rglob("records.csv"))
    assert len(records) == n_runs - 1 and f"{experiment}/{shard}/seed{seed}/records.csv" not in records

    second = _snakemake("--profile", "profiles/slurm", *_config(results))
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-3000:]
    assert _submitted(log) == [failed_job], _submitted(log)  # the rest is local (localrules) or done

    assert _outputs(local_run) <= _outputs(results), _outputs(local_run) - _outputs(results)
    assert (results / "summary.md").exists()
    assert _claims(results) == _claims(local_run)
    for path in sorted((local_run / PAPER / "runs").rglob("records.csv")):
        mine = results / path.relative_to(local_run)
        pd.testing.assert_frame_equal(pd.read_csv(mine), pd.read_csv(path), obj=str(mine.relative_to(results)))


def test_gpu_jobs_go_to_the_gpu_partition_cpu_jobs_elsewhere(tmp_path):
    """The README's recipe: --slurm-partition-config places jobs by their `gpu` resource."""
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: "cpu.txt", "gpu.txt"\n\n'
        'rule cpu_step:\n    output: "cpu.txt"\n    resources: mem_mb=100, runtime=2\n'
        '    shell: "echo partition=$SLURM_JOB_PARTITION > {output}"\n\n'
        'rule gpu_step:\n    output: "gpu.txt"\n    resources: mem_mb=100, runtime=2, gpu=1\n'
        '    shell: "echo partition=$SLURM_JOB_PARTITION gpus=$CUDA_VISIBLE_DEVICES > {output}"\n')
    # the test cluster's two partitions (scripts/slurm.sh), described as in profiles/slurm/partitions.yaml
    (tmp_path / "partitions.yaml").write_text(
        "partitions:\n  debug: {max_runtime: 60, max_gpu: 0}\n  gpu: {max_runtime: 60, max_gpu: 2}\n")
    done = _snakemake("--profile", str(ROOT / "profiles" / "slurm"), "--directory", str(tmp_path),
                      "--snakefile", str(tmp_path / "Snakefile"),
                      "--slurm-partition-config", str(tmp_path / "partitions.yaml"), timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert (tmp_path / "cpu.txt").read_text().split() == ["partition=debug"]
    assert (tmp_path / "gpu.txt").read_text().split() == ["partition=gpu", "gpus=0"]
