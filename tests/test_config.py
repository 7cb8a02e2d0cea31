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


def test_scale_files_override_the_paper_defaults(tmp_path, toy_paper):
    folder = tmp_path / "experiments" / toy_paper.id
    folder.mkdir(parents=True)
    (folder / "smoke.yaml").write_text("exp: {steps: 2}\n")
    (folder / "default.yaml").write_text("exp: {steps: 10}\n")
    assert load_config(toy_paper, "paper", root=tmp_path).exp.steps == 3  # the dataclass default
    assert load_config(toy_paper, "smoke", root=tmp_path).exp.steps == 2
    assert load_config(toy_paper, "default", root=tmp_path).exp.steps == 10
    with pytest.raises(ConfigError, match="allowed: smoke, default, paper"):
        override_files(toy_paper.id, "bogus", tmp_path)


# strict YAML, numbers in any notation, fixed-length tuples, command-line settings ------------------
from dataclasses import dataclass as _dc  # noqa: E402

from reprosuite.config import apply_sets, parse_seeds, parse_sets, parse_yaml  # noqa: E402


@_dc(frozen=True)
class _Split:
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    lr: float = 0.1


def test_yaml_numbers_in_any_notation_and_fixed_tuples():
    data = parse_yaml("lr: 5e-2\nsplit: [0.7, 0.1, 0.2]\n", "x.yaml")
    cfg = apply_overrides(_Split(), data, where="x.yaml")
    assert cfg.lr == 0.05 and cfg.split == (0.7, 0.1, 0.2)
    with pytest.raises(ConfigError, match="split must be a list of 3 items"):
        apply_overrides(_Split(), {"split": [0.5, 0.5]}, where="x.yaml")


@pytest.mark.parametrize("text, needle", [
    ("seeds: [1]\nseeds: [2]\n", "x.yaml: duplicate key 'seeds' (line 2)"),
    ("exp: [1, 2\nseeds: 3\n", "x.yaml: malformed YAML at line 2"),
])
def test_yaml_errors_name_the_file(text, needle):
    with pytest.raises(ConfigError) as err:
        parse_yaml(text, "x.yaml")
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_an_empty_section_is_an_error_not_the_paper_settings():
    with pytest.raises(ConfigError, match="section 'exp' is empty"):
        apply_overrides(ToyConfig(), parse_yaml("exp:\n", "x.yaml"), where="x.yaml")


def test_unknown_field_types_are_refused():
    @_dc(frozen=True)
    class Odd:
        when: complex = 1j

    with pytest.raises(ConfigError, match="field type the suite cannot check"):
        apply_overrides(Odd(), {"when": 2j}, where="x.yaml")


@pytest.mark.parametrize("value, seeds", [(3, [3]), ("1,2", [1, 2]), ("[1, 2]", [1, 2]), (["4", 5], [4, 5])])
def test_seeds_in_any_form(value, seeds):
    assert parse_seeds(value) == seeds


@pytest.mark.parametrize("value", ["abc", -1, "[]", [1, -2]])
def test_bad_seeds_are_one_line(value):
    with pytest.raises(ConfigError, match="seeds = .* is not allowed; allowed: a non-empty list of integers >= 0"):
        parse_seeds(value)


def test_set_overrides_are_validated_like_yaml():
    sets = parse_sets("exp.steps=7; exp.names=[x, y]")
    cfg = apply_sets(ToyConfig(), "topology", sets)
    assert cfg.exp.steps == 7 and cfg.exp.names == ("x", "y")
    assert apply_sets(ToyConfig(), "topology", parse_sets("topology.exp.rate=5e-2")).exp.rate == 0.05
    with pytest.raises(ConfigError, match="steps = 0 must be >= 1"):
        apply_sets(ToyConfig(), "topology", parse_sets("exp.steps=0"))
    with pytest.raises(ConfigError, match="expected: section.key=value"):
        parse_sets("exp.steps")


def test_a_config_yaml_beside_the_scale_files_is_refused(tmp_path, toy_paper):
    folder = tmp_path / "experiments" / toy_paper.id
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("exp: {steps: 10}\n")
    with pytest.raises(ConfigError, match="config.yaml is not read: the paper's settings are the config dataclass defaults"):
        load_config(toy_paper, "default", root=tmp_path)


def test_check_range_names_key_value_and_range():
    from reprosuite.config import check_range

    @_dc(frozen=True)
    class Train:
        lr: float = 0.1
        fracs: tuple[float, ...] = (0.5, 1.0)

    check_range(Train(), "fig3", "lr", gt=0)
    check_range(Train(), "fig3", "fracs", gt=0, le=1)
    with pytest.raises(ValueError, match=r"^fig3.lr = 0.0 must be > 0$"):
        check_range(Train(lr=0.0), "fig3", "lr", gt=0)
    with pytest.raises(ValueError, match=r"fracs = \(0.5, 1.5\) must be > 0 and <= 1"):
        check_range(Train(fracs=(0.5, 1.5)), "main", "fracs", gt=0, le=1)
