"""The leaderboard's data, built from the store alone: one model x task grid plus per-task detail.

Each cell is the primary metric of the latest *complete* run of a model on a task. The best
cell of a column is marked, and so is every model whose difference from the best is not
significant (paired bootstrap on the sample ids both runs scored, alpha 0.05; with
``n_resamples=0`` nothing is tested and only the best is marked). A cell made under another
task version or prompt than the column's newest run is shown but flagged and never marked:
its number is not comparable.
The renderers (HTML, Markdown, JSON) only format this structure.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from llmbench.errors import UserError
from llmbench.report.breakdown import TaskBreakdown, build_breakdown
from llmbench.report.identity import describe
from llmbench.report.paired import align, compare_value, rebuild_metric, sample_score
from llmbench.store import ResultStore, RunInfo, SampleRecord, StoredMetric, now_iso

KIND_ORDER = {"classification": 0, "translation": 1, "qa": 2, "summarization": 3}


@dataclass
class Cell:
    task: str
    model: str
    run_id: str
    created_at: str
    scoring_mode: str
    metric: str = ""
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    best: bool = False
    tied: bool = False
    p_vs_best: float | None = None
    rank: int | None = None
    comparable: bool = True
    note: str | None = None
    tokens: int | None = None
    cost: float | None = None
    latency_p50: float | None = None


@dataclass
class Column:
    task: str
    kind: str
    primary: str
    metric: str
    higher_is_better: bool
    version: int
    fingerprint: str
    best: list[str] = field(default_factory=list)


@dataclass
class Row:
    model: str
    kind: str
    detail: str
    finetuned_from: str | None
    last_run: str
    cells: dict[str, Cell] = field(default_factory=dict)
    tokens: int | None = None
    cost: float | None = None
    latency_p50: float | None = None
    mean_rank: float | None = None
    n_best: int = 0


@dataclass
class MetricRow:
    model: str
    run_id: str
    values: dict[str, dict[str, Any]]  # value name -> {value, ci_low, ci_high, metric, higher_is_better}


@dataclass
class TaskDetail:
    column: Column
    value_names: list[str]
    metrics: list[MetricRow]
    sample_order: list[str]
    samples: dict[str, dict[str, Any]]  # id -> {input, context?, refs}
    predictions: dict[str, dict[str, dict[str, Any]]]  # model -> id -> {p, s, e}
    n_total: int
    history: dict[str, list[dict[str, Any]]]  # model -> points, oldest first
    breakdown: TaskBreakdown | None = None  # reliability diagrams, slices


@dataclass
class Leaderboard:
    generated_at: str
    n_runs: int
    alpha: float
    columns: list[Column]
    rows: list[Row]
    tasks: dict[str, TaskDetail]
    skipped: list[str] = field(default_factory=list)

    def to_json(self, *, with_samples: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_samples:
            for detail in data["tasks"].values():
                for key in ("samples", "predictions", "sample_order"):
                    detail.pop(key)
        return data


def _primary(metrics: list[StoredMetric], name: str) -> StoredMetric | None:
    return next((m for m in metrics if m.value.name == name), None)


def _latency(samples: list[SampleRecord]) -> float | None:
    lat = [s.latency_s for s in samples if s.latency_s is not None]
    return statistics.median(lat) if lat else None


def _tokens(samples: list[SampleRecord]) -> int | None:
    known = [(s.prompt_tokens or 0) + (s.completion_tokens or 0) for s in samples
             if s.prompt_tokens is not None or s.completion_tokens is not None]
    return sum(known) if known else None


def _cost(samples: list[SampleRecord]) -> float | None:
    known = [s.cost_usd for s in samples if s.cost_usd is not None]
    return sum(known) if known else None


class _Loader:
    """Reads each run's metrics and samples once."""

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


def build(store: ResultStore, *, alpha: float = 0.05, n_resamples: int = 1000, seed: int = 0,
          max_samples: int | None = None) -> Leaderboard:
    runs = store.runs()
    complete = [r for r in runs if r.status == "complete"]
    load = _Loader(store)
    latest: dict[tuple[str, str], RunInfo] = {}
    for r in complete:  # store.runs() is oldest first, so the last one wins
        latest[(r.model, r.task)] = r
    tasks = sorted({t for _, t in latest}, key=lambda t: (KIND_ORDER.get(_task_kind(latest, t), 9), t))
    models = sorted({m for m, _ in latest})
    columns: list[Column] = []
    rows = {m: _row(m, [r for (mm, _), r in latest.items() if mm == m], load) for m in models}
    details: dict[str, TaskDetail] = {}
    skipped: list[str] = []
    for task in tasks:
        task_runs = {m: r for (m, t), r in latest.items() if t == task}
        newest = max(task_runs.values(), key=lambda r: (r.created_at, r.id))
        stored = _primary(load.metrics(newest.id), newest.primary_metric)
        if stored is None:
            skipped.append(f"{task}: newest run {newest.id} has no '{newest.primary_metric}' value")
            continue
        col = Column(task=task, kind=newest.task_kind, primary=newest.primary_metric, metric=stored.metric,
                     higher_is_better=stored.value.higher_is_better, version=newest.task_version,
                     fingerprint=newest.task_fingerprint)
        cells = {m: _cell(col, r, load) for m, r in task_runs.items()}
        _mark_best(col, cells, task_runs, load, alpha=alpha, n_resamples=n_resamples, seed=seed)
        for m, cell in cells.items():
            rows[m].cells[task] = cell
        columns.append(col)
        details[task] = _detail(col, task_runs, runs, load, max_samples)
    for row in rows.values():
        ranks = [c.rank for c in row.cells.values() if c.rank is not None]
        row.mean_rank = sum(ranks) / len(ranks) if ranks else None
        row.n_best = sum(1 for c in row.cells.values() if c.best)
    ordered = sorted(rows.values(), key=lambda r: (r.mean_rank is None, r.mean_rank or 0.0, r.model))
    return Leaderboard(generated_at=now_iso(), n_runs=len(runs), alpha=alpha, columns=columns, rows=ordered,
                       tasks=details, skipped=skipped)


def _task_kind(latest: dict[tuple[str, str], RunInfo], task: str) -> str:
    return next(r.task_kind for (_, t), r in latest.items() if t == task)


def _row(model: str, runs: list[RunInfo], load: _Loader) -> Row:
    newest = max(runs, key=lambda r: (r.created_at, r.id))
    desc = describe(newest)
    samples = [s for r in runs for s in load.samples(r.id)]
    return Row(model=model, kind=desc.kind, detail=desc.detail, finetuned_from=desc.finetuned_from,
               last_run=newest.created_at, tokens=_tokens(samples), cost=_cost(samples),
               latency_p50=_latency(samples))


def _cell(col: Column, run: RunInfo, load: _Loader) -> Cell:
    samples = load.samples(run.id)
    cell = Cell(task=col.task, model=run.model, run_id=run.id, created_at=run.created_at,
                scoring_mode=run.scoring_mode, tokens=_tokens(samples), cost=_cost(samples),
                latency_p50=_latency(samples))
    stored = _primary(load.metrics(run.id), col.primary)
    if stored is None:
        cell.comparable, cell.note = False, f"no '{col.primary}' value in this run"
        return cell
    v = stored.value
    cell.metric, cell.value, cell.ci_low, cell.ci_high, cell.n = stored.metric, v.value, v.ci_low, v.ci_high, v.n
    if run.task_version != col.version or run.task_fingerprint != col.fingerprint:
        cell.comparable = False
        cell.note = (f"made with task v{run.task_version} / prompt {run.task_fingerprint}; the newest run "
                     f"uses v{col.version} / {col.fingerprint} — not comparable")
    return cell


def _mark_best(col: Column, cells: dict[str, Cell], runs: dict[str, RunInfo], load: _Loader, *,
               alpha: float, n_resamples: int, seed: int) -> None:
    ok = [c for c in cells.values() if c.comparable and c.value is not None]
    if not ok:
        return
    sign = 1.0 if col.higher_is_better else -1.0
    ok.sort(key=lambda c: (-sign * (c.value or 0.0), c.model))
    for i, c in enumerate(ok):
        c.rank = 1 + sum(1 for o in ok[:i] if o.value != c.value)
    best_value = ok[0].value
    best = [c for c in ok if c.value == best_value]
    for c in best:
        c.best = True
    col.best = [c.model for c in best]
    ref = runs[best[0].model]
    ref_samples = load.samples(ref.id)
    stored = _primary(load.metrics(ref.id), col.primary)
    assert stored is not None
    try:
        metric = rebuild_metric(ref, stored.metric, stored.metric_args)
    except UserError as err:  # cannot test (stats version, code metric): leave the others unmarked, say why
        for c in ok[len(best):]:
            c.note = f"not tested against the best: {err}"
        return
    for c in ok[len(best):]:
        ids, stats_best, stats_c = align(ref_samples, load.samples(runs[c.model].id), stored.metric)
        if not ids:
            c.note = "no sample in common with the best run: not tested"
            continue
        res = compare_value(metric, col.primary, col.higher_is_better, ids, stats_best, stats_c,
                            n_resamples=n_resamples, seed=seed, exact_binary=False, details=False)
        c.p_vs_best = res.p
        c.tied = res.p is not None and res.p >= alpha


def _detail(col: Column, task_runs: dict[str, RunInfo], all_runs: list[RunInfo], load: _Loader,
            max_samples: int | None) -> TaskDetail:
    metric_rows: list[MetricRow] = []
    names: list[str] = []
    order: list[str] = []
    samples: dict[str, dict[str, Any]] = {}
    predictions: dict[str, dict[str, dict[str, Any]]] = {}
    for model in sorted(task_runs):
        run = task_runs[model]
        values: dict[str, dict[str, Any]] = {}
        for m in load.metrics(run.id):
            values[m.value.name] = {"value": m.value.value, "ci_low": m.value.ci_low, "ci_high": m.value.ci_high,
                                    "metric": m.metric, "higher_is_better": m.value.higher_is_better}
            if m.value.name not in names:
                names.append(m.value.name)
        metric_rows.append(MetricRow(model=model, run_id=run.id, values=values))
        stored = _primary(load.metrics(run.id), col.primary)
        scorer = None
        if stored is not None:
            try:
                scorer = rebuild_metric(run, stored.metric, stored.metric_args)
            except UserError:  # browsing still works without per-sample scores
                scorer = None
        preds: dict[str, dict[str, Any]] = {}
        for s in load.samples(run.id):
            if s.sample_id not in samples:
                order.append(s.sample_id)
                samples[s.sample_id] = {"input": s.input, "refs": s.references}
            stats = s.stats.get(stored.metric) if stored is not None else None
            score = sample_score(scorer, col.primary, stats) if stats is not None else None
            preds[s.sample_id] = {"p": s.prediction, "s": score, "e": s.error}
        predictions[model] = preds
    n_total = len(order)
    if max_samples is not None and n_total > max_samples:
        keep = set(order[:max_samples])
        order = order[:max_samples]
        samples = {k: v for k, v in samples.items() if k in keep}
        predictions = {m: {k: v for k, v in p.items() if k in keep} for m, p in predictions.items()}
    names = sorted(names, key=lambda n: n != col.primary)  # stable: primary first, then as stored
    return TaskDetail(column=col, value_names=names, metrics=metric_rows, sample_order=order, samples=samples,
                      predictions=predictions, n_total=n_total, history=_history(col, all_runs, load),
                      breakdown=build_breakdown(task_runs, col.metric, col.primary, load.metrics, load.samples))


def _history(col: Column, all_runs: list[RunInfo], load: _Loader) -> dict[str, list[dict[str, Any]]]:
    """Every complete run of the task, per model, oldest first: the nightly trend."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in all_runs:
        if r.task != col.task or r.status != "complete":
            continue
        stored = _primary(load.metrics(r.id), col.primary)
        if stored is None:
            continue
        v = stored.value
        out.setdefault(r.model, []).append({
            "run_id": r.id, "created_at": r.created_at, "value": v.value, "ci_low": v.ci_low,
            "ci_high": v.ci_high, "tags": r.tags, "comparable": r.task_fingerprint == col.fingerprint
            and r.task_version == col.version})
    return out
