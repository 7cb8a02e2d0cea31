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
    assert result.status == "REPORT" and result.measured == 0.5 and "would FAIL" in result.reason


def test_broken_check_and_missing_table_never_pass(tmp_path):
    assert _one(tmp_path, "default", check="broken", params={}).status == "FAIL"
    assert _one(tmp_path, "default", tables=["tab9"]).status == "FAIL"
    assert _one(tmp_path, "default", check="nope").status == "FAIL"


@pytest.mark.parametrize("bad, needle", [
    ({"id": "c", "statement": "s", "tables": [], "check": "x", "scales": ["huge"]}, "allowed: smoke, default, paper"),
    ({"id": "c", "statement": "s", "tables": [], "check": "x", "scales": [], "treshold": 1}, "unknown key 'treshold'"),
    ({"id": "c", "tables": [], "check": "x", "scales": []}, "missing key 'statement'"),
])
def test_claims_yaml_is_validated(tmp_path, bad, needle):
    with pytest.raises(ConfigError, match=needle):
        _claims(tmp_path, [bad])


def check_mean_above(tables, *, threshold):
    from reprosuite.claims import Outcome
    from reprosuite.stats import decide, mean_ci

    return Outcome.decided([decide(mean_ci(tables["tab1"]["value"]), threshold, ">=", name="mean")])


@pytest.mark.parametrize("values, verdict", [
    ([1.0, 1.1, 0.9, 1.05], "PASS"),      # interval well above 0.5
    ([0.0, 0.1, -0.1, 0.05], "FAIL"),     # interval well below 0.5
    ([0.0, 1.0, 0.2, 0.9], "INCONCLUSIVE"),  # straddles 0.5
])
def test_interval_verdicts(tmp_path, values, verdict):
    claim = {"id": "c", "statement": "s", "tables": ["tab1"], "check": "mean", "params": {"threshold": 0.5},
             "scales": ["default"]}
    tables = {"tab1": pd.DataFrame({"value": values})}
    result = evaluate("topology", _claims(tmp_path, [claim]), tables, {"mean": check_mean_above}, "default")[0]
    assert result.status == verdict
    assert result.n_seeds == 4 and result.interval[0] < result.interval[1]
    if verdict == "INCONCLUSIVE":
        assert result.seeds_needed > 4 and "seeds would resolve" in result.reason


def test_summary_lists_claims_that_do_not_pass_first_with_their_interval():
    from reprosuite.summary import readme_table, render

    rows = [dict(paper="topology", id="ok", status="PASS", measured=1.0, expected=">= 0", scale="default",
                 statement="s", interval=[0.5, 1.5], n_seeds=4, level=0.95),
            dict(paper="topology", id="open", status="INCONCLUSIVE", measured=0.1, expected=">= 0",
                 scale="default", statement="s", interval=[-0.5, 0.7], n_seeds=4, level=0.95,
                 reason="about 40 seeds would resolve it")]
    text = render(rows, [], "default")
    assert text.index("| open |") < text.index("| ok |")
    assert "0.1 [-0.5, 0.7] (95% CI), n=4" in text
    assert "- **topology**: 1 PASS, 0 FAIL, 1 INCONCLUSIVE" in text
    table = readme_table(rows, "default")
    assert "| INCONCLUSIVE |" in table and "`open` INCONCLUSIVE [-0.5, 0.7], n=4" in table
