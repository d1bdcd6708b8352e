"""The leaderboard's data, built from the store alone: one model x task grid plus per-task detail.

Each cell is the primary metric of the latest *complete* run of a model on a task. The best
cell of a column is marked, and so is every model whose difference from the best is not
significant (paired bootstrap on the sample ids both runs scored, alpha 0.05; with
``n_resamples=0`` nothing is tested and only the best is marked).

Honesty rules, because a ranking is read at a glance:

* Comparability is ``report.comparable``'s policy, the one ``compare`` and ``gate`` apply: a
  cell made under another task version, prompt, scoring mode, metric arguments or number of
  samples than the column's reference run is shown, flagged with the reason, and never ranked
  or starred. The reference is the newest task definition's most common (scoring mode, n)
  among the models, so one odd run does not flag all the others.
* Baselines are reference rows: shown (and tested against the best, so "not better than
  majority" is visible) but never ranked and never the column's star.
* The overall order puts task coverage first: a model ranked on 1 of 5 tasks never outranks
  one ranked on all 5, whatever its mean rank over its one task.
* The same weights (stored content hash) under two labels are flagged on both rows.

The renderers (HTML, Markdown, JSON) only format this structure.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from llmbench.errors import UserError
from llmbench.report import comparable
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
    #: A baseline's cell: a reference value, never ranked or starred.
    reference: bool = False
    tokens: int | None = None
    cost: float | None = None
    latency_p50: float | None = None
    #: The smallest drop a rerun of this size would let the gate catch (``report.power``, one-run bound).
    mde: float | None = None
    #: Where the MDE's variance came from: the paired comparison with the model's previous run of
    #: the task (what tonight's gate would print), or the one-run bound.
    mde_basis: str = ""
    #: HELM worst-case score under this run's perturbed runs (``report.robustness``), if any.
    worst_case: float | None = None


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
    #: What the column's comparable cells share (the reference run's scoring mode and n).
    scoring_mode: str = ""
    n: int = 0
    ref_run: str = ""


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
    #: Tasks on which the model has a ranked (comparable) cell; the overall order sorts by it first.
    coverage: int = 0
    #: Overall position among ranked rows (1 = first); None for baselines and unranked rows.
    position: int | None = None
    #: A baseline: shown below the ranked models as a reference, never ranked.
    reference: bool = False
    #: Other labels whose runs stored the same weights hash: one model under several names.
    same_weights_as: list[str] = field(default_factory=list)


@dataclass
class MetricRow:
    model: str
    run_id: str
    values: dict[str, dict[str, Any]]  # value name -> {value, ci_low, ci_high, metric, higher_is_better}
    scoring_mode: str = ""
    n: int = 0
    comparable: bool = True
    note: str | None = None


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
    #: The robustness view: per clean run with perturbed runs (``report.robustness.Robustness``).
    robustness: list[dict[str, Any]] = field(default_factory=list)

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
    # Perturbed runs are no columns of their own: they appear in the robustness view (and as the
    # clean cell's worst case), so they never add ranked tasks or stars.
    complete = [r for r in runs if r.status == "complete" and not _perturbed(r)]
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
        ref = _reference(task_runs)
        stored = _primary(load.metrics(ref.id), ref.primary_metric)
        if stored is None:
            skipped.append(f"{task}: reference run {ref.id} has no '{ref.primary_metric}' value")
            continue
        col = Column(task=task, kind=ref.task_kind, primary=ref.primary_metric, metric=stored.metric,
                     higher_is_better=stored.value.higher_is_better, version=ref.task_version,
                     fingerprint=ref.task_fingerprint, scoring_mode=ref.scoring_mode,
                     n=comparable.n_scored(ref), ref_run=ref.id)
        cells = {m: _cell(col, r, ref, load) for m, r in task_runs.items()}
        for m, cell in cells.items():  # report.power: what a gate against the previous run could detect
            cell.mde, cell.mde_basis = _mde(cell, col.primary, task_runs[m], runs, load, n_resamples=n_resamples,
                                            seed=seed)
        _mark_best(col, cells, task_runs, load, alpha=alpha, n_resamples=n_resamples, seed=seed)
        for m, cell in cells.items():
            rows[m].cells[task] = cell
        columns.append(col)
        details[task] = _detail(col, task_runs, runs, load, max_samples, cells)
    _flag_same_weights(rows, latest)
    robust = _robustness(store, rows, n_resamples=n_resamples, seed=seed)
    ordered = _order(list(rows.values()))
    return Leaderboard(generated_at=now_iso(), n_runs=len(runs), alpha=alpha, columns=columns, rows=ordered,
                       tasks=details, skipped=skipped, robustness=robust)


def _perturbed(run: RunInfo) -> bool:
    """A perturbed run or a repeat (``--repeats``): shown beside its clean run, never a column."""
    from llmbench.report.noise import repeat_of
    from llmbench.report.robustness import perturbation_of

    return perturbation_of(run) is not None or repeat_of(run) is not None


def _robustness(store: ResultStore, rows: dict[str, Row], *, n_resamples: int, seed: int) -> list[dict[str, Any]]:
    """The robustness view, and each cell's worst case when its run is the clean run measured."""
    from llmbench.report.robustness import find

    found = find(store, n_resamples=n_resamples, seed=seed)
    for r in found:
        cell = rows[r.model].cells.get(r.task) if r.model in rows else None
        if cell is not None and cell.run_id == r.clean_run:
            cell.worst_case = r.worst_case
    return [r.to_json() for r in found]


def _reference(task_runs: dict[str, RunInfo]) -> RunInfo:
    """The run a column's cells are compared with: under the newest task definition (version
    and prompt), the (scoring mode, n) most models share — baselines only when no model ran
    it — and the newest run of that group. Newest-wins alone would let one odd run (another
    scoring mode, a ``--limit``) flag every other model in the column."""
    newest = max(task_runs.values(), key=lambda r: (r.created_at, r.id))
    current = [r for r in task_runs.values()
               if (r.task_version, r.task_fingerprint) == (newest.task_version, newest.task_fingerprint)]
    pool = [r for r in current if r.model_kind != "baseline"] or current
    counts = Counter((r.scoring_mode, comparable.n_scored(r)) for r in pool)
    latest_of = {k: max((r.created_at, r.id) for r in pool if (r.scoring_mode, comparable.n_scored(r)) == k)
                 for k in counts}
    key = max(counts, key=lambda k: (counts[k], latest_of[k]))
    return max((r for r in pool if (r.scoring_mode, comparable.n_scored(r)) == key),
               key=lambda r: (r.created_at, r.id))


def _order(rows: list[Row]) -> list[Row]:
    """Ranked models first — by coverage (ranked tasks), then mean rank — then unranked models,
    then the baselines as reference rows. Positions are shared by exact ties."""
    for row in rows:
        ranks = [c.rank for c in row.cells.values() if c.rank is not None]
        row.coverage = len(ranks)
        row.mean_rank = sum(ranks) / len(ranks) if ranks else None
        row.n_best = sum(1 for c in row.cells.values() if c.best)
    ranked = sorted((r for r in rows if not r.reference and r.mean_rank is not None),
                    key=lambda r: (-r.coverage, r.mean_rank or 0.0, r.model))
    for i, row in enumerate(ranked):
        prev = ranked[i - 1] if i else None
        same = prev is not None and (prev.coverage, prev.mean_rank) == (row.coverage, row.mean_rank)
        row.position = prev.position if same and prev is not None else i + 1
    unranked = sorted((r for r in rows if not r.reference and r.mean_rank is None), key=lambda r: r.model)
    refs = sorted((r for r in rows if r.reference), key=lambda r: r.model)
    return ranked + unranked + refs


def _flag_same_weights(rows: dict[str, Row], latest: dict[tuple[str, str], RunInfo]) -> None:
    """Labels whose latest runs stored one weights hash: flag each row with the others."""
    by_hash: dict[str, set[str]] = {}
    for (model, _), run in latest.items():
        digest = comparable.weights_hash(run)
        if digest is not None:
            by_hash.setdefault(digest, set()).add(model)
    for models in by_hash.values():
        for model in models:
            rows[model].same_weights_as = sorted(models - {model})


def _task_kind(latest: dict[tuple[str, str], RunInfo], task: str) -> str:
    return next(r.task_kind for (_, t), r in latest.items() if t == task)


def _row(model: str, runs: list[RunInfo], load: _Loader) -> Row:
    newest = max(runs, key=lambda r: (r.created_at, r.id))
    desc = describe(newest)
    samples = [s for r in runs for s in load.samples(r.id)]
    return Row(model=model, kind=desc.kind, detail=desc.detail, finetuned_from=desc.finetuned_from,
               last_run=newest.created_at, tokens=_tokens(samples), cost=_cost(samples),
               latency_p50=_latency(samples), reference=newest.model_kind == "baseline")


def _cell(col: Column, run: RunInfo, ref: RunInfo, load: _Loader) -> Cell:
    samples = load.samples(run.id)
    cell = Cell(task=col.task, model=run.model, run_id=run.id, created_at=run.created_at,
                scoring_mode=run.scoring_mode, tokens=_tokens(samples), cost=_cost(samples),
                latency_p50=_latency(samples), reference=run.model_kind == "baseline")
    stored = _primary(load.metrics(run.id), col.primary)
    if stored is None:
        cell.comparable, cell.note = False, f"no '{col.primary}' value in this run"
        return cell
    v = stored.value
    cell.metric, cell.value, cell.ci_low, cell.ci_high, cell.n = stored.metric, v.value, v.ci_low, v.ci_high, v.n
    cell.n = comparable.n_scored(run)
    if run.id != ref.id:
        why = comparable.column_mismatches(ref, run, load.metrics(ref.id), load.metrics(run.id))
        if why:
            cell.comparable = False
            cell.note = f"not comparable with the column (its reference run {ref.id} → this run: {'; '.join(why)})"
    return cell


def _mde(cell: Cell, primary: str, run: RunInfo, runs: list[RunInfo], load: _Loader, *, n_resamples: int,
         seed: int) -> tuple[float | None, str]:
    """The cell's minimum detectable drop (``report.power``): from the paired comparison with the
    model's previous complete run of the same task definition and scoring mode — the number the
    gate prints for that pair — else, before a second run exists, the one-run bound (Bernoulli for
    a right/wrong value, else from the cell's own CI)."""
    from llmbench.report.power import single_run_mde, value_power

    stored = _primary(load.metrics(run.id), primary)
    if stored is None or cell.value is None:
        return None, ""
    try:
        metric = rebuild_metric(run, stored.metric, stored.metric_args)
    except UserError:
        return None, ""
    key = (run.model, run.task, run.task_fingerprint, run.scoring_mode)
    before = [r for r in runs if r.status == "complete" and (r.model, r.task, r.task_fingerprint, r.scoring_mode)
              == key and (r.created_at, r.id) < (run.created_at, run.id)]
    if before:
        prev = max(before, key=lambda r: (r.created_at, r.id))
        ids, sa, sb = align(load.samples(prev.id), load.samples(run.id), stored.metric)
        if ids:
            v = compare_value(metric, stored.value.name, stored.value.higher_is_better, ids, sa, sb,
                              n_resamples=n_resamples, seed=seed)
            found = value_power(v, task=run.task, model=run.model, alpha=0.05)
            if found.mde is not None:
                return found.mde, f"paired with the previous run {prev.id}: {found.basis}"
    binary = metric.indicators.get(stored.value.name) is not None
    mde = single_run_mde(cell.value, cell.ci_low, cell.ci_high, cell.n, metric=stored.metric, binary=binary)
    return mde, "one-run bound (no previous run of this task)" if mde is not None else ""


def _mark_best(col: Column, cells: dict[str, Cell], runs: dict[str, RunInfo], load: _Loader, *,
               alpha: float, n_resamples: int, seed: int) -> None:
    sign = 1.0 if col.higher_is_better else -1.0
    ok = sorted((c for c in cells.values() if c.comparable and c.value is not None),
                key=lambda c: (-sign * (c.value or 0.0), c.model))
    ranked = [c for c in ok if not c.reference]  # baselines are references, never ranked or starred
    if not ranked:
        return
    for i, c in enumerate(ranked):
        c.rank = 1 + sum(1 for o in ranked[:i] if o.value != c.value)
    best_value = ranked[0].value
    best = [c for c in ranked if c.value == best_value]
    for c in best:
        c.best = True
    col.best = [c.model for c in best]
    others = [c for c in ok if not c.best]
    ref = runs[best[0].model]
    ref_samples = load.samples(ref.id)
    stored = _primary(load.metrics(ref.id), col.primary)
    assert stored is not None
    try:
        metric = rebuild_metric(ref, stored.metric, stored.metric_args)
    except UserError as err:  # cannot test (stats version, code metric): leave the others unmarked, say why
        for c in others:
            c.note = f"not tested against the best: {err}"
        return
    for c in others:
        ids, stats_best, stats_c = align(ref_samples, load.samples(runs[c.model].id), stored.metric)
        if not ids:
            c.note = "no sample in common with the best run: not tested"
            continue
        res = compare_value(metric, col.primary, col.higher_is_better, ids, stats_best, stats_c,
                            n_resamples=n_resamples, seed=seed, exact_binary=False, details=False)
        c.p_vs_best = res.p
        c.tied = res.p is not None and res.p >= alpha


def _detail(col: Column, task_runs: dict[str, RunInfo], all_runs: list[RunInfo], load: _Loader,
            max_samples: int | None, cells: dict[str, Cell]) -> TaskDetail:
    show_prompt = col.kind == "qa"
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
        cell = cells.get(model)
        metric_rows.append(MetricRow(model=model, run_id=run.id, values=values, scoring_mode=run.scoring_mode,
                                     n=comparable.n_scored(run), comparable=cell is None or cell.comparable,
                                     note=cell.note if cell is not None and not cell.comparable else None))
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
                if show_prompt and s.prompt and s.prompt.strip() != s.input.strip():
                    # The store keeps the rendered prompt, not the passage alone: for QA it is
                    # what carries the passage the answer must come from.
                    samples[s.sample_id]["context"] = s.prompt
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
