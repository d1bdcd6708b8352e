"""How small a drop a comparison can see: the minimum detectable effect (MDE) of the gate's tests.

A gate that passes says "no significant drop", which is only reassuring if a drop that matters
*would* have been significant. The MDE is the smallest true drop the gate flags in
``power`` (80%) of nights, at the gate's ``alpha`` and ``max_drop``, for the comparison's n:

* **Right/wrong values** (accuracy, exact match: the gate uses McNemar's exact test) —
  computed exactly, not by a normal approximation. Only discordant samples carry information:
  with a discordance rate ``psi`` (share of samples that changed between the two runs) and a
  true drop ``delta``, the discordant count is Binomial(n, psi), each discordant sample is a
  right->wrong flip with probability (psi + delta) / (2 psi), and the gate flags the night when
  McNemar's two-sided p < alpha and the observed drop > max_drop. ``psi`` is the observed one
  (the paired variance of this comparison), never below ``delta`` (a drop needs that many flips).
  Before a second run exists, the **Bernoulli bound** stands in: two runs each right with
  probability p and independent give psi = 2 p (1 - p) (p = 0.5 when nothing has run yet);
  paired runs of related models change far fewer answers, so the bound is conservative.
* **Other values** (F1, chrF, ROUGE: paired bootstrap) — the normal approximation with the
  standard error of the paired difference, read from the comparison's paired bootstrap CI
  (or, for one run alone, sqrt(2) x the run's own standard error: the unpaired bound).

Everything here is a pure function of numbers (numpy/scipy); the gate, the leaderboard, the
``plan`` command and the suite runner call it. A test checks the printed MDE by simulating
500 nights through the gate's own decision function.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize, stats

if TYPE_CHECKING:
    from llmbench.report.paired import PairedValue

DEFAULT_POWER = 0.8
#: The paired bootstrap CIs are 95% percentile intervals whatever the gate's alpha.
CI_LEVEL = 0.95
#: Largest sample count ``samples_needed`` searches (beyond it: "more than 10 million").
MAX_SAMPLES = 10_000_000


def _check(alpha: float, power: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")


def bernoulli_discordance(p: float | None) -> float:
    """The discordance of two independent runs each right with probability ``p``: 2 p (1 - p);
    0.5 (the largest) when ``p`` is unknown. The bound used before a second run exists."""
    q = 0.5 if p is None else min(max(float(p), 0.0), 1.0)
    return 2.0 * q * (1.0 - q)


def _critical_flips(discordant: np.ndarray, n: int, alpha: float, max_drop: float) -> np.ndarray:
    """Per discordant count D, the fewest right->wrong flips the gate flags: McNemar's exact
    two-sided p = 2 P(X >= b) < alpha for X ~ Bin(D, 1/2), and the drop (2b - D) / n > max_drop."""
    b = stats.binom.isf(alpha / 2.0, discordant, 0.5) + 1.0
    b = np.where(2.0 * stats.binom.sf(b - 1.0, discordant, 0.5) < alpha, b, b + 1.0)
    by_drop = np.floor((discordant + n * max_drop) / 2.0) + 1.0
    return np.maximum(b, by_drop)


def power_binary(drop: float, n: int, discordance: float, *, alpha: float = 0.05,
                 max_drop: float = 0.0) -> float:
    """Exact probability that the gate flags a true drop ``drop`` (a fraction, 0-1) in a right/
    wrong value over ``n`` paired samples with discordance rate ``discordance``."""
    if n <= 0 or drop <= 0.0:
        return 0.0
    psi = min(1.0, max(float(discordance), drop))
    lo, hi = stats.binom.interval(1.0 - 1e-12, n, psi)  # the discordant counts that matter
    d = np.arange(int(lo), int(hi) + 1, dtype=np.float64)
    weight = stats.binom.pmf(d, n, psi)
    flips = _critical_flips(d, n, alpha, max_drop)
    q = min(1.0, (psi + drop) / (2.0 * psi))
    caught = stats.binom.sf(flips - 1.0, d, q)
    return float(np.clip(np.sum(weight * caught), 0.0, 1.0))


@lru_cache(maxsize=4096)  # a nightly gate asks again for the same (n, discordance): pure, so cached
def mde_binary(n: int, discordance: float, *, alpha: float = 0.05, power: float = DEFAULT_POWER,
               max_drop: float = 0.0) -> float | None:
    """The smallest drop (a fraction, 0-1) that ``power_binary`` catches with probability
    ``power``; None when even a drop to zero would not be (too few samples)."""
    _check(alpha, power)
    if n <= 0 or power_binary(1.0, n, discordance, alpha=alpha, max_drop=max_drop) < power:
        return None

    def gap(x: float) -> float:
        return power_binary(x, n, discordance, alpha=alpha, max_drop=max_drop) - power

    return float(optimize.brentq(gap, 1e-9, 1.0, xtol=1e-7))


def power_normal(drop: float, se: float, *, alpha: float = 0.05, max_drop: float = 0.0) -> float:
    """Probability that a paired difference with standard error ``se`` flags a true ``drop``
    (normal approximation of the paired bootstrap test; same units as ``drop``)."""
    if se <= 0.0:
        return 1.0 if drop > max_drop else 0.0
    threshold = max(float(stats.norm.ppf(1.0 - alpha / 2.0)) * se, max_drop)
    return float(stats.norm.sf((threshold - drop) / se))


def mde_normal(se: float, *, alpha: float = 0.05, power: float = DEFAULT_POWER, max_drop: float = 0.0) -> float:
    """The drop ``power_normal`` catches with probability ``power``: the larger of the test's
    threshold (z_(1-alpha/2) x se) and ``max_drop``, plus z_power x se."""
    _check(alpha, power)
    threshold = max(float(stats.norm.ppf(1.0 - alpha / 2.0)) * se, max_drop)
    return threshold + float(stats.norm.ppf(power)) * se


def se_from_ci(low: float | None, high: float | None, level: float = CI_LEVEL) -> float | None:
    """The standard error a normal interval of this width and level would have."""
    if low is None or high is None or not math.isfinite(low) or not math.isfinite(high):
        return None
    return max(0.0, float(high - low)) / (2.0 * float(stats.norm.ppf(0.5 + level / 2.0)))


def samples_needed(detect: float, *, discordance: float | None = None, sd: float | None = None,
                   alpha: float = 0.05, power: float = DEFAULT_POWER, max_drop: float = 0.0) -> int | None:
    """The fewest paired samples whose MDE is at most ``detect``: give ``discordance`` for a
    right/wrong value (``detect`` a fraction) or ``sd``, the per-sample standard deviation of the
    paired difference, for any other. None when no count up to ``MAX_SAMPLES`` is enough (or
    ``detect`` is not above ``max_drop``, which the gate ignores by definition)."""
    _check(alpha, power)
    if detect <= max_drop or (discordance is None) == (sd is None):
        if (discordance is None) == (sd is None):
            raise ValueError("give exactly one of discordance (right/wrong values) or sd")
        return None

    def enough(n: int) -> bool:
        if discordance is not None:
            return power_binary(detect, n, discordance, alpha=alpha, max_drop=max_drop) >= power
        return power_normal(detect, float(sd or 0.0) / math.sqrt(n), alpha=alpha, max_drop=max_drop) >= power

    lo, hi = 1, 2
    while not enough(hi):
        if hi >= MAX_SAMPLES:
            return None
        lo, hi = hi, min(hi * 2, MAX_SAMPLES)
    while lo < hi:  # the smallest enough n in (lo, hi]
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid + 1, hi)
    return hi


@dataclass(frozen=True)
class Detectable:
    """What one gated value could have detected: its MDE in the value's own units."""

    task: str
    model: str
    name: str
    metric: str
    n: int
    #: The smallest true drop caught in ``power`` of nights (value units); None: not estimable.
    mde: float | None
    #: How the variance was obtained, in words ("McNemar, observed discordance 4.0%", ...).
    basis: str
    alpha: float
    power: float
    #: Right/wrong value: the MDE reads in percentage points.
    binary: bool
    #: An example drop of a third of the MDE and the probability the gate would catch it.
    example_drop: float | None = None
    example_power: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _factor(metric: str) -> float:
    """Value units per fraction: 100 for percent-scale metrics (BLEU, SQuAD EM), else 1."""
    from llmbench.metrics.registry import declared_scale

    return 100.0 if declared_scale(metric) == "percent" else 1.0


def value_power(value: PairedValue, *, task: str, model: str, alpha: float, max_drop: float = 0.0,
                power: float = DEFAULT_POWER) -> Detectable:
    """The MDE of one paired value of a comparison, from its observed paired variance: the
    discordance (McNemar values) or the paired bootstrap CI's width (others)."""
    factor = _factor(value.metric)
    base = Detectable(task=task, model=model, name=value.name, metric=value.metric, n=value.n, mde=None,
                      basis="", alpha=alpha, power=power, binary=False)
    if value.binary and value.n > 0:
        flips = len(value.right_to_wrong or ()) + len(value.wrong_to_right or ())
        psi, limit = flips / value.n, max_drop / factor
        mde = mde_binary(value.n, psi, alpha=alpha, power=power, max_drop=limit)
        example = _example(mde)
        return replace(base, mde=None if mde is None else mde * factor, binary=True,
                       basis=f"McNemar exact, observed discordance {psi:.1%} ({flips} of {value.n} changed)",
                       example_drop=None if example is None else example * factor,
                       example_power=None if example is None else power_binary(example, value.n, psi, alpha=alpha,
                                                                               max_drop=limit))
    se = se_from_ci(value.ci_low, value.ci_high)
    if se is None:
        return replace(base, basis="no paired CI (resampling off): not estimable")
    mde_v = mde_normal(se, alpha=alpha, power=power, max_drop=max_drop)
    example = _example(mde_v)
    return replace(base, mde=mde_v, basis=f"normal approx., paired bootstrap SE {se:.3g}", example_drop=example,
                   example_power=None if example is None else power_normal(example, se, alpha=alpha,
                                                                           max_drop=max_drop))


def _example(mde: float | None) -> float | None:
    """A drop a third the size of the MDE, rounded to two significant digits: "would go unseen"."""
    if mde is None or mde <= 0.0:
        return None
    third = mde / 3.0
    digits = 1 - math.floor(math.log10(third))
    return round(third, digits)


def single_run_mde(value: float | None, ci_low: float | None, ci_high: float | None, n: int, *, metric: str,
                   binary: bool, alpha: float = 0.05, power: float = DEFAULT_POWER) -> float | None:
    """The MDE a future paired comparison of this run with a rerun of ``n`` samples would have,
    before the rerun exists: the Bernoulli bound for right/wrong values (from the run's own
    score), else the unpaired bound sqrt(2) x the run's standard error (from its CI)."""
    if n <= 0:
        return None
    factor = _factor(metric)
    if binary:
        p = None if value is None else value / factor
        mde = mde_binary(n, bernoulli_discordance(p), alpha=alpha, power=power)
        return None if mde is None else mde * factor
    se = se_from_ci(ci_low, ci_high)
    return None if se is None else mde_normal(math.sqrt(2.0) * se, alpha=alpha, power=power)


def gate_power(findings: Iterable[Any], *, alpha: float, max_drop: float,
               power: float = DEFAULT_POWER) -> list[Detectable]:
    """One ``Detectable`` per gated value (``report.gate.Finding``: a pair and its value)."""
    return [value_power(f.value, task=f.pair.task, model=f.pair.b.model, alpha=alpha, max_drop=max_drop,
                        power=power) for f in findings]


def amount(x: float, metric: str, binary: bool, *, adjective: bool = False) -> str:
    """A drop in words: percentage points for right/wrong values and percent-scale metrics
    ("3.1 points"; as an adjective "a 1.0-point drop")."""
    factor = _factor(metric)
    if binary or factor == 100.0:
        pts = x * (100.0 / factor)
        if adjective:
            return f"{pts:.1f}-point"
        return f"{pts:.1f} point{'s' if round(pts, 1) != 1.0 else ''}"
    return f"{x:.3g} ({metric})"


def lines(found: Sequence[Detectable]) -> list[str]:
    """One sentence per gated value, as the gate prints them."""
    out = []
    for d in found:
        where = f"{d.task} · {d.model} · {d.name} (n={d.n})"
        if d.mde is None:
            out.append(f"power {where}: cannot estimate the detectable drop — {d.basis}")
            continue
        text = (f"power {where}: this comparison can detect drops ≥ {amount(d.mde, d.metric, d.binary)} "
                f"({d.power:.0%} power, alpha {d.alpha:g}; {d.basis})")
        if d.example_drop is not None and d.example_power is not None:
            text += (f"; a {amount(d.example_drop, d.metric, d.binary, adjective=True)} drop would likely go unseen "
                     f"(caught in {d.example_power:.0%} of nights)")
        out.append(text)
    return out
