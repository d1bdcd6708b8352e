"""How far a judge agrees with people: Cohen's kappa (labels, preferences) and Spearman's rho
(scores), each with a seeded percentile bootstrap CI over the items. Pure numpy/scipy.

Written out rather than called from scikit-learn / scipy because every bootstrap draw needs
the statistic again (a thousand library calls with their argument checks cost more than the
arithmetic); the tests check both point values against ``sklearn.metrics.cohen_kappa_score``
and ``scipy.stats.spearmanr``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class Agreement:
    statistic: str  # "cohen_kappa" or "spearman"
    value: float  # NaN when undefined (one side constant)
    ci_low: float | None
    ci_high: float | None
    n: int


def _kappa_codes(a: np.ndarray, b: np.ndarray, k: int) -> float:
    confusion = np.zeros((k, k))
    np.add.at(confusion, (a, b), 1.0)
    n = confusion.sum()
    observed = np.trace(confusion) / n
    expected = float(confusion.sum(axis=1) @ confusion.sum(axis=0)) / (n * n)
    if expected == 1.0:
        return float("nan")  # both raters used one and the same label throughout
    return float((observed - expected) / (1.0 - expected))


def _codes(a: Sequence[Hashable], b: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray, int]:
    labels = sorted({*a, *b}, key=str)
    index = {v: k for k, v in enumerate(labels)}
    return (np.array([index[v] for v in a]), np.array([index[v] for v in b]), len(labels))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def _ci(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return None, None
    alpha = (1 - confidence) / 2
    return float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))


def _draws(n: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable], *, n_resamples: int = 1000, seed: int = 0,
                confidence: float = 0.95) -> Agreement:
    """Unweighted Cohen's kappa of two raters' labels on the same items."""
    if len(a) != len(b):
        raise ValueError("cohen_kappa: the two raters labelled different numbers of items")
    if not a:
        return Agreement("cohen_kappa", float("nan"), None, None, 0)
    ca, cb, k = _codes(a, b)
    value = _kappa_codes(ca, cb, k)
    low = high = None
    if n_resamples > 0:
        boot = np.array([_kappa_codes(ca[d], cb[d], k) for d in _draws(len(ca), n_resamples, seed)])
        low, high = _ci(boot, confidence)
    return Agreement("cohen_kappa", value, low, high, len(ca))


def spearman(a: Sequence[float], b: Sequence[float], *, n_resamples: int = 1000, seed: int = 0,
             confidence: float = 0.95) -> Agreement:
    """Spearman's rank correlation (average ranks for ties) of two raters' scores."""
    if len(a) != len(b):
        raise ValueError("spearman: the two raters scored different numbers of items")
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(xa) < 2:
        return Agreement("spearman", float("nan"), None, None, len(xa))
    value = _spearman(xa, xb)
    low = high = None
    if n_resamples > 0:
        boot = np.array([_spearman(xa[d], xb[d]) for d in _draws(len(xa), n_resamples, seed)])
        low, high = _ci(boot, confidence)
    return Agreement("spearman", value, low, high, len(xa))
