"""Intervals and decisions for claims: a verdict is a measurement with its uncertainty.

A check turns per-seed (or per-draw) values into an ``Estimate`` (value with a confidence
interval) and decides it against the claim's threshold with ``decide`` (one-sided) or
``decide_within`` (an equivalence band such as a relative tolerance):

- PASS (``passed=True``): the whole interval lies on the passing side;
- FAIL (``passed=False``): the whole interval lies on the failing side;
- INCONCLUSIVE (``passed=None``): the interval straddles the threshold; the outcome says how
  many seeds would resolve it at the measured variance (``seeds_needed``).

A claim over m cells corrects for multiplicity with Bonferroni (``cell_level``), at a
family-wise 95% by default, and combines the cells with ``combine``. Intervals come from
scipy (Student t for means, ``scipy.stats.bootstrap`` otherwise); nothing here re-derives a
statistic scipy provides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95  # family-wise confidence of every claim unless its params say otherwise


@dataclass(frozen=True)
class Estimate:
    """A measured value with a two-sided confidence interval [lo, hi] at ``level`` from ``n`` samples."""

    value: float
    lo: float
    hi: float
    n: int
    level: float = LEVEL
    method: str = "t"

    @property
    def half_width(self) -> float:
        return 0.5 * (self.hi - self.lo)

    def scaled(self, factor: float, shift: float = 0.0) -> Estimate:
        """``factor * x + shift`` of the estimate (interval re-ordered when factor < 0)."""
        a, b = sorted((self.lo * factor + shift, self.hi * factor + shift))
        return Estimate(self.value * factor + shift, a, b, self.n, self.level, self.method)

    def text(self, digits: int = 4) -> str:
        return f"{self.value:.{digits}g} [{self.lo:.{digits}g}, {self.hi:.{digits}g}] (n={self.n})"


def exact(value: float) -> Estimate:
    """A deterministic quantity (no seeds): a zero-width interval."""
    v = float(value)
    return Estimate(v, v, v, 1, 1.0, "exact")


def cell_level(level: float = LEVEL, m: int = 1) -> float:
    """Bonferroni: the per-cell confidence that keeps the family-wise level over ``m`` cells."""
    return 1.0 - (1.0 - level) / max(int(m), 1)


def mean_ci(samples: Iterable[float], level: float = LEVEL) -> Estimate:
    """Mean with a Student-t interval (``scipy.stats.t``); one sample gives an infinite interval."""
    x = np.asarray(list(samples) if not isinstance(samples, np.ndarray) else samples, dtype=float).ravel()
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Estimate(math.nan, -math.inf, math.inf, 0, level)
    m = float(x.mean())
    if n == 1:
        return Estimate(m, -math.inf, math.inf, 1, level)
    from scipy import stats  # lazy: steps that never decide a claim skip its import time

    se = float(stats.sem(x))
    if se == 0.0:
        return Estimate(m, m, m, n, level)
    lo, hi = stats.t.interval(level, n - 1, loc=m, scale=se)
    return Estimate(m, float(lo), float(hi), n, level)


def paired_diff_ci(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Estimate:
    """Mean of a - b over paired samples (same seeds) with a t interval."""
    return mean_ci(np.asarray(a, float) - np.asarray(b, float), level)


def bootstrap_ci(data: Sequence | tuple[Sequence, ...], statistic: Callable[..., float], *,
                 level: float = LEVEL, seed: int = 0, n_resamples: int = 2000, paired: bool = True) -> Estimate:
    """Any statistic with a BCa (falling back to percentile) ``scipy.stats.bootstrap`` interval.

    ``data`` is one sample or a tuple of samples; ``statistic(*samples)`` returns a float.
    """
    from scipy import stats

    samples = tuple(np.asarray(d, float) for d in (data if isinstance(data, tuple) else (data,)))
    value = float(statistic(*samples))
    n = len(samples[0])
    if n < 2:
        return Estimate(value, -math.inf, math.inf, n, level, "bootstrap")
    kw = dict(confidence_level=level, n_resamples=n_resamples, paired=paired, vectorized=False,
              random_state=np.random.default_rng(seed))
    try:
        res = stats.bootstrap(samples, statistic, method="BCa", **kw)
        lo, hi = res.confidence_interval
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("degenerate BCa interval")
    except Exception:  # BCa needs a non-degenerate jackknife; percentile always exists
        res = stats.bootstrap(samples, statistic, method="percentile", **kw)
        lo, hi = res.confidence_interval
    return Estimate(value, float(lo), float(hi), n, level, "bootstrap")


def _seeds_needed(est: Estimate, distance: float) -> int | None:
    """Samples that would shrink the half-width below ``distance`` at the measured spread.

    For a Student-t interval the spread is recovered from the half-width (s = h * sqrt(n) / t_{n-1})
    and the need is solved with the t quantile at the new size, so two seeds' wide t_1 interval is not
    mistaken for a wide spread; other intervals scale as 1/sqrt(n).
    """
    if est.n < 2 or not math.isfinite(est.half_width) or distance <= 0 or est.method == "exact":
        return None
    if est.method != "t":
        return int(math.ceil(est.n * (est.half_width / distance) ** 2)) + 1
    from scipy import stats

    q = stats.t.ppf(0.5 + est.level / 2, est.n - 1)
    spread = est.half_width * math.sqrt(est.n) / q
    n = est.n + 1
    while n < 10**7 and stats.t.ppf(0.5 + est.level / 2, n - 1) * spread / math.sqrt(n) >= distance:
        n = max(n + 1, int(n * 1.1))
    return n


@dataclass(frozen=True)
class Decision:
    """The verdict on one cell: passed True/False/None (INCONCLUSIVE) with its estimate."""

    passed: bool | None
    estimate: Estimate
    expected: str
    seeds_needed: int | None = None
    name: str = ""


def decide(est: Estimate, threshold: float, side: str, name: str = "") -> Decision:
    """One-sided test of ``value side threshold`` (side in '>=', '>', '<=', '<') on the interval."""
    if side not in (">=", ">", "<=", "<"):
        raise ValueError(f"side must be one of >=, >, <=, <; got {side!r}")
    greater = side.startswith(">")
    lo, hi = est.lo, est.hi
    if math.isnan(est.value):
        return Decision(None, est, f"{side} {threshold:g}", None, name)
    if greater:
        passed = True if lo > threshold or (side == ">=" and lo >= threshold) else (False if hi < threshold or (side == ">" and hi <= threshold) else None)
    else:
        passed = True if hi < threshold or (side == "<=" and hi <= threshold) else (False if lo > threshold or (side == "<" and lo >= threshold) else None)
    need = _seeds_needed(est, abs(est.value - threshold)) if passed is None else None
    return Decision(passed, est, f"{side} {threshold:g}", need, name)


def decide_within(est: Estimate, low: float, high: float, name: str = "") -> Decision:
    """Equivalence: PASS when the interval lies inside [low, high], FAIL when it lies wholly outside."""
    if math.isnan(est.value):
        return Decision(None, est, f"in [{low:g}, {high:g}]", None, name)
    if low <= est.lo and est.hi <= high:
        passed = True
    elif est.hi < low or est.lo > high:
        passed = False
    else:
        passed = None
    need = None
    if passed is None:
        inside = low <= est.value <= high
        distance = min(est.value - low, high - est.value) if inside else min(abs(est.value - low), abs(est.value - high))
        need = _seeds_needed(est, distance)
    return Decision(passed, est, f"in [{low:g}, {high:g}]", need, name)


def decide_rel(est: Estimate, target: float, rtol: float, name: str = "") -> Decision:
    """|value / target - 1| <= rtol, decided on the interval of the relative deviation."""
    rel = est.scaled(1.0 / target, -1.0)
    d = decide_within(rel, -rtol, rtol, name)
    return Decision(d.passed, rel, f"|rel| <= {rtol:g}", d.seeds_needed, name)


def combine(decisions: Sequence[Decision]) -> tuple[bool | None, int | None]:
    """All cells PASS -> True; any FAIL -> False; otherwise None with the most seeds any cell needs."""
    if not decisions:
        return False, None
    if any(d.passed is False for d in decisions):
        return False, None
    if all(d.passed is True for d in decisions):
        return True, None
    needs = [d.seeds_needed for d in decisions if d.passed is None and d.seeds_needed]
    return None, (max(needs) if needs else None)


def worst(decisions: Sequence[Decision]) -> Decision:
    """The cell that decides a combined verdict: a FAIL first, then the INCONCLUSIVE cell needing
    most seeds, then the PASS whose interval comes closest to its bound."""
    for d in decisions:
        if d.passed is False:
            return d
    pending = [d for d in decisions if d.passed is None]
    if pending:
        return max(pending, key=lambda d: d.seeds_needed or 0)
    return decisions[0]
