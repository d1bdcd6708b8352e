"""The leaderboard's ratings view: Bradley–Terry ratings of the models a judge compared.

Read from the store alone: every stored pairwise judgement (a ``TASK@pairwise`` run of model B,
metric ``judge_pairwise`` with the baseline A in its arguments, per-sample outcome, consistency
and length difference) of one task by one judge (same judge fingerprint: the same judge model,
prompt and decoding) is one group; within it the latest judgement of each (B, A) pair counts.
Each group becomes one table: per model its rating with the bootstrap CI, raw and
length-controlled win rates, comparisons and position consistency.

The numbers come from ``metrics.ratings.standings`` over ``metrics.ratings.comparison`` of the
stored samples, with the bootstrap resamples and seed the judgement was stored with — the very
calls ``llmbench judge pairwise`` makes on the records it stores, so both show the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from llmbench.metrics.ratings import Comparison, comparison, standings
from llmbench.store import ResultStore, RunInfo

PAIRWISE_SUFFIX = "@pairwise"
_METRIC = "judge_pairwise"


@dataclass(frozen=True)
class RatingsView:
    """One task judged pairwise by one judge: a table of models."""

    task: str  # the judged task (without ``@pairwise``)
    judge: str  # the judge's model spec
    fingerprint: str  # the judge's fingerprint (model, prompt, decoding)
    n_comparisons: int
    converged: bool  # False: a model won or lost every comparison (its rating is not finite)
    n_resamples: int
    seed: int
    runs: list[str]  # the judged runs read
    models: list[dict[str, Any]]  # ``metrics.ratings.ModelStanding`` fields, best rating first

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def view_of(store: ResultStore, runs: list[RunInfo]) -> RatingsView | None:
    """The ratings of exactly these pairwise judged runs (one task, one judge); None when
    they hold no valid verdict."""
    comparisons: list[Comparison] = []
    judge = fingerprint = ""
    for run in runs:
        args = next((m.metric_args for m in store.metrics(run.id) if m.metric == _METRIC), {})
        judge, fingerprint = str(args.get("judge", "")), str(args.get("fingerprint", ""))
        baseline = str(args.get("baseline", ""))
        for record in store.samples(run.id):
            found = comparison(run.model, baseline, record.sample_id, record.stats.get(_METRIC))
            if found is not None:
                comparisons.append(found)
    if not comparisons:
        return None
    last = max(runs, key=lambda r: (r.created_at, r.id))
    n_resamples, seed = int(last.config.get("n_resamples") or 0), int(last.config.get("seed") or 0)
    rows, ratings = standings(comparisons, n_resamples=n_resamples, seed=seed)
    task = runs[0].task.removesuffix(PAIRWISE_SUFFIX)
    return RatingsView(task, judge, fingerprint, ratings.n_comparisons, ratings.converged, n_resamples, seed,
                       [r.id for r in runs], [asdict(r) for r in rows])


def ratings_views(store: ResultStore, runs: list[RunInfo] | None = None) -> list[RatingsView]:
    """Every task a judge compared models on, one view per (task, judge fingerprint), by task."""
    groups: dict[tuple[str, str], dict[tuple[str, str], RunInfo]] = {}
    for run in sorted(runs if runs is not None else store.runs(), key=lambda r: (r.created_at, r.id)):
        if not run.task.endswith(PAIRWISE_SUFFIX) or run.status not in ("complete", "incomplete"):
            continue
        args = next((m.metric_args for m in store.metrics(run.id) if m.metric == _METRIC), None)
        if args is None:
            continue  # no valid verdict: nothing to rate
        group = groups.setdefault((run.task, str(args.get("fingerprint", ""))), {})
        group[(run.model, str(args.get("baseline")))] = run
    views = [view_of(store, list(latest.values())) for _, latest in sorted(groups.items())]
    return [v for v in views if v is not None]
