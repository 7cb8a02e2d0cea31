"""One contract over every registered paper, at smoke scale (a new paper is covered on registration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reprosuite import pipeline
from reprosuite.claims import load_claims
from reprosuite.config import load_config
from reprosuite.registry import SCALES, discover, iter_runs, load_papers, resolve

ROOT = Path(__file__).resolve().parents[1]
PAPERS = load_papers()
IDS = sorted(PAPERS)
ID_COLUMNS = ["paper", "experiment", "shard", "seed", "scale", "status", "dataset"]


def test_first_wave_papers_are_registered():
    assert {"topology", "lora_risk", "collateral"} <= set(PAPERS)
    assert list(PAPERS) == discover()


@pytest.mark.parametrize("pid", IDS)
def test_declarations(pid):
    paper = PAPERS[pid]
    assert paper.id == pid and paper.title and "arXiv" in paper.citation
    folder = ROOT / "experiments" / pid
    for name in ("README.md", "config.yaml", "smoke.yaml", "default.yaml", "claims.yaml"):
        assert (folder / name).exists(), f"experiments/{pid}/{name} is missing"
    for scale in SCALES:
        cfg = load_config(paper, scale, root=ROOT)
        runs = list(iter_runs(paper, cfg))
        assert runs, f"{pid} has no job at scale {scale}"
        for _, shard, _ in runs:
            assert all(c.isalnum() or c in "_.=+-" for c in shard), shard
    claims = load_claims(folder / "claims.yaml")
    checks = resolve(paper.checks)
    names = set(paper.experiments) | set(paper.tables)
    for claim in claims:
        assert claim["check"] in checks, f"{pid}/{claim['id']}: no check {claim['check']!r}"
        assert set(claim["tables"]) <= names, f"{pid}/{claim['id']}: unknown tables {claim['tables']}"
    for art in (*paper.tables.values(), *paper.figures.values()):
        assert art.caption, f"{pid}/{art.name} has no caption"


@pytest.mark.parametrize("pid", IDS)
def test_declaration_import_is_cheap(pid):
    """The Snakefile imports every paper at parse time: no torch or transformers there."""
    code = (f"import sys, reprosuite.registry as r; r.get_paper({pid!r}); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("pid", IDS)
def test_smoke_contract(pid, tmp_path, monkeypatch):
    """Every job runs, records carry the id columns, figures exist, smoke claims pass."""
    monkeypatch.setenv("REPROSUITE_ROOT", str(ROOT))
    paper = PAPERS[pid]
    cfg = load_config(paper, "smoke", root=ROOT)
    results = pipeline.run_paper(paper, cfg, "smoke", tmp_path, device="cpu", threads=2)
    for name in paper.active_experiments(cfg):
        frame = pd.read_csv(tmp_path / pid / "records" / f"{name}.csv")
        assert len(frame), f"{pid}/{name} produced no record"
        missing = [c for c in ID_COLUMNS if c not in frame]
        assert not missing, f"{pid}/{name} records lack {missing}"
        assert set(frame["paper"]) == {pid} and set(frame["scale"]) == {"smoke"}
    _, figures = paper.active_artifacts(cfg)
    for name in figures:
        assert (tmp_path / pid / "figures" / f"{name}.png").stat().st_size > 5000
    assert any(r.status == "PASS" for r in results), f"{pid}: nothing is checked at smoke scale"
    failed = [f"{r.id}: measured {r.measured}, expected {r.expected} ({r.reason})" for r in results if r.status == "FAIL"]
    assert not failed, failed
