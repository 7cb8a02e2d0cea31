"""Frozen-dataclass configs: YAML overrides validated with one-line messages."""

import pytest

from reprosuite.config import ConfigError, apply_overrides, load_config, override_files

from .conftest import ToyConfig


def test_overrides_apply_and_lists_become_tuples():
    cfg = apply_overrides(ToyConfig(), {"seeds": [3], "exp": {"steps": 5, "names": ["x"]}}, where="t")
    assert cfg.seeds == (3,) and cfg.exp.steps == 5 and cfg.exp.names == ("x",)
    assert ToyConfig().exp.steps == 3  # the default is untouched (frozen)


@pytest.mark.parametrize("overrides, needle", [
    ({"exp": {"stepz": 1}}, "unknown key 'exp.stepz'; allowed: mode, names, rate, steps"),
    ({"exp": {"mode": "cubic"}}, "exp.mode = 'cubic' is not allowed; allowed: 'linear', 'square'"),
    ({"exp": {"steps": 2.5}}, "exp.steps = 2.5 must be an integer"),
    ({"exp": {"steps": 0}}, "steps = 0 must be >= 1"),
    ({"seeds": 3}, "seeds = 3 must be a list"),
    ({"diverge_at": "x"}, "diverge_at = 'x' must be"),
])
def test_bad_values_name_the_key(overrides, needle):
    with pytest.raises(ConfigError) as err:
        apply_overrides(ToyConfig(), overrides, where="experiments/toy/default.yaml")
    message = str(err.value)
    assert needle in message and "\n" not in message
    assert message.startswith("experiments/toy/default.yaml")


def test_int_is_accepted_for_float_and_none_for_optional():
    cfg = apply_overrides(ToyConfig(), {"exp": {"rate": 1}, "diverge_at": None}, where="t")
    assert cfg.exp.rate == 1.0 and isinstance(cfg.exp.rate, float)


def test_scale_files_order(tmp_path, toy_paper):
    folder = tmp_path / "experiments" / toy_paper.id
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("exp: {steps: 10}\n")
    (folder / "smoke.yaml").write_text("exp: {steps: 2}\n")
    assert load_config(toy_paper, "paper", root=tmp_path).exp.steps == 10
    assert load_config(toy_paper, "smoke", root=tmp_path).exp.steps == 2
    assert load_config(toy_paper, "default", root=tmp_path).exp.steps == 10
    with pytest.raises(ConfigError, match="allowed: smoke, default, paper"):
        override_files(toy_paper.id, "bogus", tmp_path)
