"""Frozen-dataclass configs with YAML overrides, validated before any job runs.

A paper's settings are a frozen dataclass whose defaults are the paper's own settings (the
``paper`` scale). ``experiments/<paper>/smoke.yaml`` and ``default.yaml`` override them at those
scales; nothing else is read. Suite options then apply on top: ``seeds`` and ``set`` entries
(``fig3.lr=0.01``, any setting from the command line, validated like the YAML).

YAML is read strictly: a duplicate key, an empty section or malformed YAML is an error naming
the file, and numbers parse in any YAML notation (``5e-2`` is a float). An unknown key, a value
of the wrong type, a value outside its ``Literal`` choices or out of range raises
``ConfigError`` with a one-line message that names the file, the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from .registry import SCALES, Paper


class ConfigError(ValueError):
    """A bad configuration value; the message is one line naming the key and what is allowed."""


def repo_root() -> Path:
    """The project folder holding ``experiments/`` (env ``REPROSUITE_ROOT``, cwd, or the source tree)."""
    env = os.environ.get("REPROSUITE_ROOT")
    if env:
        return Path(env)
    cwd = Path.cwd()
    if (cwd / "experiments").is_dir():
        return cwd
    return Path(__file__).resolve().parents[2]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads 5e-2 / 1E3 as floats (YAML 1.2 numbers)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML strictly; any problem is a one-line ConfigError naming ``where``."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: malformed YAML{at}: {problem}") from None


def read_yaml(path: Path, root: Path | None = None) -> Any:
    where = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
    return parse_yaml(Path(path).read_text(), where)


def check_range(obj: Any, prefix: str, *keys: str, gt: float | None = None, ge: float | None = None,
                lt: float | None = None, le: float | None = None) -> None:
    """Refuse, in one line, a setting (or any entry of a tuple setting) outside the range.

    For a config dataclass's ``__post_init__``: ``check_range(self, "fig3", "lr", "epochs", gt=0)``
    raises ``ValueError("fig3.lr = 0.0 must be > 0")``; ``None`` values are left alone.
    """
    bounds = [(gt, ">", lambda v, b: v > b), (ge, ">=", lambda v, b: v >= b),
              (lt, "<", lambda v, b: v < b), (le, "<=", lambda v, b: v <= b)]
    for key in keys:
        value = getattr(obj, key)
        if value is None:
            continue
        values = value if isinstance(value, tuple) else (value,)
        for bound, _op, ok in bounds:
            if bound is not None and not all(ok(v, bound) for v in values):
                allowed = " and ".join(f"{o} {b:g}" for b, o, _ in bounds if b is not None)
                raise ValueError(f"{prefix + '.' if prefix else ''}{key} = {value!r} must be {allowed}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; lists become tuples for frozen configs."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{where}: {key} = {value!r} is not allowed; allowed: {allowed}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, where)
            except ConfigError:
                continue
        names = " or ".join(_type_name(a) for a in args)
        raise ConfigError(f"{where}: {key} = {value!r} must be {names}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: {key} = {value!r} must be a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]", where) for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ConfigError(f"{where}: {key} must be a list of {len(args)} items")
        return tuple(_coerce(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: {key} = {value!r} must be a mapping")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} = {value!r} must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key} = {value!r} must be an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: {key} = {value!r} must be a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} = {value!r} must be a string")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: {key} = {value!r} must be a mapping of {tp.__name__} keys")
        fields = {f.name for f in dataclasses.fields(tp) if f.init}
        hints = typing.get_type_hints(tp)
        unknown = sorted(set(value) - fields)
        if unknown:
            raise ConfigError(f"{where}: unknown key '{key}.{unknown[0]}'; allowed: {', '.join(sorted(fields))}")
        kwargs = {k: _coerce(v, hints[k], f"{key}.{k}", where) for k, v in value.items()}
        try:
            return tp(**kwargs)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{where}: {key}: {err}") from None
    raise ConfigError(f"{where}: {key} has a field type the suite cannot check ({_type_name(tp)}); "
                      f"allowed: bool, int, float, str, Literal, Optional, tuple, dict, dataclass")


def apply_overrides(obj: Any, overrides: Mapping[str, Any], *, where: str, prefix: str = "") -> Any:
    """Return a copy of the frozen dataclass ``obj`` with ``overrides`` applied and validated."""
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where}: {prefix or 'the file'} must be a mapping of keys")
    fields = {f.name: f for f in dataclasses.fields(obj) if f.init}
    hints = typing.get_type_hints(type(obj))
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            allowed = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key '{dotted}'; allowed: {allowed}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if value is None:  # an empty `fig3:` would silently keep paper-scale settings
                raise ConfigError(f"{where}: section '{dotted}' is empty; give it keys or remove it")
            changes[key] = apply_overrides(current, value, where=where, prefix=f"{dotted}.")
        else:
            changes[key] = _coerce(value, hints[key], dotted, where)
    try:
        return dataclasses.replace(obj, **changes)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {prefix.rstrip('.') or 'config'}: {err}") from None


def override_files(paper_id: str, scale: str, root: Path | None = None) -> list[Path]:
    """The YAML files that apply at ``scale``, in order."""
    if scale not in SCALES:
        raise ConfigError(f"scale = {scale!r} is not allowed; allowed: {', '.join(SCALES)}")
    folder = (root or repo_root()) / "experiments" / paper_id
    if (folder / "config.yaml").exists():
        raise ConfigError(f"experiments/{paper_id}/config.yaml is not read: the paper's settings are the config "
                          f"dataclass defaults; allowed override files: smoke.yaml, default.yaml")
    files = [] if scale == "paper" else [folder / f"{scale}.yaml"]
    return [f for f in files if f.exists()]


def load_config(paper: Paper, scale: str, *, root: Path | None = None,
                extra: Mapping[str, Any] | None = None) -> Any:
    """The validated config of ``paper`` at ``scale`` (defaults, then YAML files, then ``extra``)."""
    cfg = paper.config()
    for path in override_files(paper.id, scale, root):
        where = str(path.relative_to(path.parents[2]))
        data = parse_yaml(path.read_text(), where)
        cfg = apply_overrides(cfg, {} if data is None else data, where=where)
    if extra:
        cfg = apply_overrides(cfg, extra, where="--config")
    return cfg


def parse_sets(sets: str | list[str] | tuple[str, ...] | None) -> list[tuple[str, Any]]:
    """``"fig3.lr=0.01; fig3.alphas=[0.1]"`` (or a list of such) -> [("fig3.lr", 0.01), ...]."""
    if not sets:
        return []
    items = [part for entry in ([sets] if isinstance(sets, str) else sets) for part in str(entry).split(";")]
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        path, eq, text = item.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", path.strip()):
            raise ConfigError(f"config: set = {item!r} is not allowed; expected: section.key=value, "
                              f"several separated by ';' (e.g. set=fig3.lr=0.01)")
        out.append((path.strip(), parse_yaml(text, f"config: set {path.strip()}")))
    return out


def parse_seeds(value: Any, where: str = "config") -> list[int] | None:
    """``3``, ``"1,2"``, ``"[1, 2]"`` or a list (of ints or digit strings) -> [int]; None stays None."""
    if value is None:
        return None
    items = value if isinstance(value, list | tuple) else str(value).strip().strip("[]").replace(" ", ",").split(",")
    try:
        seeds = [int(str(x).strip()) for x in items if str(x).strip() != ""]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"{where}: seeds = {value!r} is not allowed; allowed: a non-empty list of integers >= 0 "
                          f"(seeds=3, seeds=0,1,2 or seeds=[0,1,2])")
    return seeds


def _nest(path: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(path.split(".")):
        out = {part: out}
    return out


def _has_path(cfg: Any, path: str) -> bool:
    obj = cfg
    for part in path.split("."):
        if not dataclasses.is_dataclass(obj) or part not in {f.name for f in dataclasses.fields(obj)}:
            return False
        obj = getattr(obj, part)
    return True


def apply_sets(cfg: Any, paper_id: str, sets: list[tuple[str, Any]], *, strict: bool = True) -> Any:
    """Apply ``set`` entries. A path may start with the paper id (``topology.fig3.lr``) to target one
    paper; otherwise it applies to this paper when the paper has that setting. With ``strict`` a
    path this paper lacks is an error (used when the entry names the paper)."""
    for path, value in sets:
        head, _, rest = path.partition(".")
        if rest and head == paper_id:
            cfg = apply_overrides(cfg, _nest(rest, value), where=f"config: set {path}")
        elif _has_path(cfg, path) or strict:
            cfg = apply_overrides(cfg, _nest(path, value), where=f"config: set {path}")
    return cfg


def resolve_config(paper: Paper, scale: str, *, seeds: list[int] | tuple[int, ...] | None = None,
                   sets: list[tuple[str, Any]] | None = None, root: Path | None = None) -> Any:
    """The one resolved config of ``paper`` at ``scale``: defaults, the scale's YAML, seeds, set."""
    cfg = load_config(paper, scale, root=root, extra={"seeds": list(seeds)} if seeds else None)
    return apply_sets(cfg, paper.id, sets or [], strict=False)


def set_targets_someone(sets: list[tuple[str, Any]], cfgs: Mapping[str, Any]) -> None:
    """Every ``set`` entry must change a setting of at least one selected paper."""
    for path, _ in sets:
        head, _, rest = path.partition(".")
        if head in cfgs and rest:
            continue
        if not any(_has_path(cfg, path) for cfg in cfgs.values()):
            raise ConfigError(f"config: set {path}: no selected paper has this setting; "
                              f"allowed: a key of a paper's config, optionally prefixed by its id "
                              f"({', '.join(cfgs)})")


def write_resolved(path: Path, paper_id: str, scale: str, cfg: Any, options: Mapping[str, Any]) -> bool:
    """Write the resolved config as JSON (only when its content changed); True when written."""
    payload = json.dumps({"paper": paper_id, "scale": scale, "options": dict(options), "config": to_dict(cfg)},
                         indent=2, sort_keys=True, default=str) + "\n"
    path = Path(path)
    if path.exists() and path.read_text() == payload:
        return False
    from .runner import atomic_write

    atomic_write(path, lambda p: p.write_text(payload))
    return True


def read_resolved(path: Path, paper: Paper) -> tuple[str, Any]:
    """(scale, cfg) from a resolved-config file, re-validated against the paper's dataclasses."""
    data = json.loads(Path(path).read_text())
    if data.get("paper") != paper.id:
        raise ConfigError(f"{path}: holds the config of {data.get('paper')!r}, not {paper.id!r}")
    return data["scale"], apply_overrides(paper.config(), data["config"], where=str(path))


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-able dict of a config (tuples become lists)."""
    return dataclasses.asdict(cfg)
