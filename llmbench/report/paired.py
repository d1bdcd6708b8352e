"""Paired statistics between two stored runs, recomputed from their per-sample statistics.

Why paired: two runs on the same samples share the samples' difficulty, so the difference
of their scores is far less noisy than the two scores' separate CIs suggest. We align the
runs on the sample ids both of them scored, rebuild the *registered* metric that reads the
run's stored stats layout (``metrics.registry.rebuild_metric``: same schema and version,
the stored arguments and the task's labels; never code a database names) and hand both stat
lists to ``paired_bootstrap``, which applies the *same* resample weights to both runs. A
value the metric declares as the mean of a 0/1 indicator (``Metric.indicators``) gets the
exact McNemar test, and the samples that flipped between right and wrong are listed by id.
The report knows no metric's stats keys: everything it reads per sample is declared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from llmbench.report.jsonsafe import finite
from llmbench.store import RunInfo, SampleRecord

if TYPE_CHECKING:  # built lazily in _metric_cached: a report that compares nothing loads no metric library
    from llmbench.metrics.base import Metric

#: How many largest per-sample drops to keep for non-binary values.
TOP_DROPS = 10


@dataclass
class PairedValue:
    """One metric value of run A vs run B on their shared samples."""

    metric: str
    name: str
    higher_is_better: bool
    n: int
    a: float
    b: float
    delta: float  # b - a
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None
    test: str = "paired-bootstrap"
    right_to_wrong: list[str] | None = None
    wrong_to_right: list[str] | None = None
    largest_drops: list[tuple[str, float, float]] = field(default_factory=list)
    note: str | None = None

    @property
    def drop(self) -> float:
        """How much worse B is than A, in the value's own units (negative: B is better)."""
        return -self.delta if self.higher_is_better else self.delta

    @property
    def binary(self) -> bool:
        return self.right_to_wrong is not None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "largest_drops"}
        out["drop"] = self.drop
        out["largest_drops"] = [{"sample_id": s, "a": a, "b": b} for s, a, b in self.largest_drops]
        safe: dict[str, Any] = finite(out)  # JSON has no NaN/Infinity: an undefined number is null
        return safe


@lru_cache(maxsize=64)
def _metric_cached(name: str, labels: tuple[str, ...] | None, args_json: str, stats_json: str) -> Metric:
    from llmbench.metrics.registry import rebuild_metric as rebuild

    return rebuild(name, labels=labels, args=json.loads(args_json), stats=json.loads(stats_json))


def stored_stats_info(run: RunInfo, metric: str) -> dict[str, Any] | None:
    """What the run stored about ``metric``'s stats (schema, version, scale), if anything."""
    return run.run_config.metric_stats.get(metric)


def rebuild_metric(run: RunInfo, metric: str, args: Mapping[str, Any]) -> Metric:
    """The registered metric that reads a run's stats; raises ``MetricError`` (a user error:
    cannot decide) for an unknown stats version or an ``evaluate:`` module nobody named here."""
    labels = run.run_config.labels
    return _metric_cached(metric, tuple(labels) if labels else None, json.dumps(dict(args), sort_keys=True),
                          json.dumps(stored_stats_info(run, metric), sort_keys=True))


def indicator_key(metric: Metric, value_name: str, stats: Sequence[Mapping[str, Any]]) -> str | None:
    """The declared 0/1 per-sample key of ``value_name``, when every stat holds one."""
    key = metric.indicators.get(value_name)
    if key is None or not stats:
        return None
    return key if all(s.get(key) in (0, 1, True, False) for s in stats) else None


def align(samples_a: Sequence[SampleRecord], samples_b: Sequence[SampleRecord],
          metric: str) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """Sample ids scored by ``metric`` in both runs (A's order) and the two stat lists.

    Failed samples carry no stats and are left out on both sides, so a failure in one run
    never shows up as a wrong answer in the comparison.
    """
    by_id_b = {s.sample_id: s.stats[metric] for s in samples_b if metric in s.stats}
    ids, sa, sb = [], [], []
    for s in samples_a:
        if metric in s.stats and s.sample_id in by_id_b:
            ids.append(s.sample_id)
            sa.append(s.stats[metric])
            sb.append(by_id_b[s.sample_id])
    return ids, sa, sb


def sample_score(metric: Metric | None, value_name: str, stats: Mapping[str, Any]) -> float | None:
    """A per-sample score for browsing, on the value's own scale (``Metric.sample_score``);
    None without a metric or where the metric has no per-sample score."""
    if metric is None:
        return None
    try:
        return metric.sample_score(value_name, stats)
    except (KeyError, TypeError, ValueError):  # a value one sample alone does not define
        return None


def compare_value(metric: Metric, value_name: str, higher_is_better: bool, ids: Sequence[str],
                  stats_a: Sequence[Mapping[str, Any]], stats_b: Sequence[Mapping[str, Any]],
                  *, n_resamples: int = 1000, seed: int = 0, exact_binary: bool = True,
                  details: bool = True) -> PairedValue:
    """Paired bootstrap CI and p of ``b - a``; for accuracy-type values the exact McNemar p
    (``exact_binary``) and the flipped sample ids. ``details=False`` skips flips and per-sample
    drops (the leaderboard only needs the p-value)."""
    from llmbench.metrics import mcnemar, paired_bootstrap
    from llmbench.metrics.bootstrap import capped_resamples

    n_resamples = capped_resamples(metric, n_resamples)  # library-call metrics: one call per resample
    point_a = float(metric.score(stats_a)[value_name][0])
    point_b = float(metric.score(stats_b)[value_name][0])
    if n_resamples > 0:
        delta, low, high, p = paired_bootstrap(metric, stats_a, stats_b, value_name,
                                               n_resamples=n_resamples, seed=seed)
    else:
        delta, low, high, p = point_b - point_a, None, None, None
    out = PairedValue(metric=metric.name, name=value_name, higher_is_better=higher_is_better, n=len(ids),
                      a=point_a, b=point_b, delta=delta, ci_low=low, ci_high=high, p=p)
    key_a, key_b = indicator_key(metric, value_name, stats_a), indicator_key(metric, value_name, stats_b)
    if key_a is not None and key_b is not None:
        # the indicator's 1 is a right answer for a score and a miss for a lower-is-better rate
        right_a = [bool(s[key_a]) == higher_is_better for s in stats_a]
        right_b = [bool(s[key_b]) == higher_is_better for s in stats_b]
        if exact_binary:
            out.test = "mcnemar-exact"
            out.p = mcnemar(right_a, right_b)
        if details:
            out.right_to_wrong = [i for i, x, y in zip(ids, right_a, right_b, strict=True) if x and not y]
            out.wrong_to_right = [i for i, x, y in zip(ids, right_a, right_b, strict=True) if y and not x]
    elif details:
        out.largest_drops = _largest_drops(metric, value_name, higher_is_better, ids, stats_a, stats_b)
    if out.p is None:
        out.test, out.note = "none", "resampling is off (--resamples 0) and this value has no exact test"
    return out


def _largest_drops(metric: Metric, value_name: str, higher_is_better: bool, ids: Sequence[str],
                   stats_a: Sequence[Mapping[str, Any]],
                   stats_b: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, float]]:
    """The samples whose own score got worse the most (the non-binary analogue of flips)."""
    if metric.max_resamples is not None or metric.browse_indicator is not None:
        return []  # a library call per sample, or no per-sample value beyond right/wrong
    rows = []
    for sid, sa, sb in zip(ids, stats_a, stats_b, strict=True):
        a, b = sample_score(metric, value_name, sa), sample_score(metric, value_name, sb)
        if a is None or b is None:
            return []
        worse = (a - b) if higher_is_better else (b - a)
        if worse > 0:
            rows.append((worse, sid, a, b))
    rows.sort(key=lambda r: (-r[0], r[1]))
    return [(sid, a, b) for _, sid, a, b in rows[:TOP_DROPS]]


def unpaired_value(metric: str, value_name: str, higher_is_better: bool, n: int, a: float, b: float,
                   note: str) -> PairedValue:
    """A value that could not be tested (metric not rebuildable, nothing shared): numbers only."""
    return PairedValue(metric=metric, name=value_name, higher_is_better=higher_is_better, n=n, a=a, b=b,
                       delta=b - a, test="none", note=note)
