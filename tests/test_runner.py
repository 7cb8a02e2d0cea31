"""The runner: records, provenance, divergence, resume, determinism, atomic outputs."""

import json

import pandas as pd
import pytest

from reprosuite import pipeline
from reprosuite.config import apply_overrides
from reprosuite.runner import Diverged, RunContext, execute, run_dir, run_job

from .conftest import ToyConfig


def _run(toy_paper, tmp_path, cfg=None, shard="k1", seed=0):
    return run_job(toy_paper, cfg or ToyConfig(), experiment="exp", shard=shard, seed=seed,
                   scale="smoke", device="cpu", results=tmp_path, threads=1)


def test_records_and_provenance(toy_paper, tmp_path):
    frame = _run(toy_paper, tmp_path)
    folder = run_dir(tmp_path, "topology", "exp", "k1", 0)
    on_disk = pd.read_csv(folder / "records.csv")
    assert list(on_disk.columns[:5]) == ["paper", "experiment", "shard", "seed", "scale"]
    assert len(on_disk) == 3 and set(on_disk["status"]) == {"ok"} and set(on_disk["dataset"]) == {"digits"}
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["config"]["exp"]["steps"] == 3 and prov["datasets"] == {"digits": None}
    for key in ("git_sha", "versions", "device", "wall_time_s", "shard_params"):
        assert key in prov
    assert prov["versions"]["torch"]
    assert not (folder / "state.pt").exists()  # resumable state is removed once a run ends
    assert frame.attrs["status"] == "ok"


def test_same_seed_same_records_other_seed_differs(toy_paper, tmp_path):
    a = _run(toy_paper, tmp_path / "a")
    b = _run(toy_paper, tmp_path / "b")
    c = _run(toy_paper, tmp_path / "c", seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not a["value"].equals(c["value"])


def test_divergence_is_recorded_and_ends_cleanly(toy_paper, tmp_path):
    cfg = apply_overrides(ToyConfig(), {"diverge_at": 1}, where="t")
    frame = _run(toy_paper, tmp_path, cfg)
    assert list(frame["status"]) == ["ok", "diverged"]
    prov = json.loads((run_dir(tmp_path, "topology", "exp", "k1", 0) / "provenance.json").read_text())
    assert prov["status"] == "diverged"


def test_diverged_exception_is_caught(tmp_path):
    def records():
        yield {"x": 1.0}
        raise Diverged("loss exploded at step 2")

    ctx = RunContext("topology", "exp", "k1", 0, "smoke", "cpu", tmp_path)
    frame = execute(ctx, records())
    assert frame.attrs["status"] == "diverged" and "exploded" in frame.attrs["reason"]
    assert list(frame["status"]) == ["ok", "diverged"]


def test_killed_run_resumes_from_state(toy_paper, tmp_path):
    ctx = RunContext("topology", "exp", "k1", 0, "smoke", "cpu", tmp_path)
    ctx.save_state({"step": 2})  # as if a previous attempt was killed after two steps
    frame = _run(toy_paper, tmp_path)
    assert list(frame["step"]) == [2]


@pytest.mark.parametrize("kw, needle", [
    ({"shard": "k9"}, "shard = 'k9' is not allowed for topology/exp at this scale; allowed: k1, k2"),
    ({"experiment": "exq"}, "experiment = 'exq' is not allowed for paper 'topology'; allowed: exp"),
    ({"seed": -1}, "seed = -1 is not allowed; allowed: an integer >= 0"),
])
def test_unknown_shard_experiment_or_bad_seed_name_what_is_allowed(toy_paper, tmp_path, kw, needle):
    from reprosuite.config import ConfigError

    args = dict(experiment="exp", shard="k1", seed=0) | kw
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        run_job(toy_paper, ToyConfig(), scale="smoke", device="cpu", results=tmp_path, **args)
    assert not list(tmp_path.rglob("records.csv"))


def test_pipeline_end_to_end_in_process(toy_paper, tmp_path, monkeypatch):
    (tmp_path / "experiments" / "topology").mkdir(parents=True)
    (tmp_path / "experiments" / "topology" / "claims.yaml").write_text(
        "- {id: c1, statement: s, tables: [tab1], check: positive, params: {threshold: -100}, scales: [smoke]}\n")
    monkeypatch.setenv("REPROSUITE_ROOT", str(tmp_path))
    results = pipeline.run_paper(toy_paper, ToyConfig(), "smoke", tmp_path / "results")
    assert [r.status for r in results] == ["PASS"]
    out = tmp_path / "results" / "topology"
    assert (out / "records" / "exp.csv").exists() and (out / "tables" / "tab1.md").exists()
    assert (out / "figures" / "fig1.png").stat().st_size > 1000
