"""report.power's formulas against independent computations (brute-force enumeration, textbook
closed forms), so the MDE the gate prints rests on numbers checked another way."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, multinomial, norm

from llmbench.report import power as P


def _brute_power(drop: float, n: int, psi: float, alpha: float, max_drop: float) -> float:
    """Every (right->wrong, wrong->right) count of n paired samples, tested with scipy's own
    binomtest exactly as ``metrics.mcnemar`` does: the gate's rule, enumerated."""
    p10, p01 = (psi + drop) / 2.0, (psi - drop) / 2.0
    total = 0.0
    for b10 in range(n + 1):
        for b01 in range(n + 1 - b10):
            prob = multinomial.pmf([b10, b01, n - b10 - b01], n, [p10, p01, 1.0 - psi])
            if b10 + b01 == 0 or prob == 0.0:
                continue
            p = binomtest(b10, b10 + b01, 0.5).pvalue
            if p < alpha and (b10 - b01) / n > max_drop:
                total += prob
    return total


@pytest.mark.parametrize(("drop", "n", "psi", "alpha", "max_drop"), [
    (0.1, 40, 0.3, 0.05, 0.0), (0.2, 30, 0.2, 0.05, 0.0), (0.05, 60, 0.15, 0.1, 0.02), (0.15, 25, 0.4, 0.01, 0.0)])
def test_binary_power_equals_enumeration(drop: float, n: int, psi: float, alpha: float, max_drop: float) -> None:
    assert P.power_binary(drop, n, psi, alpha=alpha, max_drop=max_drop) == pytest.approx(
        _brute_power(drop, n, psi, alpha, max_drop), abs=1e-9)


def test_binary_mde_reaches_the_power_exactly() -> None:
    mde = P.mde_binary(500, 0.04)
    assert mde is not None
    assert P.power_binary(mde, 500, 0.04) == pytest.approx(0.8, abs=1e-5)
    # Normal approximation (Connor 1987) lands close: the exact answer is no outlier.
    approx = (norm.ppf(0.975) + norm.ppf(0.8)) * math.sqrt(0.04 / 500)
    assert abs(mde - approx) / approx < 0.1
    # A drop needs flips: identical reruns still give a positive MDE, about (z_a + z_b)^2 / n.
    floor = P.mde_binary(500, 0.0)
    assert floor is not None and 0.01 < floor < 0.02


def test_too_few_samples_detect_nothing() -> None:
    # McNemar cannot reach p < 0.05 with 5 flips (2 x 0.5^5 = 0.0625): n = 5 never flags.
    assert P.mde_binary(5, 0.5) is None
    assert P.power_binary(1.0, 5, 1.0) == 0.0


def test_normal_mde_is_the_textbook_formula() -> None:
    se = 0.8 / math.sqrt(200)
    assert P.mde_normal(se, alpha=0.05, power=0.8) == pytest.approx((1.959964 + 0.841621) * se, rel=1e-5)
    # max_drop above the test's threshold: the drop must clear max_drop with 80% probability.
    assert P.mde_normal(se, max_drop=1.0) == pytest.approx(1.0 + 0.841621 * se, rel=1e-5)
    assert P.power_normal(P.mde_normal(se), se) == pytest.approx(0.8, abs=1e-9)


def test_samples_needed_is_the_smallest_enough_count() -> None:
    sd, detect = 0.3, 0.02
    n = P.samples_needed(detect, sd=sd)
    assert n == math.ceil(((norm.ppf(0.975) + norm.ppf(0.8)) * sd / detect) ** 2)
    nb = P.samples_needed(0.03, discordance=0.1)
    assert nb is not None
    assert P.power_binary(0.03, nb, 0.1) >= 0.8 > P.power_binary(0.03, nb - 1, 0.1)
    assert P.samples_needed(0.01, sd=0.3, max_drop=0.01) is None  # the gate ignores drops up to max_drop
    with pytest.raises(ValueError, match="exactly one"):
        P.samples_needed(0.01)


def test_bounds_and_helpers() -> None:
    assert P.bernoulli_discordance(0.8) == pytest.approx(0.32)
    assert P.bernoulli_discordance(None) == 0.5
    assert P.se_from_ci(-0.0392, 0.0392) == pytest.approx(0.02, rel=1e-3)
    assert P.se_from_ci(None, 0.1) is None
    assert P.amount(0.031, "accuracy", True) == "3.1 points"
    assert P.amount(2.5, "chrf", False) == "2.5 points"  # percent-scale metric: its units are points
    # The one-run bound on accuracy 0.8 over 500 samples: the MDE of discordance 2 x 0.8 x 0.2.
    assert P.single_run_mde(0.8, 0.76, 0.84, 500, metric="accuracy", binary=True) == pytest.approx(
        P.mde_binary(500, 0.32), rel=1e-12)
    assert np.isclose(P.single_run_mde(0.5, 0.45, 0.55, 100, metric="rougeL", binary=False),
                      P.mde_normal(math.sqrt(2) * P.se_from_ci(0.45, 0.55)))
