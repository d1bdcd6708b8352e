"""Planning and executing ``llmbench run``: models x tasks, progress, tables, exports.

Every (model, task) pair is checked before the first request of that model is sent:
a single pair that cannot be served is an error; in a larger grid such a pair is
skipped with a note (a majority-class baseline has nothing to say about translation).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Task as RichTask
from rich.table import Table
from rich.text import Text

from llmbench.errors import UserError
from llmbench.runner import ModelEntry, RunConfig, RunResult
from llmbench.types import MetricValue

if TYPE_CHECKING:  # imported where used: `llmbench --help` must not pay for torch or SQLAlchemy
    from llmbench.cache import ResponseCache
    from llmbench.finetune import FinetuneConfig
    from llmbench.models.base import ModelAdapter
    from llmbench.store import ResultStore
    from llmbench.tasks.base import Task


@dataclass(frozen=True)
class PlannedTask:
    ref: str
    limit: int | None = None
    data: str | None = None
    origin: str | None = None  # where a suite names it ("suite.yaml: tasks[2]"), for error lines
    detect: float | None = None  # the suite's declared detectable drop (cli.power.warn_if_underpowered)
    perturb: tuple[str, ...] = ()  # --perturb / a suite's perturb: (cli.robustness.with_perturbations)
    variant: str | None = None  # the perturbation label of a perturbed variant of this task
    repeats: int = 1  # --repeats K: K draws per sample with distinct decoding seeds (report.noise)


@dataclass(frozen=True)
class RunPlan:
    models: list[tuple[ModelEntry, tuple[str, ...] | None]]
    tasks: list[PlannedTask]
    config: RunConfig
    cap_note: str | None = None
    finetune: list[FinetuneConfig] = field(default_factory=list)
    model_origins: tuple[str | None, ...] = ()  # per model, as PlannedTask.origin
    # Where the models answer (llmbench.executors): in this process, or on Ray replicas.
    executor: str = "local"
    ray_address: str | None = None


def plan_from_args(models: Sequence[str], tasks: Sequence[str], *, limit: int | None, seed: int | None,
                   options: dict[str, Any], chat: bool | None, data: str | None,
                   tags: tuple[str, ...], resamples: int | None, scoring: str | None = None,
                   perturb: tuple[str, ...] = (), repeats: int = 1) -> RunPlan:
    # Plain-text prompts by default, also for chat APIs (they get them as one user message);
    # --chat renders few-shot turns as chat messages and applies local chat templates.
    entries: list[tuple[ModelEntry, tuple[str, ...] | None]] = [
        (ModelEntry(spec=spec, options=options, chat=bool(chat), scoring=scoring), None) for spec in models
    ]
    config = RunConfig(limit=limit, seed=seed or 0, tags=tags,
                       **({"n_resamples": resamples} if resamples is not None else {}))
    return RunPlan(models=entries, tasks=[PlannedTask(t, data=data, perturb=perturb, repeats=repeats)
                                                  for t in tasks], config=config)


def plan_from_suite(path: Path, *, limit: int | None, full: bool, seed: int | None,
                    tags: tuple[str, ...], resamples: int | None,
                    extra_options: dict[str, Any]) -> RunPlan:
    from llmbench.models.packaged import EVAL_MODELS
    from llmbench.suite import load_suite, resolve_path

    suite = load_suite(path)
    base = path.parent
    entries: list[tuple[ModelEntry, tuple[str, ...] | None]] = []
    for m in suite.models:
        spec = m.spec
        if spec.startswith("hf:") and spec[3:] not in EVAL_MODELS:  # a packaged model is no path
            spec = "hf:" + resolve_path(base, spec[3:])
        entry = ModelEntry(spec=spec, label=m.label or m.spec, chat=m.chat, scoring=m.scoring,
                           options={**m.options, **extra_options})
        entries.append((entry, m.tasks))
    cap = None if full else (limit or suite.limit)
    tasks = [PlannedTask(resolve_path(base, t.task) if t.task.endswith((".yaml", ".yml")) else t.task,
                         limit=None if full else (limit or t.limit or suite.limit),
                         data=resolve_path(base, t.data) if t.data else None,
                         origin=f"{path}: tasks[{i}] '{t.task}'",
                         detect=t.detect if t.detect is not None else suite.detect,
                         perturb=(*suite.perturb, *t.perturb), repeats=t.repeats or suite.repeats)
             for i, t in enumerate(suite.tasks)]
    note = None
    if cap is not None or any(t.limit for t in suite.tasks if not full):
        note = (f"suite '{suite.name}': samples capped per task (default cap {cap}); "
                "add --full for the complete sets")
    config = RunConfig(limit=None, seed=seed if seed is not None else suite.seed,
                       tags=tuple(suite.tags) + tags,
                       n_resamples=resamples if resamples is not None else suite.n_resamples)
    steps = [s.model_copy(update={"out": Path(resolve_path(base, str(s.out)))}) for s in suite.finetune]
    return RunPlan(models=entries, tasks=tasks, config=config, cap_note=note, finetune=steps,
                   executor=suite.executor, ray_address=suite.ray_address,
                   model_origins=tuple(f"{path}: models[{i}] '{m.spec}'" for i, m in enumerate(suite.models)))


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def metrics_table(values: Sequence[MetricValue], primary: str, title: str | None = None) -> Table:
    table = Table("metric", "value", "95% CI", "n", title=title, title_justify="left")
    for v in values:
        name = f"[bold]{v.name}[/bold]" if v.name == primary else v.name
        ci = f"[{fmt(v.ci_low)}, {fmt(v.ci_high)}]" if v.ci_low is not None else "-"
        table.add_row(name, fmt(v.value), ci, str(v.n))
    return table


def comparison_table(results: Sequence[RunResult]) -> Table:
    """Each task's primary metric per model with its 95% CI, best first.

    One row per (task, model) rather than a models x tasks grid: it stays readable in an
    80-column terminal or a CI log, where a grid would cut the model names.
    """
    from rich.table import Column

    table = Table(Column("task / metric", no_wrap=True), Column("model", no_wrap=True), "value",
                  Column("95% CI", no_wrap=True),
                  title="Comparison (primary metric per task, best first)", title_justify="left")
    by_task: dict[str, list[tuple[RunResult, MetricValue | None]]] = {}
    for r in results:
        value = next((x for x in r.metrics if x.name == r.primary_metric), None)
        by_task.setdefault(r.task, []).append((r, value))
    for task, rows in by_task.items():
        rows.sort(key=lambda rv: float("inf") if rv[1] is None else (-1 if rv[1].higher_is_better else 1) * rv[1].value)
        for k, (r, v) in enumerate(rows):
            label = task if k == 0 else f"[dim]{r.primary_metric}[/dim]" if k == 1 else ""
            if len(rows) == 1:
                label = f"{task} [dim]{r.primary_metric}[/dim]"
            table.add_row(label, r.model, fmt(v.value if v else None),
                          f"[{_short(v.ci_low)}, {_short(v.ci_high)}]" if v else "-",
                          end_section=k == len(rows) - 1)
    return table


def _short(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def execute_plan(plan: RunPlan, *, store: str, use_cache: bool, json_dir: Path | None,
                 console: Console) -> int:
    from llmbench.cache import ResponseCache
    from llmbench.cli.power import warn_if_underpowered
    from llmbench.cli.robustness import print_for_runs, with_perturbations
    from llmbench.executors import adapter_options, get_executor
    from llmbench.runner import CHUNK_SAMPLES, RunError, choose_mode
    from llmbench.store import ResultStore, new_id
    from llmbench.tasks import load_task

    if plan.finetune:
        _run_finetune_steps(plan.finetune, console)
    tasks: dict[PlannedTask, Task] = {}
    for pt in plan.tasks:  # bad task files, data or fields fail here, before any model is loaded
        with _named(pt.origin):
            task = tasks[pt] = load_task(pt.ref, data=pt.data)
            n = 0
            for chunk in task.iter_samples(limit=pt.limit or plan.config.limit, seed=plan.config.seed,
                                           chunk_size=CHUNK_SAMPLES):
                n += len(chunk)  # built and dropped chunk by chunk: a 100k-row task is checked, not held
            if n == 0:  # else a run with no samples is stored as complete, with no metrics
                raise RunError(f"task '{task.name}' ({task.source}) has no samples in split "
                               f"'{task.eval_split}' — check its data")
            warn_if_underpowered(console, task, n, pt.detect, store)  # the suite's `detect:` (report.power)
    tasks = with_perturbations(tasks, seed=plan.config.seed)  # perturbed variants (tasks.perturb)
    # Every model spec and option too, before the first run: adapters load weights lazily, so
    # a typo in the third model of a grid no longer waits for the first two to finish.
    adapters: list[ModelAdapter] = []
    executor = get_executor(plan.executor, plan.ray_address)
    try:
        for k, (entry, _) in enumerate(plan.models):
            with _named(plan.model_origins[k] if k < len(plan.model_origins) else None):
                adapters.append(executor.adapter(entry.spec, entry.options))
    except BaseException:
        for built in adapters:
            built.close()
        executor.close()
        raise
    db = ResultStore(store)  # opened after the cheap checks: bad input never touches the store
    cache = ResponseCache() if use_cache else None
    batch_id = new_id()
    if plan.cap_note:
        console.print(f"[yellow]{plan.cap_note}[/yellow]")
    results: list[RunResult] = []
    single = len(plan.models) * len(plan.tasks) == 1
    try:
        for (entry, only), adapter in zip(plan.models, adapters, strict=True):
            try:
                pairs = []
                for pt, task in tasks.items():
                    if only is not None and task.name not in only and pt.ref not in only:
                        continue
                    try:
                        choose_mode(task, adapter, entry.display, entry.scoring)
                    except RunError as err:
                        if single:
                            raise
                        console.print(f"[dim]skipped {entry.display} on {task.name}: {err}[/dim]")
                        continue
                    pairs.append((pt, task))
                for pt, task in pairs:
                    config = plan.config.model_copy(update={"limit": pt.limit or plan.config.limit,
                                                            "use_cache": use_cache})
                    # Placement options (replicas, num_gpus, ...) say where, not what: not stored.
                    stored = entry.model_copy(update={"options": adapter_options(entry.options)})
                    results.append(_run_one(task, adapter, stored, config, db, cache, batch_id, console,
                                            where=executor.describe(adapter),
                                            chunk_samples=executor.chunk_samples(adapter, CHUNK_SAMPLES)))
            finally:
                adapter.close()
    finally:
        for adapter in adapters:  # those a failure skipped (closing twice is a no-op)
            adapter.close()
        if cache is not None:
            cache.close()
        executor.close()
    for r in results:
        if json_dir is not None:
            db.write_json(r.run_id, json_dir / f"{r.run_id}.json")
    if len(results) > 1:
        console.print(comparison_table(results))
    done = {r.run_id for r in results}
    print_for_runs(console, db, [r for r in db.runs() if r.id in done], n_resamples=plan.config.n_resamples,
                   seed=plan.config.seed)  # perturbed runs and repeats beside their clean runs
    console.print(f"stored {len(results)} run(s) in {db.url} (batch {batch_id})")
    incomplete = [r for r in results if r.status != "complete"]
    if incomplete:
        # Exit 1 belongs to the gate's "regression"; failed samples are "cannot decide" (2).
        raise RunError(f"{len(incomplete)} of {len(results)} run(s) incomplete (failed samples listed above) "
                       "— rerun the same command to retry only those samples")
    return 0


@contextmanager
def _named(origin: str | None) -> Iterator[None]:
    """Prefix a user error with where a suite file named the task or model, so the one line
    says which entry of which file to fix."""
    try:
        yield
    except UserError as err:
        if origin is None:
            raise
        raise UserError(f"{origin}: {err}") from None


def _run_one(task: Task, adapter: ModelAdapter, entry: ModelEntry, config: RunConfig, db: ResultStore,
             cache: ResponseCache | None, batch_id: str, console: Console, *, where: str | None = None,
             chunk_samples: int | None = None) -> RunResult:
    from llmbench.runner import CHUNK_SAMPLES, evaluate

    # One bar per (model, task), however many replicas answer it; ``where`` names them.
    label = f"{entry.display} · {task.name}" + (f" · {where}" if where else "")
    chunk = chunk_samples or CHUNK_SAMPLES
    if console.is_terminal:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            bar = progress.add_task(label, total=None)
            result = evaluate(
                task, adapter, entry, config, store=db, cache=cache, batch_id=batch_id,
                on_start=lambda n: progress.update(bar, total=n),
                on_progress=lambda k: progress.advance(bar, k), chunk_samples=chunk,
            )
    else:
        # A CI log or a file: no live bar to redraw, so a plain line every few seconds or
        # tenth of the run, rather than ten silent minutes and one line at the end.
        lines = ProgressLines(label, console)
        result = evaluate(task, adapter, entry, config, store=db, cache=cache, batch_id=batch_id,
                          on_start=lines.start, on_progress=lines.advance, chunk_samples=chunk)
        lines.finish()
    title = (f"{result.model} · {result.task} · mode={result.scoring_mode} · run {result.run_id} · "
             f"cache {result.cache_hits} hit / {result.cache_misses} miss")
    if retries := result.usage.get("retries"):
        title += f" · [yellow]{retries} retries[/yellow]"
    if result.n_errors:
        title += f" · [red]{result.n_errors} failed samples (run incomplete; rerun to retry them)[/red]"
    console.print(metrics_table(result.metrics, result.primary_metric, title=title))
    if result.n_errors:
        for reason, count in failure_reasons(db, result.run_id):
            console.print(f"  [red]{count} ×[/red] {escape(reason)}", highlight=False, soft_wrap=True)
    for line in flag_lines(result.usage):
        console.print(f"  [yellow]{escape(line)}[/yellow]", highlight=False, soft_wrap=True)
    for line in breakdown_lines(db.run(result.run_id).config.get("not_computed"), result.usage,
                                result.primary_metric):
        console.print(f"  [dim]{escape(line)}[/dim]", highlight=False, soft_wrap=True)
    return result


def breakdown_lines(not_computed: Any, usage: dict[str, Any], primary: str) -> list[str]:
    """What a run did not compute and why (calibration under generation), and the primary value
    per slice with the best-worst gap (every metric per slice is in the store and the report)."""
    lines = [f"{name} not computed: {why}" for name, why in sorted((not_computed or {}).items())]
    report = usage.get("slices") or {}
    for values in (report.get("metrics") or {}).values():
        value = values.get(primary)
        if not value:
            continue

        def fmt(v: dict[str, Any]) -> str:
            ci = "" if v.get("ci_low") is None else f" [{v['ci_low']:.4g}, {v['ci_high']:.4g}]"
            return ("—" if v.get("value") is None else f"{v['value']:.4g}") + ci

        parts = [f"{key} {fmt(v)} (n={v['n']})" for key, v in value["slices"].items()]
        gap = value["gap"]
        if gap.get("value") is not None:
            parts.append(f"gap {fmt(gap)} ({gap['best']} vs {gap['worst']})")
        lines.append(f"{primary} by {report.get('by')}: " + " · ".join(parts))
    return lines


#: What a flagged answer (scored, but not to be trusted blindly) means, for the console.
FLAG_TEXT = {
    "truncated": "answers cut at max_new_tokens (finish_reason=length), scored as they are — "
                 "raise max_new_tokens if they should have ended by themselves",
    "content_filter": "answers partly withheld by the API's content filter, scored as they are",
}


def flag_lines(usage: dict[str, Any]) -> list[str]:
    return [f"{n} {FLAG_TEXT.get(flag, flag)}" for flag, n in (usage.get("flagged") or {}).items() if n]


def usage_line(usage: dict[str, Any]) -> str | None:
    """One line on what a run sent and waited for (API runs), or None when it sent nothing."""
    if not usage.get("attempts") and usage.get("latency_p50_s") is None:
        return None
    parts = [f"requests {usage.get('attempts', 0)} ({usage.get('retries', 0)} retries)"]
    tokens = f"tokens {usage.get('prompt_tokens', 0)} in / {usage.get('completion_tokens', 0)} out"
    if usage.get("cached_prompt_tokens"):
        tokens += f" ({usage['cached_prompt_tokens']} in from the prompt cache)"
    parts.append(tokens)
    if usage.get("cost_usd") is not None:
        parts.append(f"cost ${usage['cost_usd']:.4f}")

    def secs(key: str) -> str:
        v = usage.get(key)
        return "-" if v is None else f"{v:.3f}"

    parts.append(f"latency p50/p95 {secs('latency_p50_s')}/{secs('latency_p95_s')} s per answer, "
                 f"{secs('latency_total_p50_s')}/{secs('latency_total_p95_s')} s with retries")
    if reasons := usage.get("finish_reasons"):
        parts.append("finish " + ", ".join(f"{k}={v}" for k, v in reasons.items()))
    return " · ".join(parts)


def failure_reasons(db: ResultStore, run_id: str, top: int = 3) -> list[tuple[str, int]]:
    """The distinct reasons samples failed, most frequent first (at most ``top`` plus a tail)."""
    from collections import Counter

    counts = Counter(s.error for s in db.samples(run_id) if s.error is not None)
    shown = counts.most_common(top)
    rest = sum(counts.values()) - sum(n for _, n in shown)
    if rest:
        shown.append((f"… and {len(counts) - len(shown)} other reason(s)", rest))
    return shown


class ProgressLines:
    """Progress for a console that is not a terminal: one line per ``every_s`` seconds or
    per tenth of the samples, whichever comes first."""

    def __init__(self, label: str, console: Console, every_s: float = 10.0) -> None:
        import time

        self.label, self.console, self.every_s = label, console, every_s
        self.total: int | None = None
        self.done = 0
        self._clock = time.monotonic
        self._started = self._last = self._clock()
        self._last_tenth = 0

    def start(self, total: int) -> None:
        self.total = total
        self.console.print(f"{escape(self.label)}: {total} samples", highlight=False)

    def advance(self, k: int) -> None:
        self.done += k
        now = self._clock()
        tenth = (10 * self.done // self.total) if self.total else 0
        if now - self._last >= self.every_s or tenth > self._last_tenth:
            self._last, self._last_tenth = now, tenth
            self._print(now)

    def finish(self) -> None:
        if self.total is not None and self._last_tenth < 10:
            self._print(self._clock())

    def _print(self, now: float) -> None:
        of = f"/{self.total} ({100 * self.done / self.total:.0f}%)" if self.total else ""
        elapsed = now - self._started
        rate = f" · {self.done / elapsed:.1f}/s" if elapsed > 0 else ""
        self.console.print(f"{escape(self.label)}: {self.done}{of} · {elapsed:.1f} s{rate}", highlight=False)


class _RateColumn(ProgressColumn):
    """Samples per second (cache hits included), next to the count."""

    def render(self, task: RichTask) -> Text:
        return Text("" if task.speed is None else f"{task.speed:.1f}/s", style="progress.data.speed")


def _run_finetune_steps(steps: Sequence[FinetuneConfig], console: Console) -> None:
    from llmbench.finetune import finetune

    for step in steps:
        if (step.out / "config.json").exists():
            console.print(f"[dim]fine-tuned model cached at {step.out}[/dim]")
            continue
        console.print(f"fine-tuning {step.base} on {step.task} -> {step.out}")
        finetune(step, console=console)
