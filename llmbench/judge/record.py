"""Judged runs in the results store, through its public API (``begin_run`` / ``finish_run``).

A judged run is a run like any other: per-sample records paired by the source's sample ids,
a registered metric (``judge_score`` / ``judge_pairwise``) whose per-sample stats reports
rebuild, and its usage. It is stored under its own task name (``TASK@judge`` or
``TASK@pairwise``) so it never replaces the source run as "the latest run of this model on
this task" (the source's ROUGE and the judge's score are different measurements), and its
task fingerprint folds in the judge's fingerprint: select and the leaderboard only set side
by side numbers made by the same judge with the same prompt.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmbench.environment import environment
from llmbench.judge.prompts import JudgeError
from llmbench.metrics.base import Metric
from llmbench.store import ResultStore, RunInfo, SampleRecord, StoredMetric, new_id, now_iso, state
from llmbench.types import MetricValue

#: Key of a judged sample's ``stats`` holding what the judge said and cost (not a metric).
JUDGE_STATS_KEY = "_judge"


@dataclass(frozen=True)
class JudgedRun:
    run_id: str
    task: str
    model: str
    values: list[MetricValue]
    n_samples: int
    n_errors: int
    usage: dict[str, Any]
    baseline: str | None = None  # pairwise: the model B was judged against


def source_run(store: ResultStore, ref: str) -> RunInfo:
    """The stored run a judgement reads; only a finished run (its answers are all there)."""
    info = store.run(ref)
    if state(info) not in ("complete", "incomplete"):
        raise JudgeError(f"run {info.id} is {state(info)} — judge a complete (or incomplete) run")
    if info.task_kind in ("classification", "multiple_choice", "language_modeling", "continuation"):
        raise JudgeError(f"run {info.id} is a {info.task_kind} run — a judge grades free-text answers "
                         "(summarization, translation, QA, generation)")
    return info


def fingerprint(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


def add_usage(total: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    """Token and cost totals of the answers plus the judge's (a judged number's full cost)."""
    cost_parts = [total.get("cost_usd"), usage.get("cost_usd")]
    cost = None if all(c is None for c in cost_parts) else sum(c or 0.0 for c in cost_parts)
    return {"prompt_tokens": int(total.get("prompt_tokens") or 0) + int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(total.get("completion_tokens") or 0) + int(usage.get("completion_tokens") or 0),
            "cost_usd": cost}


def _finite_ci(value: MetricValue) -> MetricValue:
    if value.ci_low is not None and value.ci_high is not None and \
            math.isfinite(value.ci_low) and math.isfinite(value.ci_high):
        return value
    return value.model_copy(update={"ci_low": None, "ci_high": None})


def write_judged_run(store: ResultStore, *, source: RunInfo, task: str, mode: str, judge_spec: str,
                     judge_fp: str, metric: Metric, metric_args: dict[str, Any],
                     records: Sequence[SampleRecord], config: dict[str, Any], usage: dict[str, Any],
                     n_resamples: int, seed: int, tags: Sequence[str] = (), batch_id: str | None = None) -> JudgedRun:
    """Store one judged run (``running`` first, then metrics and status in one transaction);
    ``batch_id``: the batch of the runs it judges (a plan's ``judge:``), else a batch of its own."""
    run_id = new_id()
    store.begin_run(RunInfo(
        id=run_id, batch_id=batch_id or run_id, created_at=now_iso(), finished_at=None, status="running",
        model=source.model, model_kind=source.model_kind, model_identity=source.model_identity,
        task=task, task_kind=source.task_kind, task_version=source.task_version,
        task_fingerprint=fingerprint(source.task_fingerprint, judge_fp), scoring_mode=mode,
        scoring_method=f"judge:{judge_spec}"[:64], primary_metric=metric.primary(),
        config={**config, "labels": None, "metric_stats": {metric.name: metric.describe_stats()},
                "task": {"source": source.run_config.task, "judge": config.get("judge")},
                "model_info": source.run_config.model_info},
        environment=environment(), tags=list(tags), usage={},
    ))
    try:
        stats = [r.stats[metric.name] for r in records if metric.name in r.stats]
        values = metric.aggregate(stats, n_resamples=n_resamples, seed=seed)
        # A value with no valid verdict behind it (every verdict invalid) is undefined: not stored
        # (a store holds numbers), named in the usage instead, never written as a 0.
        undefined = [v.name for v in values if not math.isfinite(v.value)]
        values = [_finite_ci(v) for v in values if math.isfinite(v.value)]
        if undefined:
            usage = {**usage, "undefined_values": undefined}
        n_errors = sum(1 for r in records if r.error is not None)
        store.add_samples(run_id, list(records))
        store.finish_run(run_id, status="complete" if n_errors == 0 else "incomplete",
                         metrics=[StoredMetric(value=v, metric=metric.name, metric_args=metric_args)
                                  for v in values],
                         counts={"n_samples": len(records), "n_errors": n_errors,
                                 "cache_hits": int(usage["judge"]["cache_hits"]),
                                 "cache_misses": int(usage["judge"]["cache_misses"]), "usage": usage})
    except BaseException as err:
        store.mark(run_id, "interrupted" if isinstance(err, KeyboardInterrupt) else "failed",
                   reason=f"{type(err).__name__}: {err}")
        raise
    return JudgedRun(run_id, task, source.model, values, len(records), n_errors, usage)
