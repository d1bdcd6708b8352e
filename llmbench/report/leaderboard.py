"""The leaderboard's data, built from the store alone: one model x task grid plus per-task detail.

Each cell is the primary metric of the latest *complete* run of a model on a task. Which
cells are comparable, which model is the column's best, which are "≈" the best and which are
"≤ baseline" is ``report.decision``'s answer — the one ``select``, ``compare`` and the Markdown
report give too; this module only lays it out:

* A cell made under another task version, sample set or metric definition than the column's
  reference is shown with the reason written out, never ranked or starred. A cell scored in
  another mode or with another prompt is a different *system*: ranked, with the mode shown.
* Baselines are reference rows and the floor: never ranked; a model not significantly above
  the best baseline says "≤ baseline" (with the p-value) and gets no star. When no model
  clears the floor, the column's best is that baseline (and says so).
* The overall order puts task coverage first: a model ranked on 1 of 5 tasks never outranks
  one ranked on all 5, whatever its mean rank over its one task. The aggregate (mean win
  rate with coverage) is ``AGGREGATE_DEFINITION``.
* The same weights (stored content hash) under two labels are flagged on both rows.

The renderers (HTML, Markdown, JSON) only format this structure.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from llmbench.errors import UserError
from llmbench.report import comparable
from llmbench.report.breakdown import TaskBreakdown, build_breakdown
from llmbench.report.decision import RunReader, TaskDecision, Verdict, decide_task, latest_complete, primary_value
from llmbench.report.identity import describe
from llmbench.report.paired import align, compare_value, rebuild_metric, sample_score
from llmbench.report.ratings import ratings_views
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
    #: Not significantly above the task's best baseline (``floor``): "≤ baseline", never starred.
    below_baseline: bool = False
    p_vs_baseline: float | None = None
    floor: str | None = None
    badge: str = ""
    #: How this system under test differs from the column's reference run (scoring mode, prompt):
    #: shown, never a reason to exclude.
    system: list[str] = field(default_factory=list)
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
    best_is_baseline: bool = False
    floor: str | None = None
    note: str = ""
    summary: str = ""
    #: Every scoring mode among the column's runs (a property of each system, shown and filterable).
    modes: list[str] = field(default_factory=list)


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
    #: The aggregate (``AGGREGATE_DEFINITION``): mean win rate over the tasks with a comparable
    #: number, and on how many of all tasks it rests.
    win_rate: float | None = None
    win_tasks: int = 0


#: Written on the overview and in the Markdown report next to the numbers it defines.
AGGREGATE_DEFINITION = (
    "Mean win rate: on each task, the share of the other rows with a comparable number (models and "
    "baselines) that this row beats on the primary metric (a tie counts one half); averaged over the "
    "tasks where the row has a comparable number. Coverage k/N: the tasks it is averaged over, of all "
    "N tasks — a high win rate on few tasks says less than one on all.")


@dataclass
class MetricRow:
    model: str
    run_id: str
    values: dict[str, dict[str, Any]]  # value name -> {value, ci_low, ci_high, metric, higher_is_better}
    scoring_mode: str = ""
    n: int = 0
    comparable: bool = True
    note: str | None = None
    badge: str = ""


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
    #: model -> id -> everything else the store keeps about the sample (the sample page shows it).
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


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
    #: The ratings view: per task judged pairwise, Bradley–Terry ratings (``report.ratings.RatingsView``).
    ratings: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, *, with_samples: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_samples:
            for detail in data["tasks"].values():
                for key in ("samples", "predictions", "sample_order", "records"):
                    detail.pop(key)
        return data


def _value(metrics: list[StoredMetric], name: str) -> StoredMetric | None:
    return next((m for m in metrics if m.value.name == name), None)


#: Fields of a stored sample the sample page leaves out (shown elsewhere or internal).
_NOT_SHOWN = frozenset({"idx", "sample_id", "input", "references", "stats", "answer"})


def sample_fields(s: SampleRecord) -> dict[str, Any]:
    """Every field the store keeps about one answered sample beyond input and reference — the
    rendered prompt, prediction, raw output, parsed answer, per-choice log-likelihoods, tokens,
    latency, cost, error, whatever the record holds — and the scorer's own per-sample keys
    (stats entries starting with ``_``). Read generically, so a field the store gains shows up
    on the sample page without a change here."""
    dumped = s.model_dump(mode="json")
    out = {k: v for k, v in dumped.items() if k not in _NOT_SHOWN and v not in (None, "", [], {})}
    # the typed answer record (raw output, per-choice log-likelihoods, finish reason, ...), flat
    out |= {k: v for k, v in dumped["answer"].items() if v not in (None, "", [], {}, False)}
    extras = {f"{metric}.{k.lstrip('_')}": v for metric, stats in s.stats.items() if isinstance(stats, dict)
              for k, v in stats.items() if k.startswith("_") and v not in (None, "", [], {})}
    top = {k.lstrip("_"): v for k, v in s.stats.items() if k.startswith("_") and v not in (None, "", [], {})}
    return {**out, **top, **extras}


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


def build(store: ResultStore, *, alpha: float = 0.05, n_resamples: int = 1000, seed: int = 0,
          max_samples: int | None = None) -> Leaderboard:
    runs = store.runs()
    # Perturbed runs and repeats are no columns of their own: they appear in the robustness view
    # (and as the clean cell's worst case), so they never add ranked tasks or stars.
    load = RunReader(store)
    latest = latest_complete([r for r in runs if not _perturbed(r)])
    tasks = sorted({t for _, t in latest}, key=lambda t: (KIND_ORDER.get(_task_kind(latest, t), 9), t))
    models = sorted({m for m, _ in latest})
    columns: list[Column] = []
    rows = {m: _row(m, [r for (mm, _), r in latest.items() if mm == m], load) for m in models}
    details: dict[str, TaskDetail] = {}
    skipped: list[str] = []
    for task in tasks:
        task_runs = {m: r for (m, t), r in latest.items() if t == task}
        decision = decide_task(task, task_runs, load.metrics, load.samples, alpha=alpha,
                               n_resamples=n_resamples, seed=seed)
        if isinstance(decision, str):
            skipped.append(decision)
            continue
        col = _column(decision, task_runs)
        cells = {m: _cell(col, v, load) for m, v in decision.verdicts.items()}
        for m, cell in cells.items():  # report.power: what a gate against the previous run could detect
            cell.mde, cell.mde_basis = _mde(cell, col.primary, task_runs[m], runs, load, n_resamples=n_resamples,
                                            seed=seed)
        for m, cell in cells.items():
            rows[m].cells[task] = cell
        columns.append(col)
        details[task] = _detail(col, task_runs, runs, load, max_samples, cells)
    _flag_same_weights(rows, latest)
    robust = _robustness(store, rows, n_resamples=n_resamples, seed=seed)
    ordered = _order(list(rows.values()))
    _aggregate(ordered, columns)
    return Leaderboard(generated_at=now_iso(), n_runs=len(runs), alpha=alpha, columns=columns, rows=ordered,
                       tasks=details, skipped=skipped, robustness=robust,
                       ratings=[v.to_json() for v in ratings_views(store, runs)])


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


def _column(d: TaskDecision, task_runs: dict[str, RunInfo]) -> Column:
    ref = d.ref
    return Column(task=d.task, kind=ref.task_kind, primary=d.primary, metric=d.metric,
                  higher_is_better=d.higher_is_better, version=d.key.task_version,
                  fingerprint=ref.task_fingerprint, scoring_mode=ref.scoring_mode, n=d.key.n,
                  ref_run=ref.id, best=list(d.best), best_is_baseline=d.best_is_baseline,
                  floor=d.floor, note=d.note, summary=d.summary(),
                  modes=sorted({r.scoring_mode for r in task_runs.values()}))


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


def _aggregate(rows: list[Row], columns: list[Column]) -> None:
    """Each row's mean win rate and its coverage (see ``AGGREGATE_DEFINITION``)."""
    for row in rows:
        rates = []
        for col in columns:
            cell = row.cells.get(col.task)
            if cell is None or not cell.comparable or cell.value is None:
                continue
            others = [r.cells[col.task] for r in rows if r is not row and col.task in r.cells]
            values = [c.value for c in others if c.comparable and c.value is not None]
            if not values:
                continue
            sign = 1.0 if col.higher_is_better else -1.0
            wins = sum(1.0 if sign * (cell.value - v) > 0 else 0.5 if cell.value == v else 0.0 for v in values)
            rates.append(wins / len(values))
        row.win_tasks = len(rates)
        row.win_rate = sum(rates) / len(rates) if rates else None


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


def _row(model: str, runs: list[RunInfo], load: RunReader) -> Row:
    newest = max(runs, key=lambda r: (r.created_at, r.id))
    desc = describe(newest)
    samples = [s for r in runs for s in load.samples(r.id)]
    return Row(model=model, kind=desc.kind, detail=desc.detail, finetuned_from=desc.finetuned_from,
               last_run=newest.created_at, tokens=_tokens(samples), cost=_cost(samples),
               latency_p50=_latency(samples), reference=newest.model_kind == "baseline")


def _cell(col: Column, v: Verdict, load: RunReader) -> Cell:
    """The decision's verdict on one model, with the run's usage for the charts."""
    run = v.run
    samples = load.samples(run.id)
    cell = Cell(task=col.task, model=run.model, run_id=run.id, created_at=run.created_at,
                scoring_mode=run.scoring_mode, tokens=_tokens(samples), cost=_cost(samples),
                latency_p50=_latency(samples), reference=v.baseline, metric=col.metric if v.value is not None else "",
                value=v.value, ci_low=v.ci_low, ci_high=v.ci_high, n=v.n, best=v.best, tied=v.tied,
                p_vs_best=v.p_vs_best, rank=v.rank, comparable=v.comparable,
                below_baseline=v.below_baseline, p_vs_baseline=v.p_vs_baseline, floor=col.floor,
                badge=v.baseline_label, system=list(v.notes))
    if not v.comparable:
        cell.note = "not comparable: " + "; ".join(v.reasons)
    elif v.untested and not v.best:
        cell.note = v.untested
    return cell


def _mde(cell: Cell, primary: str, run: RunInfo, runs: list[RunInfo], load: RunReader, *, n_resamples: int,
         seed: int) -> tuple[float | None, str]:
    """The cell's minimum detectable drop (``report.power``): from the paired comparison with the
    model's previous complete run of the same task definition and scoring mode — the number the
    gate prints for that pair — else, before a second run exists, the one-run bound (Bernoulli for
    a right/wrong value, else from the cell's own CI)."""
    from llmbench.report.power import single_run_mde, value_power

    stored = primary_value(load.metrics(run.id), run)
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


def _detail(col: Column, task_runs: dict[str, RunInfo], all_runs: list[RunInfo], load: RunReader,
            max_samples: int | None, cells: dict[str, Cell]) -> TaskDetail:
    show_prompt = col.kind == "qa"
    metric_rows: list[MetricRow] = []
    names: list[str] = []
    order: list[str] = []
    samples: dict[str, dict[str, Any]] = {}
    predictions: dict[str, dict[str, dict[str, Any]]] = {}
    records: dict[str, dict[str, dict[str, Any]]] = {}
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
                                     note=cell.note if cell is not None and not cell.comparable else None,
                                     badge=f"{cell.badge} {cell.floor}" if cell is not None and cell.badge else ""))
        stored = _value(load.metrics(run.id), col.primary)
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
            records.setdefault(model, {})[s.sample_id] = sample_fields(s)
        predictions[model] = preds
    _share_prompts(samples, records)
    n_total = len(order)
    if max_samples is not None and n_total > max_samples:
        keep = set(order[:max_samples])
        order = order[:max_samples]
        samples = {k: v for k, v in samples.items() if k in keep}
        predictions = {m: {k: v for k, v in p.items() if k in keep} for m, p in predictions.items()}
        records = {m: {k: v for k, v in p.items() if k in keep} for m, p in records.items()}
    names = sorted(names, key=lambda n: n != col.primary)  # stable: primary first, then as stored
    return TaskDetail(column=col, value_names=names, metrics=metric_rows, sample_order=order, samples=samples,
                      predictions=predictions, n_total=n_total, history=_history(col, task_runs, all_runs, load),
                      breakdown=build_breakdown(task_runs, col.metric, col.primary, load.metrics, load.samples),
                      records=records)


def _same_identity(run: RunInfo, latest: RunInfo | None) -> bool:
    return latest is not None and (run.task_version, run.task_fingerprint, run.scoring_mode) == (
        latest.task_version, latest.task_fingerprint, latest.scoring_mode)


def _share_prompts(samples: dict[str, dict[str, Any]], records: dict[str, dict[str, dict[str, Any]]]) -> None:
    """A rendered prompt every model got is kept once, on the sample (``shared_prompt``), not per
    model: the sample page stays a fraction of the size when ten models share few-shot prompts."""
    for sid, sample in samples.items():
        prompts = {r[sid].get("prompt") for r in records.values() if sid in r}
        if len(prompts) == 1 and None not in prompts and len([r for r in records.values() if sid in r]) > 1:
            sample["shared_prompt"] = prompts.pop()
            for r in records.values():
                if sid in r:
                    r[sid].pop("prompt", None)


def _history(col: Column, latest: dict[str, RunInfo], all_runs: list[RunInfo],
             load: RunReader) -> dict[str, list[dict[str, Any]]]:
    """Every complete run of the task, per model, oldest first: the nightly trend. For one model
    over time a point is comparable with its latest run only under the same task version,
    prompt *and scoring mode* (a changed mode is a changed identity over time)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in all_runs:
        if r.task != col.task or r.status != "complete":
            continue
        stored = _value(load.metrics(r.id), col.primary)
        if stored is None:
            continue
        v = stored.value
        out.setdefault(r.model, []).append({
            "run_id": r.id, "created_at": r.created_at, "value": v.value, "ci_low": v.ci_low,
            "ci_high": v.ci_high, "tags": r.tags, "comparable": _same_identity(r, latest.get(r.model))})
    return out
