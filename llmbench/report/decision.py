"""The best model of a task, decided once: the leaderboard, the Markdown report, ``select`` and
``compare`` all show what ``decide_task`` answers, so a user never reads two different winners.

The rules, each written only here:

* **Latest run** (``latest_complete``): per (model, task) the newest *complete* run counts.
* **Primary value** (``primary_value``): the stored value named by the run's ``primary_metric``.
* **Comparable across models** (``selection_key``): the numbers of two models are set side by
  side when the task version, the set of scored sample ids and the primary metric's definition
  (name, arguments, stats layout) agree. The scoring mode (``classify`` vs ``loglikelihood``)
  and the prompt rendering are properties of the *system under test*: they are shown on every
  cell (``Verdict.notes``) and filterable, never a reason to leave a model out. (For one model
  over time — the gate, trends — a changed scoring mode stays a changed identity; that is
  ``report.comparable.mismatches``.)
* **The column's reference** (``reference_key``): the newest task version, then the
  (sample set, metric definition) most models share, then the most samples, then the smaller
  digest — nothing that depends on which run was made last.
* **Baselines are the floor**: a model that is not significantly better than the best
  baseline of the task (paired test on the shared samples, ``report.paired.compare_value``)
  is marked "≤ baseline" with its p-value and is never the best. When no model clears the
  floor, the best baseline is the task's answer (``TaskDecision.best_is_baseline``).
* **The best**: the best primary value among the comparable models above the floor (ties:
  all of them, by name); the other comparable rows are tested against it ("≈" when p ≥ α).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmbench.errors import UserError
from llmbench.report import comparable
from llmbench.report.paired import align, compare_value, rebuild_metric, stored_stats_info
from llmbench.store import ResultStore, RunInfo, SampleRecord, StoredMetric

MetricsOf = Callable[[str], list[StoredMetric]]
SamplesOf = Callable[[str], list[SampleRecord]]


def latest_complete(runs: Iterable[RunInfo]) -> dict[tuple[str, str], RunInfo]:
    """The newest complete run per (model, task) — the one run of a model that counts for a task."""
    out: dict[tuple[str, str], RunInfo] = {}
    for r in sorted(runs, key=lambda r: (r.created_at, r.id)):
        if r.status == "complete":
            out[(r.model, r.task)] = r
    return out


class RunReader:
    """Reads each run's metrics and samples from the store once: the decisions, the leaderboard's
    cells and select's candidates all ask for the same runs."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self._metrics: dict[str, list[StoredMetric]] = {}
        self._samples: dict[str, list[SampleRecord]] = {}

    def metrics(self, run_id: str) -> list[StoredMetric]:
        if run_id not in self._metrics:
            self._metrics[run_id] = self.store.metrics(run_id)
        return self._metrics[run_id]

    def samples(self, run_id: str) -> list[SampleRecord]:
        if run_id not in self._samples:
            self._samples[run_id] = self.store.samples(run_id)
        return self._samples[run_id]


def primary_value(metrics: Sequence[StoredMetric], run: RunInfo) -> StoredMetric | None:
    """The run's primary value (the stored value named by its ``primary_metric``), if stored."""
    return next((m for m in metrics if m.value.name == run.primary_metric), None)


@dataclass(frozen=True)
class SelectionKey:
    """What must agree for two models' numbers of one task to be set side by side."""

    task_version: int
    sample_set: str  # digest of the sorted scored sample ids
    n: int
    metric: str  # the primary metric's definition, as canonical JSON

    def reasons_against(self, ref: SelectionKey) -> list[str]:
        """Why this run is not comparable with the reference (empty: it is)."""
        out = []
        if self.task_version != ref.task_version:
            out.append(f"task version {self.task_version}, the column compares v{ref.task_version}")
        if self.sample_set != ref.sample_set:
            out.append(f"another sample set ({self.n} scored samples, the column compares {ref.n})")
        if self.metric != ref.metric:
            out.append(f"another metric definition ({self.metric} vs {ref.metric})")
        return out


def selection_key(run: RunInfo, stored: StoredMetric, samples: Sequence[SampleRecord]) -> SelectionKey:
    ids = sorted(s.sample_id for s in samples if stored.metric in s.stats)
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
    definition = json.dumps({"metric": stored.metric, "args": stored.metric_args,
                             "stats": stored_stats_info(run, stored.metric)}, sort_keys=True, default=str)
    return SelectionKey(run.task_version, digest, len(ids), definition)


def reference_key(keys: dict[str, SelectionKey], baselines: set[str]) -> SelectionKey:
    """The column's reference (see the module doc); independent of run order."""
    newest = max(k.task_version for k in keys.values())
    current = {m: k for m, k in keys.items() if k.task_version == newest}
    pool = [k for m, k in current.items() if m not in baselines] or list(current.values())
    counts = Counter(pool)
    return max(counts, key=lambda k: (counts[k], k.n, _neg(k.sample_set), _neg(k.metric)))


def _neg(text: str) -> tuple[int, ...]:
    """A key that orders strings in reverse (max picks the lexicographically smallest)."""
    return tuple(-ord(ch) for ch in text)


def system_notes(run: RunInfo, ref: RunInfo) -> list[str]:
    """How this run's system under test differs from the reference run's (shown, not excluded)."""
    out = []
    if run.scoring_mode != ref.scoring_mode:
        out.append(f"scored by {run.scoring_mode}")
    if run.task_fingerprint != ref.task_fingerprint and run.task_version == ref.task_version:
        changed = comparable.dict_diff(ref.run_config.task, run.run_config.task)
        shown = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
        out.append(f"own prompt/task settings ({shown})" if shown else "own prompt/task settings")
    return out


@dataclass
class Verdict:
    """What the decision says about one model's latest run on the task."""

    model: str
    run: RunInfo
    baseline: bool
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    comparable: bool = True
    reasons: list[str] = field(default_factory=list)  # why not comparable (shown inline)
    notes: list[str] = field(default_factory=list)  # system-under-test differences (shown, not excluded)
    rank: int | None = None
    best: bool = False
    tied: bool = False
    p_vs_best: float | None = None
    #: Not significantly above the best baseline (the floor): never the best.
    below_baseline: bool = False
    p_vs_baseline: float | None = None
    untested: str | None = None  # why a paired test could not be made

    @property
    def baseline_label(self) -> str:
        """``≤ baseline (p = …)`` text for every view (empty when above the floor)."""
        if not self.below_baseline:
            return ""
        return "≤ baseline" + ("" if self.p_vs_baseline is None else f" (p = {self.p_vs_baseline:.3g})")


@dataclass
class TaskDecision:
    task: str
    ref: RunInfo  # a run with the reference key (its metric is rebuilt for the tests)
    key: SelectionKey
    primary: str
    metric: str
    metric_args: dict[str, Any]
    higher_is_better: bool
    verdicts: dict[str, Verdict]
    best: list[str] = field(default_factory=list)
    best_is_baseline: bool = False
    floor: str | None = None  # the best comparable baseline
    note: str = ""

    @property
    def answer(self) -> str | None:
        """The one name every view gives as the task's best (None when nothing is comparable)."""
        return self.best[0] if self.best else None

    def summary(self) -> str:
        """One line: the task's best and the floor, as every command prints it."""
        if not self.best:
            return f"{self.task}: no comparable run to decide on"
        who = ", ".join(self.best)
        if self.best_is_baseline:
            return f"{self.task}: best = {who} (a baseline: no model is significantly above it)"
        floor = f"; floor {self.floor}" if self.floor else ""
        return f"{self.task}: best = {who}{floor}"


def decide_task(task: str, runs: dict[str, RunInfo], metrics_of: MetricsOf, samples_of: SamplesOf, *,
                alpha: float = 0.05, n_resamples: int = 1000, seed: int = 0) -> TaskDecision | str:
    """The decision for one task over each model's latest complete run, or why none can be made."""
    stored = {m: primary_value(metrics_of(r.id), r) for m, r in runs.items()}
    keys = {m: selection_key(runs[m], s, samples_of(runs[m].id)) for m, s in stored.items() if s is not None}
    if not keys:
        return f"{task}: no run stores its primary value"
    baselines = {m for m, r in runs.items() if r.model_kind == "baseline"}
    ref_key = reference_key(keys, baselines)
    # The run the column's systems are described against: a model's when one has the key (a
    # baseline answers by rule, whatever mode it recorded), the first by name — never the newest.
    ref_model = min((m for m, k in keys.items() if k == ref_key), key=lambda m: (m in baselines, m))
    ref, ref_stored = runs[ref_model], stored[ref_model]
    assert ref_stored is not None
    decision = TaskDecision(task=task, ref=ref, key=ref_key, primary=ref.primary_metric, metric=ref_stored.metric,
                            metric_args=dict(ref_stored.metric_args),
                            higher_is_better=ref_stored.value.higher_is_better, verdicts={})
    for model in sorted(runs):
        decision.verdicts[model] = _verdict(runs[model], stored[model], keys.get(model), ref, ref_key,
                                            baseline=model in baselines)
    _decide(decision, samples_of, alpha=alpha, n_resamples=n_resamples, seed=seed)
    return decision


def _verdict(run: RunInfo, stored: StoredMetric | None, key: SelectionKey | None, ref: RunInfo,
             ref_key: SelectionKey, *, baseline: bool) -> Verdict:
    v = Verdict(model=run.model, run=run, baseline=baseline, n=comparable.n_scored(run))
    if stored is None or key is None:
        v.comparable, v.reasons = False, [f"no '{run.primary_metric}' value in this run"]
        return v
    v.value, v.ci_low, v.ci_high, v.n = stored.value.value, stored.value.ci_low, stored.value.ci_high, key.n
    v.reasons = key.reasons_against(ref_key)
    v.comparable = not v.reasons
    v.notes = [] if baseline else system_notes(run, ref)
    return v


class _Tester:
    """Paired tests of the task's primary value between two runs (the seeded resample matrix)."""

    def __init__(self, d: TaskDecision, samples_of: SamplesOf, *, n_resamples: int, seed: int) -> None:
        self.d, self.samples_of, self.n_resamples, self.seed = d, samples_of, n_resamples, seed
        try:
            self.metric: Any = rebuild_metric(d.ref, d.metric, d.metric_args)
            self.problem: str | None = None
        except UserError as err:  # stats version or code metric this code cannot read
            self.metric, self.problem = None, f"not tested: {err}"

    def p(self, a: Verdict, b: Verdict) -> tuple[float | None, str | None]:
        """p of B vs A on the samples both scored, or why it has none."""
        if self.metric is None:
            return None, self.problem
        ids, sa, sb = align(self.samples_of(a.run.id), self.samples_of(b.run.id), self.d.metric)
        if not ids:
            return None, "no sample in common: not tested"
        res = compare_value(self.metric, self.d.primary, self.d.higher_is_better, ids, sa, sb,
                            n_resamples=self.n_resamples, seed=self.seed, details=False)
        return res.p, None if res.p is not None else res.note


def _better(d: TaskDecision, a: Verdict, b: Verdict) -> bool:
    assert a.value is not None and b.value is not None
    return a.value > b.value if d.higher_is_better else a.value < b.value


def _decide(d: TaskDecision, samples_of: SamplesOf, *, alpha: float, n_resamples: int, seed: int) -> None:
    sign = 1.0 if d.higher_is_better else -1.0
    ok = sorted((v for v in d.verdicts.values() if v.comparable and v.value is not None),
                key=lambda v: (-sign * (v.value or 0.0), v.model))
    models = [v for v in ok if not v.baseline]
    for i, v in enumerate(models):
        v.rank = 1 + sum(1 for o in models[:i] if o.value != v.value)
    floors = [v for v in ok if v.baseline]
    tester = _Tester(d, samples_of, n_resamples=n_resamples, seed=seed)
    if floors:
        d.floor = floors[0].model
        for v in models:
            p, why = tester.p(floors[0], v)
            v.p_vs_baseline = p
            v.below_baseline = not (_better(d, v, floors[0]) and p is not None and p < alpha)
            v.untested = why
    above = [v for v in models if not v.below_baseline]
    winners = above or floors[:1]
    if not winners:
        d.note = "no comparable run"
        return
    top = [v for v in winners if v.value == winners[0].value]
    for v in top:
        v.best = True
    d.best = [v.model for v in top]
    d.best_is_baseline = not above
    if d.best_is_baseline and models:
        d.note = f"no model is significantly above the best baseline {d.floor}"
    for v in ok:
        if v.best:
            continue
        v.p_vs_best, why = tester.p(top[0], v)
        v.untested = v.untested or why
        v.tied = v.p_vs_best is not None and v.p_vs_best >= alpha


def decide_all(runs: Iterable[RunInfo], metrics_of: MetricsOf, samples_of: SamplesOf, *,
               tasks: Iterable[str] | None = None, alpha: float = 0.05, n_resamples: int = 1000,
               seed: int = 0) -> dict[str, TaskDecision | str]:
    """``decide_task`` for every task (or the named ones) over the latest complete runs."""
    metrics_of, samples_of = functools.cache(metrics_of), functools.cache(samples_of)  # each run read once
    latest = latest_complete(runs)
    wanted = sorted({t for _, t in latest}) if tasks is None else list(tasks)
    out: dict[str, TaskDecision | str] = {}
    for task in wanted:
        task_runs = {m: r for (m, t), r in latest.items() if t == task}
        if task_runs:
            out[task] = decide_task(task, task_runs, metrics_of, samples_of, alpha=alpha,
                                    n_resamples=n_resamples, seed=seed)
    return out
