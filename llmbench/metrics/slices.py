"""Every metric value per slice (the values of a row field), and the gap between the best and
the worst slice with its bootstrap interval.

Why one resample matrix for all slices: a resample of the whole run, restricted to each
slice's columns, gives every slice's value *and* the gap from the same draws, so the gap's
interval accounts for the slices moving together (as the paired tests do for two runs),
and the numbers are the ones a seed reproduces. The per-slice point values are the metric's
own point values on the slice's samples, so a slice of one topic reports exactly what a
run restricted to that topic would.

A slice that a resample happens not to draw is undefined in that resample (NaN); the gap of
such a resample is undefined too, and percentile intervals skip undefined resamples. The
gap is ``best - worst`` as a non-negative distance; the bootstrap of a max-minus-min is
biased upward for small slices, which the interval inherits — read it as "at least this
unequal", not as an unbiased estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from llmbench.metrics.base import Metric, Stats
from llmbench.metrics.bootstrap import capped_resamples, percentile_ci, weight_chunks


def _indices(keys: Sequence[str]) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return {key: np.asarray(idx, dtype=np.int64) for key, idx in sorted(groups.items())}


def slice_metric(metric: Metric, stats: Stats, keys: Sequence[str], *, n_resamples: int = 1000,
                 seed: int = 0, confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """``{value_name: {"higher_is_better", "slices": {key: {value, ci_low, ci_high, n}},
    "gap": {value, ci_low, ci_high, best, worst}}}`` for one metric's per-sample ``stats``;
    ``keys[i]`` is sample ``i``'s slice. JSON-ready (stored with the run)."""
    stats = list(stats)
    if len(stats) != len(keys):
        raise ValueError(f"{len(stats)} stats for {len(keys)} slice keys: one key per scored sample")
    if not stats:
        return {}
    groups = _indices(keys)
    parts = {key: [stats[i] for i in idx] for key, idx in groups.items()}
    points = {key: metric.score(part) for key, part in parts.items()}
    # a value some slices lack (squad_v2's NoAns_* without unanswerable questions) is per slice
    names = sorted({n for p in points.values() for n in p}, key=lambda n: (n != metric.primary(), n))
    n_resamples = capped_resamples(metric, n_resamples)
    boot: dict[str, dict[str, list[np.ndarray]]] = {name: {key: [] for key in groups} for name in names}
    if n_resamples > 0:
        for weights in weight_chunks(len(stats), n_resamples, seed):
            for key, idx in groups.items():
                with np.errstate(divide="ignore", invalid="ignore"):
                    values = metric.score(parts[key], weights[:, idx])
                for name in names:
                    if name in values:
                        boot[name][key].append(np.asarray(values[name], dtype=np.float64))
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        hib = metric.higher_is_better(name)
        point = {key: float(points[key][name][0]) for key in groups if name in points[key]}
        per_slice: dict[str, dict[str, Any]] = {}
        for key in groups:
            low = high = None
            if boot[name][key]:
                low, high = percentile_ci(np.concatenate(boot[name][key]), confidence)
            per_slice[key] = {"value": point.get(key), "ci_low": low, "ci_high": high, "n": len(groups[key])}
        defined = {k: v for k, v in point.items() if np.isfinite(v)}
        gap: dict[str, Any] = {"value": None, "ci_low": None, "ci_high": None, "best": None, "worst": None}
        if len(defined) >= 2:
            best = (max if hib else min)(defined, key=lambda k: defined[k])
            worst = (min if hib else max)(defined, key=lambda k: defined[k])
            gap.update(value=abs(defined[best] - defined[worst]), best=best, worst=worst)
            if n_resamples > 0 and all(boot[name][key] for key in defined):
                matrix = np.stack([np.concatenate(boot[name][key]) for key in defined])  # (S, B)
                spread = matrix.max(axis=0) - matrix.min(axis=0)  # NaN when a slice is undefined
                gap["ci_low"], gap["ci_high"] = percentile_ci(spread, confidence)
        out[name] = {"higher_is_better": hib, "slices": per_slice, "gap": gap}
    return out


def slice_report(by: str, metrics: Sequence[tuple[Metric, Stats]], keys: Sequence[str], *,
                 n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """Every metric per slice, as stored with a run (``usage["slices"]``): the field, the
    slice sizes, the bootstrap settings and ``{metric: slice_metric(...)}``. A metric whose
    stats do not cover every scored sample (one computed for some samples only) is left
    out rather than mis-aligned with the keys."""
    counts: Mapping[str, int] = {key: len(idx) for key, idx in _indices(keys).items()}
    return {
        "by": by, "counts": dict(counts), "n_resamples": n_resamples, "seed": seed, "confidence": confidence,
        "metrics": {metric.name: slice_metric(metric, stats, keys, n_resamples=n_resamples, seed=seed,
                                              confidence=confidence)
                    for metric, stats in metrics if len(stats) == len(keys) and len(stats) > 0},
    }
