"""``llmbench select``: the best model for some tasks under a budget, answered from stored runs.

Why from stored runs only: the question ("which model should we use, at what cost and
latency?") must be answerable without loading a model, and the answer must rest on what the
runs measured. Which runs count and which model is a task's best is ``report.decision``'s
answer, the one the leaderboard and ``compare`` show: each model's latest complete run, set
side by side when task version, scored sample set and metric definition agree (the scoring
mode is a property of the model, shown, never a reason to exclude it), and a model not
significantly above the task's best baseline is excluded as "≤ baseline" (with its p-value),
so that with no limits ``select`` names the leaderboard's star (or the baseline, when no
model clears it).

* **score**: the task's primary metric. Over several tasks, the mean of the primary values on
  the unit scale (a 0-100 value divided by 100); tasks whose primaries point in different
  directions (a score and a loss) cannot be averaged and are refused.
* **cost per 1,000 samples**: an API run's measured cost (the sum of its samples' cost); a
  local model's measured compute time (the sum of its samples' latency, which the adapters
  measure as batch time / batch size) times ``local_cost_per_hour``; a baseline costs
  nothing. An API run without a recorded cost has an unknown cost and cannot meet a cost
  limit.
* **p95 latency**: the 95th percentile of the per-sample latencies pooled over the tasks
  (for a local model that is its per-sample share of a batch, not a request's wait).

The best qualifying model is the one with the best score; the others that qualify are tested
against it with the paired machinery of ``report.paired`` on the samples both scored (McNemar
for accuracy-type values, else a paired bootstrap). Over several tasks a model is "not
significantly different" only when no task shows a significant difference (each tested at
``alpha``) — say so rather than pretend one test covers a mean of tasks.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from llmbench.report.decision import RunReader, TaskDecision, Verdict, decide_all, latest_complete, primary_value
from llmbench.report.errors import ReportError
from llmbench.report.paired import align, compare_value, rebuild_metric, stored_stats_info
from llmbench.report.robustness import exclude_unrobust
from llmbench.store import ResultStore, RunInfo, SampleRecord, StoredMetric

#: What a local model's compute time costs when the user states nothing (USD per hour; about
#: one cloud GPU of the A10G/L4 class on demand). Printed with every answer that uses it.
DEFAULT_LOCAL_COST_PER_HOUR = 1.0


@dataclass
class Constraints:
    max_cost_per_1k: float | None = None
    max_p95_latency_s: float | None = None
    min_score: float | None = None
    local_cost_per_hour: float = DEFAULT_LOCAL_COST_PER_HOUR
    alpha: float = 0.05
    #: HELM worst-case score under the perturbed runs, unit scale (``report.robustness``).
    min_robustness: float | None = None


@dataclass
class TaskScore:
    task: str
    run_id: str
    metric: str
    value_name: str
    value: float
    n: int
    scoring_mode: str = ""
    p_vs_baseline: float | None = None


@dataclass
class Candidate:
    model: str
    kind: str
    score: float | None = None
    cost_per_1k: float | None = None
    cost_basis: str = ""
    p95_latency_s: float | None = None
    tasks: list[TaskScore] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    p_vs_best: dict[str, float | None] = field(default_factory=dict)
    tied_with_best: bool = False
    #: Task -> worst-case score under perturbation (unit scale), when --min-robustness asked.
    worst_case: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Selection:
    tasks: list[str]
    constraints: Constraints
    higher_is_better: bool
    best: Candidate | None
    tied: list[Candidate]
    qualifying: list[Candidate]
    excluded: list[Candidate]
    notes: list[str] = field(default_factory=list)
    #: Each task's shared decision (``report.decision``), as the leaderboard states it.
    decisions: dict[str, str] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """Why no model qualifies (one line), or "" when one does."""
        if self.best is not None:
            return ""
        if not self.excluded:
            return f"no complete run of any model on {', '.join(self.tasks)}"
        return "no model meets the constraints — " + "; ".join(
            f"{c.model}: {', '.join(c.excluded)}" for c in self.excluded)

    def to_json(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "constraints": asdict(self.constraints),
                "higher_is_better": self.higher_is_better,
                "best": asdict(self.best) if self.best else None,
                "not_significantly_different": [asdict(c) for c in self.tied],
                "qualifying": [asdict(c) for c in self.qualifying],
                "excluded": [asdict(c) for c in self.excluded],
                "reason": self.reason or None, "notes": self.notes,
                "decisions": self.decisions}


def _unit(run: RunInfo, stored: StoredMetric) -> float:
    info = stored_stats_info(run, stored.metric) or {}
    return stored.value.value / 100.0 if info.get("scale") == "percent" else stored.value.value


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else statistics.quantiles(values, n=100, method="inclusive")[94]


def _cost(kind: str, samples: list[SampleRecord], n: int, per_hour: float) -> tuple[float | None, str]:
    if kind == "baseline":
        return 0.0, "baseline (no model cost)"
    if kind == "local":
        seconds = sum(s.latency_s or 0.0 for s in samples)
        return per_hour * seconds / 3600.0 / n * 1000.0, f"local: {seconds:.1f} s measured × ${per_hour:g}/h"
    known = [s.cost_usd for s in samples if s.cost_usd is not None]
    if not known:
        return None, "api: no cost recorded"
    return sum(known) / n * 1000.0, "api: measured cost"


def _validate(tasks: list[str], constraints: Constraints) -> None:
    if not tasks:
        raise ReportError("select needs at least one --task")
    if not 0.0 < constraints.alpha < 1.0:
        raise ReportError(f"--alpha must be between 0 and 1, got {constraints.alpha}")
    if constraints.local_cost_per_hour < 0:
        raise ReportError("--local-cost-per-hour must be >= 0")


def _decisions(store: ResultStore, read: RunReader, tasks: list[str], constraints: Constraints, *,
               n_resamples: int, seed: int) -> dict[str, TaskDecision]:
    """The shared decision of every task (``report.decision``), or a one-line refusal."""
    runs = store.runs()
    known = {t for _, t in latest_complete(runs)}
    missing = [t for t in tasks if t not in known]
    if missing:
        raise ReportError(f"no complete run of task {', '.join(missing)} in the store — run it first "
                          f"(tasks with runs: {', '.join(sorted(known)) or 'none'})")
    out: dict[str, TaskDecision] = {}
    for task, d in decide_all(runs, read.metrics, read.samples, tasks=tasks, alpha=constraints.alpha,
                              n_resamples=n_resamples, seed=seed).items():
        if isinstance(d, str):
            raise ReportError(d)
        out[task] = d
    if len({d.higher_is_better for d in out.values()}) > 1:
        raise ReportError("the tasks' primary metrics point in different directions (a score and a loss) — "
                          "select on them one at a time")
    return out


def _candidate(model: str, decisions: dict[str, TaskDecision], read: RunReader, constraints: Constraints,
               multi: bool) -> Candidate | None:
    """One model's candidacy: its verdict on each task, its mean score, cost and latency."""
    verdicts = {t: d.verdicts.get(model) for t, d in decisions.items()}
    present = [v for v in verdicts.values() if v is not None]
    if not present:
        return None  # a model that never ran these tasks is not a candidate at all
    cand = Candidate(model=model, kind=present[0].run.model_kind)
    values, pooled, lat = [], [], []
    for t, v in verdicts.items():
        reason = _exclusion(t, v, decisions[t])
        if reason or v is None:
            cand.excluded.append(reason or f"no complete run on {t}")
            continue
        stored = primary_value(read.metrics(v.run.id), v.run)
        assert stored is not None  # a comparable verdict has its primary value
        cand.tasks.append(TaskScore(task=t, run_id=v.run.id, metric=stored.metric, value_name=stored.value.name,
                                    value=stored.value.value, n=v.n, scoring_mode=v.run.scoring_mode,
                                    p_vs_baseline=v.p_vs_baseline))
        values.append(_unit(v.run, stored) if multi else stored.value.value)
        recs = read.samples(v.run.id)
        pooled += recs
        lat += [s.latency_s for s in recs if s.latency_s is not None]
    if cand.excluded:
        return cand
    cand.score = sum(values) / len(values)
    cand.cost_per_1k, cand.cost_basis = _cost(cand.kind, pooled, max(len(pooled), 1),
                                              constraints.local_cost_per_hour)
    cand.p95_latency_s = _p95(lat)
    return cand


def _exclusion(task: str, v: Verdict | None, d: TaskDecision) -> str:
    """Why a model's run on ``task`` cannot count for selection ("" when it counts)."""
    if v is None:
        return f"no complete run on {task}"
    if not v.comparable:
        return f"{task}: run {v.run.id} not comparable ({'; '.join(v.reasons)})"
    if v.below_baseline:
        return f"{task}: {v.baseline_label} {d.floor}"
    return ""


def select(store: ResultStore, tasks: list[str], constraints: Constraints, *, n_resamples: int = 1000,
           seed: int = 0) -> Selection:
    """The best model on ``tasks`` within ``constraints`` (see the module doc)."""
    _validate(tasks, constraints)
    read = RunReader(store)
    decisions = _decisions(store, read, tasks, constraints, n_resamples=n_resamples, seed=seed)
    hib = next(iter(decisions.values())).higher_is_better
    models = sorted({m for d in decisions.values() for m in d.verdicts})
    candidates = [c for c in (_candidate(m, decisions, read, constraints, len(tasks) > 1) for m in models)
                  if c is not None]
    for cand in candidates:
        if not cand.excluded:
            _check(cand, constraints, hib)
    if constraints.min_robustness is not None:  # report.robustness: worst case under the perturbed runs
        exclude_unrobust(store, candidates, constraints.min_robustness, hib)
    qualifying = sorted((c for c in candidates if not c.excluded),
                        key=lambda c: ((-1 if hib else 1) * (c.score or 0.0), c.model))
    result = Selection(tasks=tasks, constraints=constraints, higher_is_better=hib,
                       best=qualifying[0] if qualifying else None, tied=[], qualifying=qualifying,
                       excluded=[c for c in candidates if c.excluded],
                       decisions={t: d.summary() for t, d in decisions.items()})
    if len(tasks) > 1:
        result.notes.append("score: mean of the tasks' primary values on the unit scale; 'not significantly "
                            "different' means no task shows a significant paired difference")
    if any(c.kind == "local" for c in candidates):
        result.notes.append(f"local models' cost: measured compute time × ${constraints.local_cost_per_hour:g}/h "
                            "(--local-cost-per-hour)")
    if result.best is not None:
        _test_against_best(store, result, read.samples, n_resamples=n_resamples, seed=seed)
    return result


def _check(cand: Candidate, c: Constraints, hib: bool) -> None:
    if c.max_cost_per_1k is not None:
        if cand.cost_per_1k is None:
            cand.excluded.append(f"cost unknown ({cand.cost_basis}); --max-cost-per-1k-samples needs it")
        elif cand.cost_per_1k > c.max_cost_per_1k:
            cand.excluded.append(f"cost ${cand.cost_per_1k:.4g} per 1k samples > ${c.max_cost_per_1k:g}")
    if c.max_p95_latency_s is not None:
        if cand.p95_latency_s is None:
            cand.excluded.append("no latency recorded; --max-p95-latency needs it")
        elif cand.p95_latency_s > c.max_p95_latency_s:
            cand.excluded.append(f"p95 latency {cand.p95_latency_s:.3g} s > {c.max_p95_latency_s:g} s")
    if c.min_score is None or cand.score is None:
        return
    if (cand.score < c.min_score) if hib else (cand.score > c.min_score):
        word = "below" if hib else "above"
        cand.excluded.append(f"score {cand.score:.4g} {word} the required {c.min_score:g}")


def _test_against_best(store: ResultStore, result: Selection, samples_of: Any, *, n_resamples: int,
                       seed: int) -> None:
    best = result.best
    assert best is not None
    for cand in result.qualifying[1:]:
        significant = False
        for tb, tc in zip(best.tasks, cand.tasks, strict=True):
            run_b, run_c = store.run(tb.run_id), store.run(tc.run_id)
            ids, stats_b, stats_c = align(samples_of(run_b.id), samples_of(run_c.id), tb.metric)
            if not ids:
                cand.p_vs_best[tb.task] = None
                significant = True  # untestable: never claim "no different"
                continue
            metric = rebuild_metric(run_b, tb.metric, next(
                (m.metric_args for m in store.metrics(run_b.id) if m.metric == tb.metric), {}))
            res = compare_value(metric, tb.value_name, result.higher_is_better, ids, stats_b, stats_c,
                                n_resamples=n_resamples, seed=seed, details=False)
            cand.p_vs_best[tb.task] = res.p
            significant |= res.p is None or res.p < result.constraints.alpha
        cand.tied_with_best = not significant
        if cand.tied_with_best:
            result.tied.append(cand)
