"""The interval statistics behind every verdict: known values, coverage, decisions."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from reprosuite import stats


def test_mean_ci_matches_the_t_interval_at_pinned_values():
    est = stats.mean_ci([1.0, 2.0, 3.0, 4.0])
    half = sps.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert est.value == 2.5 and est.n == 4
    assert est.lo == pytest.approx(2.5 - half) and est.hi == pytest.approx(2.5 + half)


def test_mean_ci_covers_the_truth_about_95_percent():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(2000):
        e = stats.mean_ci(rng.normal(1.0, 2.0, 10))
        covered += e.lo <= 1.0 <= e.hi
    assert 0.93 < covered / 2000 < 0.97


def test_one_sample_has_an_infinite_interval_and_never_decides():
    d = stats.decide(stats.mean_ci([3.0]), 1.0, ">=")
    assert d.passed is None and math.isinf(d.estimate.hi)


@pytest.mark.parametrize("side, threshold, expected", [
    (">=", 0.0, True), (">=", 5.0, False), (">=", 1.2, None),
    ("<=", 5.0, True), ("<=", 0.0, False), ("<=", 0.8, None),
])
def test_decide_one_sided(side, threshold, expected):
    est = stats.Estimate(1.0, 0.5, 1.5, 10)
    d = stats.decide(est, threshold, side)
    assert d.passed is expected
    if expected is None:
        assert d.seeds_needed > 10  # quadruple the seeds to halve the width past a distance of 0


def test_seeds_needed_follows_the_square_root_law():
    est = stats.Estimate(1.0, 0.0, 2.0, 16, method="bootstrap")  # half-width 1 at n = 16
    d = stats.decide(est, 0.5, ">=")  # distance 0.5: need half-width 0.5 -> 4x the seeds
    assert d.passed is None and d.seeds_needed == 65


def test_seeds_needed_for_a_t_interval_uses_the_t_quantile_at_the_new_size():
    est = stats.mean_ci([0.0, 8.4])  # two seeds: t_1 makes the interval ~12.7 s.e. wide
    need = stats.decide(est, 0.0, ">").seeds_needed
    spread = np.std([0.0, 8.4], ddof=1)
    assert 4 <= need <= 12  # about (1.96 * 5.9 / 4.2)^2 + small-sample t correction, not ~80
    assert sps.t.ppf(0.975, need - 1) * spread / np.sqrt(need) < 4.2


def test_decide_rel_is_an_equivalence_test():
    inside = stats.decide_rel(stats.Estimate(101.0, 99.0, 103.0, 50), 100.0, 0.05)
    outside = stats.decide_rel(stats.Estimate(120.0, 110.0, 130.0, 50), 100.0, 0.05)
    straddle = stats.decide_rel(stats.Estimate(104.0, 98.0, 110.0, 50), 100.0, 0.05)
    assert (inside.passed, outside.passed, straddle.passed) == (True, False, None)
    assert inside.estimate.value == pytest.approx(0.01)


def test_bonferroni_and_combine():
    assert stats.cell_level(0.95, 10) == pytest.approx(0.995)
    p, f, n = (stats.Decision(v, stats.exact(0), "") for v in (True, False, None))
    assert stats.combine([p, p]) == (True, None)
    assert stats.combine([p, f, n])[0] is False
    assert stats.combine([p, n])[0] is None
    assert stats.combine([])[0] is False


def test_bootstrap_ci_brackets_a_median():
    rng = np.random.default_rng(1)
    x = rng.standard_cauchy(200)  # no mean; the median is well posed
    est = stats.bootstrap_ci(x, np.median, seed=0)
    assert est.lo < 0.0 < est.hi and est.method == "bootstrap"
    assert est.hi - est.lo < 0.6
