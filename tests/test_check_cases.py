"""Every check of every paper is seen to PASS and to FAIL (and INCONCLUSIVE where it applies)."""

from __future__ import annotations

import importlib

import pytest

from reprosuite.claims import evaluate
from reprosuite.registry import load_papers, resolve

PAPERS = load_papers()


def _checks(pid):
    paper = PAPERS[pid]
    return resolve(paper.checks) if paper.checks else {}


def _cases(pid):
    try:
        return importlib.import_module(f"tests.check_cases.{pid}").CASES
    except ModuleNotFoundError:
        return {}


ALL = [(pid, name, verdict) for pid in PAPERS for name, cases in _cases(pid).items() for verdict in cases]


@pytest.mark.parametrize("pid", list(PAPERS))
def test_every_check_has_a_pass_and_a_fail_case(pid):
    cases = _cases(pid)
    missing = [f"{name}:{v}" for name in _checks(pid) for v in ("PASS", "FAIL") if v not in cases.get(name, {})]
    assert not missing, f"{pid}: checks without a case that must PASS and one that must FAIL: {missing}"
    unknown = sorted(set(cases) - set(_checks(pid)))
    assert not unknown, f"{pid}: cases for checks that do not exist: {unknown}"


@pytest.mark.parametrize("pid, name, verdict", ALL)
def test_check_case_gives_its_verdict(pid, name, verdict):
    tables, params = _cases(pid)[name][verdict]()
    claim = {"id": name, "statement": "case", "tables": list(tables), "check": name, "params": params,
             "scales": ["default"]}
    result = evaluate(pid, [claim], tables, _checks(pid), "default")[0]
    assert result.status == verdict, f"{pid}.{name}: expected {verdict}, got {result.status}: {result.reason}"
