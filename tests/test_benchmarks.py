"""benchmarks/bench_floors.py: every measurement function on a tiny size returns sane rows (seconds)."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "minilm_rows": dict(reps=1, steps=1, warmup=1, batch=4, n_layers=1),
    "unlearning_rows": dict(reps=1, n_subset=300),
    "dsgd_rows": dict(reps=1, n=4),
    "teleport_rows": dict(reps=1, n=8, k=4, n_lrs=1, n_seeds=1, rounds=10),
    "certified_rows": dict(reps=1, steps=2, ks=(1,), n_subset=300),  # k > 1 adds a 784x784 QR (seconds)
}


@pytest.fixture(scope="module")
def floors():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        yield importlib.import_module("bench_floors")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(TINY))
def test_floor_measurement_returns_positive_times_and_finite_ratios(floors, name):
    rows = getattr(floors, name)(**TINY[name])
    assert rows
    for r in rows:
        assert set(r) == {"loop", "suite_ms", "floor_ms", "ratio", "floor", "notes"}
        assert r["suite_ms"] > 0 and r["floor_ms"] > 0
        assert math.isfinite(r["ratio"]) and r["ratio"] > 0
        assert r["ratio"] == pytest.approx(r["suite_ms"] / r["floor_ms"])
    table = floors.markdown(rows, threads=1, wall_s=1.0, load=(0.0, 0.0))
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(lines) == len(rows) + 1 and all(line.count("|") == 7 for line in lines)  # header + rows, 6 cells


def _claims(tmp_path: Path, name: str, status: str, interval) -> Path:
    import json

    d = tmp_path / name / "topology"
    d.mkdir(parents=True)
    rows = [{"paper": "topology", "id": "a", "status": "PASS", "interval": [0.1, 0.2], "n_seeds": 4},
            {"paper": "topology", "id": "b", "status": status, "interval": interval, "n_seeds": 4}]
    (d / "claims.json").write_text(json.dumps(rows))
    return tmp_path / name


def test_compare_claims_flags_a_changed_status_and_a_moved_interval(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        compare = importlib.import_module("compare_claims")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    before = _claims(tmp_path, "before", "PASS", [1.0, 2.0])
    assert compare.main([str(before), str(_claims(tmp_path, "same", "PASS", [1.0, 2.0]))]) == 0
    assert "CHANGED" not in capsys.readouterr().out
    assert compare.main([str(before), str(_claims(tmp_path, "moved", "PASS", [1.9, 3.0]))]) == 0
    assert "moved" in capsys.readouterr().out
    assert compare.main([str(before), str(_claims(tmp_path, "changed", "INCONCLUSIVE", [-1.0, 2.0]))]) == 1
    out = capsys.readouterr().out
    assert "CHANGED" in out and "1 status changes" in out
