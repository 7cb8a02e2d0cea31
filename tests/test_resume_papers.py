"""Resume of the papers' own training: SIGKILL a Snakemake job mid-training, rerun, same records.

For one checkpointing training experiment of each paper that trains longer than a minute at
default scale (topology fig3, teleportation tab2, lora_risk practical, collateral models,
certified models), at smoke scale on the CPU in a temp copy of the workflow: ``snakemake`` is started on the records of one
job and its process group is SIGKILLed once ``state.pt`` holds a finished epoch; a second
``snakemake`` call on the same target must resume from that checkpoint and write records equal
to those of an uninterrupted run (same seed, another results folder), wall-clock columns aside.
The ``set=`` overrides shrink the data (a job takes seconds) and raise the epochs, so that at
least two epochs remain after the first checkpoint: the time in which the kill lands.

lora_risk's training is ``practical`` (MiniLM-L6 fine-tuning, above a minute per FFT or LoRA job
at default scale): one loop of AdamW steps with no epoch, so ``practical.train`` checkpoints every
``practical.checkpoint_steps`` steps (weights, optimizer, schedule, batch order, generators) and the
state's ``step`` holds the steps done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from reprosuite.workflow import make_plan

from .test_workflow import SNAKEMAKE, _copy_workflow, _snakemake

# paper: (experiment, shard, overrides, wall-clock columns of its records)
CASES = {
    "topology": ("fig3", "all",  # every (topology, α) run of the seed, stacked in one simulator
                 "fig3.n_train=1024;fig3.n_test=500;fig3.n_test_nodes=100;fig3.epochs=6", ()),
    "teleportation": ("tab2", "all",  # D-SGD and TELEPORTATION stacked: the sampler's state resumes too
                      "tab2.n_train=1024;tab2.n_test=500;tab2.n_test_nodes=100;tab2.epochs=6", ()),
    "collateral": ("models", "original", "main.n_train=1000;main.n_test=500;main.train.epochs=4",
                   ("train_wall_time_s",)),
    "certified": ("models", "mnist", "mnist.epochs=6", ("train_wall_time_s",)),  # a row's models: epochs add up
    "lora_risk": ("practical", "lora8-n32", "practical.max_steps=40;practical.checkpoint_steps=10",
                  ("model_load_s", "train_time_s", "eval_time_s", "wall_time_s")),
}


def _epoch(state: Path) -> int | None:
    """The last finished epoch saved in ``state.pt``; None while there is none (or it just went)."""
    import torch

    try:
        saved = torch.load(state, weights_only=False, map_location="cpu")["state"]
        return int(saved["epoch"] if "epoch" in saved else saved["step"])  # lora_risk counts steps
    except (FileNotFoundError, EOFError, RuntimeError):
        return None


def _watch(proc: subprocess.Popen, state: Path, kill_at: int | None = None, timeout: float = 300) -> list[int]:
    """Epochs seen in ``state`` (polled every 20 ms) while ``proc`` runs; once one reaches
    ``kill_at``, SIGKILL the process group (snakemake and the python job it started)."""
    seen: list[int] = []
    deadline = time.time() + timeout
    try:
        while proc.poll() is None and time.time() < deadline:
            epoch = _epoch(state)
            if epoch is not None and (not seen or seen[-1] != epoch):
                seen.append(epoch)
            if kill_at is not None and epoch is not None and epoch >= kill_at:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and kill_at is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return seen


def _start(work: Path, config: list[str], target: str) -> subprocess.Popen:
    """``snakemake`` on ``target`` in a new session (its process group is the one to kill)."""
    with open(work / "snakemake.out", "a") as out:  # the child keeps its own copy of the handle
        return subprocess.Popen([*SNAKEMAKE, "--cores", "1", "--rerun-incomplete", "--config", *config, "--", target],
                                cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
@pytest.mark.parametrize("pid", sorted(CASES))
def test_killed_training_job_resumes_to_the_uninterrupted_records(pid, tmp_path):
    experiment, shard, sets, wall_clock = CASES[pid]
    work = _copy_workflow(tmp_path)
    config = ["scale=smoke", f"papers={pid}", "device=cpu", f"set={sets}"]
    plan = make_plan({"scale": "smoke", "papers": [pid], "set": sets}, work)
    seed = next(k for e, s, k in plan.papers[pid].runs if (e, s) == (experiment, shard))
    target = plan.run_path(pid, experiment, shard, seed)
    folder = work / Path(target).parent
    state, records = folder / "state.pt", work / target

    # 1. killed once the first epoch is checkpointed: the checkpoint stays, no records
    proc = _start(work, config, target)
    seen = _watch(proc, state, kill_at=1)
    log = (work / "snakemake.out").read_text()
    assert seen, f"{pid}: no checkpoint before the job ended\n{log[-3000:]}"
    time.sleep(1.0)  # a job that survived the kill would go on writing
    killed_at = _epoch(state)
    assert killed_at is not None and not records.exists(), f"{pid}: killed too late (epoch {killed_at})"

    # 2. what README (troubleshooting) tells a user: `snakemake --unlock` (the kill left the lock),
    # then the same call with --rerun-incomplete. It resumes: the first checkpoint it writes is the
    # epoch after the saved one (a run that started afresh would write epoch 1 again; runner.py
    # prints nothing on resume), and the job log does not say "starting afresh"
    unlock = _snakemake("--unlock", "--config", *config, cwd=work, timeout=120)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    proc = _start(work, config, target)
    resumed = _watch(proc, state)
    log = (work / "snakemake.out").read_text()
    assert proc.returncode == 0, f"{pid}: the rerun failed\n{log[-3000:]}"
    job_log = (work / plan.results / "logs" / pid / experiment / shard / f"seed{seed}.log").read_text()
    assert "starting afresh" not in job_log, job_log[-2000:]
    assert resumed[0] == killed_at, resumed  # the saved checkpoint, still there when the rerun began
    assert resumed[1:] and min(resumed[1:]) > killed_at, f"{pid}: epochs {resumed} rewritten after {killed_at}"
    assert records.exists() and not state.exists()

    # 3. an uninterrupted run of the same job in another results folder: the same records
    ref = make_plan({"scale": "smoke", "papers": [pid], "set": sets, "results": "ref"}, work)
    reference = ref.run_path(pid, experiment, shard, seed)
    done = _snakemake("--cores", "1", "--config", *config, "results=ref", "--", reference, cwd=work, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got, want = (pd.read_csv(p).drop(columns=list(wall_clock)) for p in (records, work / reference))
    pd.testing.assert_frame_equal(got, want)
