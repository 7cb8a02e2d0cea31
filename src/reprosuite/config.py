"""Frozen-dataclass configs with YAML overrides, validated before any job runs.

A paper's settings are a frozen dataclass whose defaults stand on their own. YAML files only
override them, in this order: ``experiments/<paper>/config.yaml`` (the paper's settings), then
``experiments/<paper>/<scale>.yaml`` for the smoke and default scales. An unknown key, a value
of the wrong type or a value outside its ``Literal`` choices raises ``ConfigError`` with a
one-line message that names the file, the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import os
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
        return tuple(_coerce(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(args, value)))
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
    return value


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
            changes[key] = apply_overrides(current, value or {}, where=where, prefix=f"{dotted}.")
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
    files = [folder / "config.yaml"]
    if scale != "paper":
        files.append(folder / f"{scale}.yaml")
    return [f for f in files if f.exists()]


def load_config(paper: Paper, scale: str, *, root: Path | None = None,
                extra: Mapping[str, Any] | None = None) -> Any:
    """The validated config of ``paper`` at ``scale`` (defaults, then YAML files, then ``extra``)."""
    cfg = paper.config()
    for path in override_files(paper.id, scale, root):
        data = yaml.safe_load(path.read_text()) or {}
        cfg = apply_overrides(cfg, data, where=str(path.relative_to(path.parents[2])))
    if extra:
        cfg = apply_overrides(cfg, extra, where="--config")
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-able dict of a config (tuples become lists)."""
    return dataclasses.asdict(cfg)
