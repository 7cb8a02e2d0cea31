"""Faults: kills, changed settings, divergence, unwritable or full results folders, file modes.

Uses the toy paper of conftest.py with a slower, resumable experiment (``steady_run``) whose
records depend on the settings, so a checkpoint resumed under other settings would show.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reprosuite import pipeline
from reprosuite.config import apply_overrides
from reprosuite.registry import Experiment
from reprosuite.runner import OutputError, RunContext, run_dir, run_job

from .conftest import TOY, ToyConfig

ROOT = Path(__file__).resolve().parents[1]
COMPUTED: list[str] = []  # experiments append here when they start computing


def steady_run(cfg, ctx, shard):
    """Resumable: one record per step, value = rate * k * step + per-step noise; checkpoint each step."""
    COMPUTED.append(ctx.shard)
    ctx.use_dataset("digits")
    pause = float(os.environ.get("REPROSUITE_TEST_STEP_SLEEP", "0"))
    state = ctx.load_state() or {"step": 0, "rows": []}
    yield from state["rows"]
    rows = list(state["rows"])
    for step in range(state["step"], cfg.exp.steps):
        noise = float(np.random.default_rng(ctx.seed_for(f"step{step}")).normal())
        value = float(np.float64(shard.get("lr", cfg.exp.rate)) ** step) * shard["k"] + noise
        row = {"step": step, "value": value, "rate": cfg.exp.rate, "k": shard["k"]}
        rows.append(row)
        ctx.save_state({"step": step + 1, "rows": rows, "blob": np.zeros(shard.get("blob", 0))})
        time.sleep(pause)
        yield row


STEADY = dataclasses.replace(TOY, experiments={
    "exp": Experiment("exp", run=steady_run, shards=lambda c: {"k1": {"k": 1}, "k2": {"k": 2}})})
# a sweep over learning rates where the largest blows up (lr ** step overflows to inf)
SWEEP = dataclasses.replace(TOY, experiments={
    "exp": Experiment("exp", run=steady_run, shards=lambda c: {
        "k1": {"k": 1, "lr": 0.5}, "k2": {"k": 2, "lr": 1e200}})})
BIG_STATE = dataclasses.replace(TOY, experiments={
    "exp": Experiment("exp", run=steady_run, shards=lambda c: {"k1": {"k": 1, "blob": 200_000}})})


def _cfg(steps=8, rate=0.5):
    return apply_overrides(ToyConfig(), {"exp": {"steps": steps, "rate": rate}}, where="test")


def _run(results, cfg, paper=STEADY, shard="k1"):
    return run_job(paper, cfg, experiment="exp", shard=shard, seed=0, scale="smoke", device="cpu",
                   results=results, threads=1)


def _child(results: str, steps: int, rate: float) -> None:
    """Entry point of the subprocess that gets SIGKILLed mid-run."""
    _run(Path(results), _cfg(steps, rate))


def _start_and_kill(results: Path, steps: int, rate: float, after_step: int) -> None:
    """Run the job in a subprocess and SIGKILL it once its checkpoint has ``after_step`` steps."""
    import torch

    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.test_faults import _child; "
            f"_child({str(results)!r}, {steps}, {rate})")
    env = {**os.environ, "REPROSUITE_TEST_STEP_SLEEP": "0.25", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)
    state = run_dir(results, "topology", "exp", "k1", 0) / "state.pt"
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            assert proc.poll() is None, "the job ended before it could be killed"
            if state.exists() and torch.load(state, weights_only=False)["state"]["step"] >= after_step:
                break
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint within 120 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert state.exists() and not (state.parent / "records.csv").exists()


@pytest.fixture(autouse=True)
def _reset():
    COMPUTED.clear()


# ---- checkpoints belong to their settings ------------------------------------------------------

def test_checkpoint_records_the_settings_hash(tmp_path):
    import torch

    ctx = RunContext("topology", "exp", "k1", 0, "smoke", "cpu", tmp_path, config_hash="abc123")
    ctx.save_state({"step": 2})
    blob = torch.load(ctx.dir / "state.pt", weights_only=False)
    assert blob["config_hash"] == "abc123" and blob["state"] == {"step": 2}
    assert ctx.load_state() == {"step": 2}
    other = dataclasses.replace(ctx, config_hash="def456")
    assert other.load_state() is None and not (ctx.dir / "state.pt").exists()


def test_killed_run_with_changed_setting_starts_afresh(tmp_path, capfd):
    """SIGKILL mid-run at rate 0.5, rerun at rate 0.25: every record is from 0.25."""
    _start_and_kill(tmp_path, steps=8, rate=0.5, after_step=3)
    frame = _run(tmp_path, _cfg(8, 0.25))
    assert "starting afresh" in capfd.readouterr().err
    assert list(frame["step"]) == list(range(8)) and set(frame["rate"]) == {0.25}
    folder = run_dir(tmp_path, "topology", "exp", "k1", 0)
    on_disk = pd.read_csv(folder / "records.csv")
    prov = json.loads((folder / "provenance.json").read_text())
    assert set(on_disk["rate"]) == {0.25} and prov["config"]["exp"]["rate"] == 0.25
    pd.testing.assert_frame_equal(on_disk, pd.read_csv(_fresh(tmp_path / "ref", 0.25)))


def test_killed_run_with_same_settings_resumes_identically(tmp_path, capfd):
    _start_and_kill(tmp_path, steps=8, rate=0.5, after_step=3)
    _run(tmp_path, _cfg(8, 0.5))
    assert "starting afresh" not in capfd.readouterr().err
    resumed = run_dir(tmp_path, "topology", "exp", "k1", 0) / "records.csv"
    pd.testing.assert_frame_equal(pd.read_csv(resumed), pd.read_csv(_fresh(tmp_path / "ref", 0.5)))


def _fresh(results: Path, rate: float) -> Path:
    _run(results, _cfg(8, rate))
    return run_dir(results, "topology", "exp", "k1", 0) / "records.csv"


# ---- divergence ---------------------------------------------------------------------------------

def test_diverging_run_is_recorded_and_the_sweep_completes(tmp_path, monkeypatch):
    (tmp_path / "experiments" / "topology").mkdir(parents=True)
    (tmp_path / "experiments" / "topology" / "claims.yaml").write_text(
        "- {id: c1, statement: s, tables: [tab1], check: positive, params: {threshold: -100}, scales: [smoke]}\n")
    monkeypatch.setenv("REPROSUITE_ROOT", str(tmp_path))
    with np.errstate(over="ignore"):
        results = pipeline.run_paper(SWEEP, _cfg(5), "smoke", tmp_path / "results", threads=1)
    assert len(results) == 1  # the claim was decided, not crashed
    out = tmp_path / "results" / "topology"
    records = pd.read_csv(out / "records" / "exp.csv")
    assert set(records.loc[records["shard"] == "k1", "status"]) == {"ok"}
    for seed, k2 in records[records["shard"] == "k2"].groupby("seed"):  # stops at the first inf
        assert list(k2["status"]) == ["ok"] * (len(k2) - 1) + ["diverged"], seed
    prov = json.loads((out / "runs" / "exp" / "k2" / "seed0" / "provenance.json").read_text())
    assert prov["status"] == "diverged" and "non-finite" in prov["reason"]
    assert (out / "tables" / "tab1.csv").exists() and (out / "figures" / "fig1.png").exists()


# ---- unwritable or full results folders -----------------------------------------------------------

@contextmanager
def _tmpfs(where: Path, size: str, readonly: bool = False):
    """A small tmpfs at ``where`` (root only); skips the test with the reason otherwise."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the full-disk case cannot be made otherwise)")
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _assert_one_line(err: BaseException, *words: str) -> str:
    msg = str(err)
    assert "\n" not in msg, msg
    for word in words:
        assert word in msg, msg
    return msg


@contextmanager
def _unwritable(tmp_path: Path):
    """A results folder this process cannot write: read-only tmpfs as root, mode 0555 otherwise."""
    if os.geteuid() == 0:
        with _tmpfs(tmp_path / "ro", "1m", readonly=True) as folder:
            yield folder
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)


def test_unwritable_results_folder_fails_before_computing(tmp_path):
    with _unwritable(tmp_path) as folder:
        with pytest.raises(OutputError) as info:
            _run(folder / "results", _cfg(3))
        _assert_one_line(info.value, str(folder / "results"), "not writable", "--config results=")
        assert COMPUTED == []  # checked before the experiment started
        assert _leftovers(folder) == []


def test_full_disk_before_the_run_fails_before_computing(tmp_path):
    with _tmpfs(tmp_path / "full", "256k") as folder:
        (folder / "results").mkdir()
        with open(folder / "filler", "wb") as fh:  # fill the device
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        with pytest.raises(OutputError) as info:
            _run(folder / "results", _cfg(3))
        _assert_one_line(info.value, "no space left", str(folder / "results"))
        assert COMPUTED == [] and _leftovers(folder / "results") == []


def test_full_disk_during_a_checkpoint_fails_clearly_and_leaves_nothing(tmp_path):
    """A 1.6 MB checkpoint on a 512 kB device: torch's own error becomes one clear line."""
    with _tmpfs(tmp_path / "full", "512k") as folder:
        with pytest.raises(OutputError) as info:
            _run(folder / "results", _cfg(3), paper=BIG_STATE)
        msg = _assert_one_line(info.value, "no space left", "state.pt")
        assert "inline_container" not in msg and info.value.errno == 28 and not msg.startswith("[Errno")
        assert COMPUTED == ["k1"] and _leftovers(folder / "results") == []


def test_failed_final_write_leaves_neither_records_nor_provenance(tmp_path, monkeypatch):
    """If provenance.json cannot be written, records.csv (written first) is removed too."""
    import reprosuite.runner as runner

    real = runner.atomic_write

    def failing(path, write):
        if path.name == "provenance.json":
            raise OutputError(f"cannot write {path}: no space left on the device (0 bytes free)", 28)
        real(path, write)

    monkeypatch.setattr(runner, "atomic_write", failing)
    with pytest.raises(OutputError):
        _run(tmp_path, _cfg(3))
    folder = run_dir(tmp_path, "topology", "exp", "k1", 0)
    assert not (folder / "records.csv").exists() and not (folder / "provenance.json").exists()


# ---- file modes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664)], ids=["umask022", "umask002"])
def test_outputs_follow_the_umask_not_0600(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        ctx = RunContext("topology", "exp", "k1", 0, "smoke", "cpu", tmp_path, config_hash="h")
        ctx.save_state({"step": 1})
        state_mode = stat.S_IMODE((ctx.dir / "state.pt").stat().st_mode)
        ctx.dir.joinpath("state.pt").unlink()
        _run(tmp_path, _cfg(2))
    finally:
        os.umask(old)
    folder = run_dir(tmp_path, "topology", "exp", "k1", 0)
    assert state_mode == mode
    for name in ("records.csv", "provenance.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == mode, name
    table = tmp_path / "t.csv"
    from reprosuite.runner import atomic_write

    old = os.umask(mask)
    try:
        atomic_write(table, lambda p: p.write_text("x\n"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(table.stat().st_mode) == mode
