"""The claims engine: ``claims.yaml`` + tables -> ``claims.json`` -> ``summary.md``.

Each claim in ``experiments/<paper>/claims.yaml`` names a check function of the paper (its
``checks`` dict), the tables it reads, the thresholds (``params``) and the scales where it
gates. Thresholds live in the YAML with their source, never in code.

    - id: tnew_le_tgap
      source: "paper §3.2, Table 1; docs/papers/topology.md claim 2"
      statement: "T_new <= (1-p)/p for every topology and n; equality only for complete"
      tables: [fig1]
      check: tnew_le_tgap
      params: {tol: 1.0e-12}
      scales: [smoke, default, paper]      # where it gates (PASS/FAIL)
      report_only: [default]               # evaluated and recorded as REPORT, never gating

A check returns ``Outcome(passed, measured, expected)``; ``passed`` is True (PASS), False (FAIL)
or None (INCONCLUSIVE: the interval straddles the threshold). A check whose measurement depends
on seeds or Monte Carlo draws builds it from ``reprosuite.stats`` decisions
(``Outcome.decided``), so the record carries the interval, the seed count and, when
inconclusive, the seeds that would resolve it. Outside its scales a claim is SKIP with the
reason; a check that raises, or a gated claim whose table is missing, is FAIL with the reason
(never a silent pass).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .config import ConfigError
from .stats import Decision, combine, worst

STATUSES = ("PASS", "FAIL", "INCONCLUSIVE", "SKIP", "REPORT")
CLAIM_KEYS = {"id", "source", "statement", "tables", "check", "params", "scales", "report_only"}


@dataclass(frozen=True)
class Outcome:
    """What a check measured. ``measured`` and ``expected`` are short human-readable strings
    (numbers formatted by the check) or numbers."""

    passed: bool | None
    measured: Any
    expected: Any
    detail: str = ""
    interval: tuple[float, float] | None = None  # of the deciding quantity, at ``level``
    n_seeds: int | None = None  # seeds (or draws) behind the interval
    seeds_needed: int | None = None  # INCONCLUSIVE: seeds that would resolve it at this variance
    level: float | None = None

    @classmethod
    def decided(cls, decisions: Sequence[Decision], *, measured: Any = None, expected: Any = None,
                detail: str = "") -> Outcome:
        """Combine cell decisions (all PASS / any FAIL / otherwise INCONCLUSIVE); the interval shown
        is the deciding cell's (the failing one, or the one furthest from being resolved)."""
        passed, need = combine(decisions)
        if not decisions:
            return cls(False, measured, expected, detail or "no cells to decide")
        key = worst(decisions)
        est = key.estimate
        cells = "; ".join(f"{d.name or 'cell'} {d.estimate.text()} {d.expected}" + ("" if d.passed else (" FAIL" if d.passed is False else " ?"))
                          for d in decisions if d.passed is not True)
        return cls(passed, est.value if measured is None else measured, key.expected if expected is None else expected,
                   "; ".join(x for x in (detail, cells) if x), interval=(est.lo, est.hi), n_seeds=est.n,
                   seeds_needed=need, level=est.level)


@dataclass
class ClaimResult:
    paper: str
    id: str
    statement: str
    source: str
    status: str
    measured: Any
    expected: Any
    scale: str
    reason: str = ""
    tables: list[str] = field(default_factory=list)
    interval: list[float] | None = None
    n_seeds: int | None = None
    seeds_needed: int | None = None
    level: float | None = None


def load_claims(path: Path) -> list[dict[str, Any]]:
    """Read and validate a claims.yaml (keys, scales, ids unique)."""
    claims = yaml.safe_load(Path(path).read_text()) or []
    if not isinstance(claims, list):
        raise ConfigError(f"{path}: must be a list of claims")
    seen: set[str] = set()
    for i, claim in enumerate(claims):
        where = f"{path}: claim {claim.get('id', i) if isinstance(claim, dict) else i}"
        if not isinstance(claim, dict):
            raise ConfigError(f"{where}: must be a mapping")
        unknown = set(claim) - CLAIM_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}'; allowed: {', '.join(sorted(CLAIM_KEYS))}")
        missing = {"id", "statement", "tables", "check", "scales"} - set(claim)
        if missing:
            raise ConfigError(f"{where}: missing key '{sorted(missing)[0]}'")
        for key in ("scales", "report_only"):
            bad = set(claim.get(key, [])) - {"smoke", "default", "paper"}
            if bad:
                raise ConfigError(f"{where}: {key} has {sorted(bad)[0]!r}; allowed: smoke, default, paper")
        if claim["id"] in seen:
            raise ConfigError(f"{where}: duplicate id")
        seen.add(claim["id"])
    return claims


def evaluate(paper_id: str, claims: list[dict[str, Any]], tables: Mapping[str, pd.DataFrame],
             checks: Mapping[str, Callable[..., Outcome]], scale: str) -> list[ClaimResult]:
    """Evaluate every claim at ``scale`` against the available tables."""
    results = []
    for claim in claims:
        base = dict(paper=paper_id, id=claim["id"], statement=claim["statement"],
                    source=claim.get("source", ""), scale=scale, tables=list(claim["tables"]))
        report_only = scale in claim.get("report_only", [])
        if scale not in claim["scales"] and not report_only:
            results.append(ClaimResult(**base, status="SKIP", measured=None, expected=None,
                                       reason=f"checked at {', '.join(claim['scales'])} only"))
            continue
        missing = [t for t in claim["tables"] if t not in tables]
        if missing:  # a gated claim never passes for want of its evidence
            results.append(ClaimResult(**base, status="REPORT" if report_only else "FAIL", measured=None, expected=None,
                                       reason=f"table {', '.join(missing)} missing at scale {scale}"))
            continue
        check = checks.get(claim["check"])
        if check is None:
            results.append(ClaimResult(**base, status="FAIL", measured=None, expected=None,
                                       reason=f"no check named {claim['check']!r}; known: {', '.join(sorted(checks))}"))
            continue
        try:
            out = check({t: tables[t] for t in claim["tables"]}, **claim.get("params", {}))
        except Exception as err:  # a broken check must show, not pass
            results.append(ClaimResult(**base, status="FAIL", measured=None, expected=None,
                                       reason=f"check raised {type(err).__name__}: {err}"))
            continue
        verdict = {True: "PASS", False: "FAIL", None: "INCONCLUSIVE"}[None if out.passed is None else bool(out.passed)]
        status = "REPORT" if report_only else verdict
        reason = out.detail
        if verdict == "INCONCLUSIVE" and out.seeds_needed:
            reason = f"about {out.seeds_needed} seeds would resolve it" + (f"; {reason}" if reason else "")
        if report_only:
            reason = f"report-only at {scale}; would {verdict}" + (f"; {reason}" if reason else "")
        interval = None if out.interval is None else [float(v) for v in out.interval]
        results.append(ClaimResult(**base, status=status, measured=_jsonable(out.measured),
                                   expected=_jsonable(out.expected), reason=reason, interval=interval,
                                   n_seeds=out.n_seeds, seeds_needed=out.seeds_needed, level=out.level))
    return results


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_claims(results: list[ClaimResult], path: Path) -> None:
    from .runner import atomic_write

    payload = [asdict(r) for r in results]
    atomic_write(Path(path), lambda p: p.write_text(json.dumps(payload, indent=2, default=str)))


def read_claims(path: Path) -> list[dict[str, Any]]:
    return json.loads(Path(path).read_text())


def fmt(value: Any, digits: int = 4) -> str:
    """Format a measured/expected value for tables: floats to ``digits`` significant digits."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fmt(v, digits)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    return str(value)
