"""The claims engine: SKIP outside a claim's scales, FAIL on a broken check, REPORT when report-only."""

import pandas as pd
import pytest
import yaml

from reprosuite.claims import evaluate, load_claims
from reprosuite.config import ConfigError

from .conftest import TOY

TABLES = {"tab1": pd.DataFrame({"k": [1, 2], "value": [0.5, 1.5]})}


def _claims(tmp_path, claims):
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(claims))
    return load_claims(path)


def _one(tmp_path, scale, **claim):
    base = {"id": "c", "statement": "s", "tables": ["tab1"], "check": "positive",
            "params": {"threshold": 0.0}, "scales": ["default"]}
    base.update(claim)
    return evaluate("topology", _claims(tmp_path, [base]), TABLES, TOY.checks, scale)[0]


def test_pass_fail_and_measured(tmp_path):
    assert _one(tmp_path, "default").status == "PASS"
    result = _one(tmp_path, "default", params={"threshold": 1.0})
    assert result.status == "FAIL" and result.measured == 0.5 and result.expected == ">= 1.0"


def test_skip_outside_scale_with_reason(tmp_path):
    result = _one(tmp_path, "smoke")
    assert result.status == "SKIP" and "default" in result.reason


def test_report_only_is_evaluated_but_never_gates(tmp_path):
    result = _one(tmp_path, "smoke", params={"threshold": 1.0}, report_only=["smoke"])
    assert result.status == "REPORT" and result.measured == 0.5 and "would fail" in result.reason


def test_broken_check_and_missing_table_never_pass(tmp_path):
    assert _one(tmp_path, "default", check="broken", params={}).status == "FAIL"
    assert _one(tmp_path, "default", tables=["tab9"]).status == "SKIP"
    assert _one(tmp_path, "default", check="nope").status == "FAIL"


@pytest.mark.parametrize("bad, needle", [
    ({"id": "c", "statement": "s", "tables": [], "check": "x", "scales": ["huge"]}, "allowed: smoke, default, paper"),
    ({"id": "c", "statement": "s", "tables": [], "check": "x", "scales": [], "treshold": 1}, "unknown key 'treshold'"),
    ({"id": "c", "tables": [], "check": "x", "scales": []}, "missing key 'statement'"),
])
def test_claims_yaml_is_validated(tmp_path, bad, needle):
    with pytest.raises(ConfigError, match=needle):
        _claims(tmp_path, [bad])
