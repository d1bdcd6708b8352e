"""Seeded percentile bootstrap over per-sample statistics, plus paired significance tests.

Why weights instead of index lists: a resample is represented as a ``(B, N)`` matrix of
multiplicities (how often each of the N samples was drawn in each of the B resamples).
Mean-type metrics then reduce to ``weights @ values / weights.sum(1)`` and count-type
metrics (BLEU, chrF, confusion matrices) to ``weights @ stats``: one BLAS call for all
resamples instead of a Python loop. The same matrix applied to two runs' statistics
gives a *paired* bootstrap for run-vs-run comparisons.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

#: Cells of one weight chunk (float64): 2**20 cells = 8 MiB. Large corpora are resampled
#: in chunks of rows so memory stays bounded; the chunk plan depends only on (N, B), so a
#: seed still gives the same resamples every time.
MAX_CHUNK_CELLS = 2**20


class Resampleable(Protocol):
    """What the bootstrap reads of a metric (``metrics.base.Metric`` satisfies it). A protocol,
    not ``Metric`` itself: ``base`` builds on this module, and importing it back, even for
    types only, made the two modules a cycle."""

    @property
    def name(self) -> str: ...

    @property
    def max_resamples(self) -> int | None: ...

    def score(
        self, stats: Sequence[Mapping[str, Any]], weights: np.ndarray | None = None
    ) -> Mapping[str, np.ndarray]: ...


def capped_resamples(metric: Resampleable, n_resamples: int) -> int:
    """How many resamples ``metric`` is actually bootstrapped with: ``n_resamples``, cut to
    ``metric.max_resamples`` for metrics whose reduce step is a whole library call per
    resample (HF ``evaluate`` wrappers). One rule for confidence intervals, paired tests and
    reports, so the count in a signature is the count every consumer used."""
    cap = metric.max_resamples
    return n_resamples if cap is None else min(n_resamples, cap)


def resample_weights(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n_resamples`` bootstrap resamples of ``n`` samples as a ``(B, n)`` count matrix.

    Each row sums to ``n``. Rows are bincounts of uniform integer draws; a per-row
    bincount is faster than one big bincount or ``rng.multinomial`` (cache friendly).
    """
    draws = rng.integers(0, n, size=(n_resamples, n), dtype=np.int64 if n >= 2**31 else np.int32)
    weights = np.empty((n_resamples, n), dtype=np.float64)
    for row, drawn in zip(weights, draws, strict=True):
        row[:] = np.bincount(drawn, minlength=n)
    return weights


def weight_chunks(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Yield the seeded resample weights in row chunks of at most ``MAX_CHUNK_CELLS`` cells."""
    if n <= 0:
        raise ValueError("cannot bootstrap an empty sample")
    rng = np.random.default_rng(seed)
    rows = max(1, MAX_CHUNK_CELLS // n)
    for start in range(0, n_resamples, rows):
        yield resample_weights(n, min(rows, n_resamples - start), rng)


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (N,) under each row of ``weights`` (B, N) -> (B,)."""
    return np.asarray((weights @ values) / weights.sum(axis=1))  # numpy types `@` as Any


def group_sums(weights: np.ndarray, keys: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum the weight columns by group: ``out[b, g] = sum(weights[b, keys == g])``.

    Keys outside ``[0, n_groups)`` (e.g. -1 for "no group") are dropped. Sorting once and
    using ``np.add.reduceat`` keeps this O(B*N) with no (N, n_groups) one-hot matrix, so
    it scales to label sets with many classes.
    """
    out = np.zeros((weights.shape[0], n_groups), dtype=np.float64)
    keep = np.flatnonzero((keys >= 0) & (keys < n_groups))
    if keep.size == 0:
        return out
    order = keep[np.argsort(keys[keep], kind="stable")]
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    out[:, sorted_keys[starts]] = np.add.reduceat(weights[:, order], starts, axis=1)
    return out


def percentile_ci(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval; NaN resamples (undefined scores) are ignored."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = (1.0 - confidence) / 2.0
    finite = samples[~np.isnan(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)


def bootstrap_distribution(
    metric: Resampleable, stats: Sequence[Mapping[str, Any]], *, n_resamples: int, seed: int
) -> dict[str, np.ndarray]:
    """Every value of ``metric`` on ``n_resamples`` seeded resamples: {value_name: (B,)}."""
    parts: dict[str, list[np.ndarray]] = {}
    for weights in weight_chunks(len(stats), n_resamples, seed):
        for name, values in metric.score(stats, weights).items():
            parts.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def paired_bootstrap(
    metric: Resampleable,
    stats_a: Sequence[Mapping[str, Any]],
    stats_b: Sequence[Mapping[str, Any]],
    value_name: str,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float, float]:
    """Paired bootstrap of ``value(b) - value(a)``: ``(delta, ci_low, ci_high, p_value)``.

    ``stats_a[i]`` and ``stats_b[i]`` must describe the same sample (same order). The same
    resample weights are applied to both runs, so sample difficulty cancels out and the
    interval is much tighter than comparing two independent CIs. ``delta`` is the
    reference-library point difference. The two-sided p-value is twice the fraction of
    resampled deltas on the other side of zero (ties count against significance),
    clipped to 1; identical runs give delta 0 and p 1. ``metric.max_resamples`` caps the
    resamples as in ``Metric.aggregate``.
    """
    if len(stats_a) != len(stats_b):
        raise ValueError(
            f"paired bootstrap needs the same samples in both runs: {len(stats_a)} != {len(stats_b)}"
        )
    point_a = metric.score(stats_a)
    point_b = metric.score(stats_b)
    if value_name not in point_a or value_name not in point_b:
        raise KeyError(f"{metric.name!r} has no value {value_name!r}; it has {sorted(point_a)}")
    delta = float(point_b[value_name][0] - point_a[value_name][0])
    n_resamples = capped_resamples(metric, n_resamples)
    chunks = [
        metric.score(stats_b, weights)[value_name] - metric.score(stats_a, weights)[value_name]
        for weights in weight_chunks(len(stats_a), n_resamples, seed)
    ]
    deltas = np.concatenate(chunks).astype(np.float64)
    ci_low, ci_high = percentile_ci(deltas, confidence)
    finite = deltas[~np.isnan(deltas)]
    if delta == 0.0 or finite.size == 0:
        p_value = 1.0
    else:
        other_side = finite <= 0.0 if delta > 0.0 else finite >= 0.0
        p_value = min(1.0, 2.0 * float(other_side.mean()))
    return delta, ci_low, ci_high, p_value


def mcnemar(correct_a: Sequence[bool] | np.ndarray, correct_b: Sequence[bool] | np.ndarray) -> float:
    """Exact (binomial) McNemar test on paired per-sample correctness; two-sided p-value.

    Only discordant pairs carry information: b = A right & B wrong, c = A wrong & B right;
    under H0 b ~ Binomial(b + c, 1/2). The exact test is valid for small counts, where the
    chi-square approximation is not.
    """
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mcnemar needs paired samples: {a.shape} != {b.shape}")
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue)
