"""Executing a plan: the one code path from (models x tasks x options) to stored runs.

``llmbench run`` and ``llmbench.evaluate`` both end here, so they refuse the same things
before any model loads (a task file, data or field that is wrong; a task with no samples; a
bad model spec, option or placement), choose the executor the same way (local or Ray
replicas) and store the same runs. Every (model, task) pair is checked before the first
request of that model is sent: a single pair that cannot be served is an error; in a
larger grid such a pair is skipped with a note (a majority-class baseline has nothing to
say about translation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmbench.errors import Interrupted, UserError
from llmbench.plan.build import PlannedTask, RunPlan
from llmbench.plan.progress import Reporter
from llmbench.runner import CHECKPOINT_S, CHUNK_SAMPLES, ModelEntry, RunError, RunResult

if TYPE_CHECKING:
    from llmbench.cache import ResponseCache
    from llmbench.executors import Executor
    from llmbench.judge.record import JudgedRun
    from llmbench.models.base import ModelAdapter
    from llmbench.store import ResultStore
    from llmbench.tasks.base import Task


@dataclass(frozen=True)
class PlanOutcome:
    """The runs a plan stored (in plan order), the batch that groups them and the store's URL."""

    results: list[RunResult]
    batch_id: str
    store_url: str
    judged: tuple[str, ...] = ()  # the judged runs a task's or suite's ``judge:`` stored (plan.judging)


def load_tasks(plan: RunPlan, reporter: Reporter) -> dict[PlannedTask, Task]:
    """Every task of the plan, loaded and counted: bad task files, data or fields fail here,
    before any model is loaded, and so does a task with no samples (else it would be stored
    as a complete run with no metrics). Each task is followed by its perturbed variants and
    repeats (``with_variants``)."""
    from llmbench.tasks import load_task

    tasks: dict[PlannedTask, Task] = {}
    for pt in plan.tasks:
        with named(pt.origin):
            task = tasks[pt] = load_task(pt.ref, data=pt.data)
            n = 0
            for chunk in task.iter_samples(limit=pt.limit or plan.config.limit, seed=plan.config.seed,
                                           chunk_size=CHUNK_SAMPLES):
                n += len(chunk)  # built and dropped chunk by chunk: a 100k-row task is checked, not held
            if n == 0:
                raise RunError(f"task '{task.name}' ({task.source}) has no samples in split "
                               f"'{task.eval_split}' — check its data")
            reporter.task_loaded(task, n, pt)
    return with_variants(tasks, seed=plan.config.seed)


def with_variants(tasks: dict[PlannedTask, Task], *, seed: int) -> dict[PlannedTask, Task]:
    """The plan's tasks, each followed by its perturbed variants: those its task file declares
    (``perturbations:``) and those the plan adds (``--perturb``, a suite's ``perturb:``) — and by
    its repeats 1 .. K-1 (``--repeats K``, a suite's ``repeats:``). A variant keeps its clean
    task's reference, so a suite model restricted to that task runs it too."""
    from llmbench.tasks.perturbed import repeats, variants

    out: dict[PlannedTask, Task] = {}
    for pt, task in tasks.items():
        out[pt] = task
        for variant in variants(task, pt.perturb, seed=seed):
            out[dataclasses.replace(pt, variant=variant.perturbation.label)] = variant
        for again in repeats(task, pt.repeats):  # --repeats K: decoding seed + 1 .. K-1
            out[dataclasses.replace(pt, variant=f"repeat{again.index}")] = again
    return out


def build_adapters(plan: RunPlan, executor: Executor) -> list[ModelAdapter]:
    """Every model spec and option, checked before the first run: adapters load weights
    lazily, so a typo in the third model of a grid does not wait for the first two."""
    adapters: list[ModelAdapter] = []
    try:
        for k, (entry, _) in enumerate(plan.models):
            with named(plan.model_origins[k] if k < len(plan.model_origins) else None):
                adapters.append(executor.adapter(entry.spec, entry.options))
    except BaseException:
        for built in adapters:
            built.close()
        raise
    return adapters


def execute(plan: RunPlan, *, store: str, use_cache: bool, reporter: Reporter,
            checkpoint_s: float = CHECKPOINT_S) -> PlanOutcome:
    """Run ``plan`` and store its runs in ``store``; returns them in plan order.

    Raises the plan's refusals as ``UserError`` lines before anything is stored, and an
    interrupt (Ctrl-C) as ``Interrupted``, which says what was saved. The store's log is
    folded into its file when this returns (``ResultStore.close``), so copying the file
    copies every run.
    """
    from llmbench.cache import ResponseCache
    from llmbench.executors import get_executor
    from llmbench.plan.judging import close_judges, load_judges, run_judges
    from llmbench.store import ResultStore, new_id

    if plan.finetune:
        _run_finetune_steps(plan, reporter)
    tasks = load_tasks(plan, reporter)
    judges = load_judges(tasks)  # a judge: block's bad spec or template is one line before any model runs
    executor = get_executor(plan.executor, plan.ray_address)
    try:
        adapters = build_adapters(plan, executor)
    except BaseException:
        executor.close()
        close_judges(judges)
        raise
    run = _Execution(plan, tasks, reporter, checkpoint_s)
    db: ResultStore | None = None
    try:
        db = ResultStore(store)  # opened after the cheap checks: bad input never touches the store
        run.cache = ResponseCache() if use_cache else None
        if plan.cap_note:
            reporter.note(plan.cap_note, style="yellow")
        run.all(db, executor, adapters, new_id())
        if judges:  # after every model answered: its weights are freed before a local judge loads
            run.judged = run_judges(judges, run.planned, store=db, cache=run.cache, config=plan.config,
                                    batch_id=run.batch_id, reporter=reporter)
    except KeyboardInterrupt as err:
        raise Interrupted(run.saved()) from err
    finally:
        close_judges(judges)
        for adapter in adapters:  # those a failure skipped (closing twice is a no-op)
            adapter.close()
        if run.cache is not None:
            run.cache.close()
        executor.close()
        if db is not None:
            db.close()  # folds the write-ahead log into the file: a copied store holds every run
    return PlanOutcome(results=run.results, batch_id=run.batch_id, store_url=db.url,
                       judged=tuple(j.run_id for j in run.judged))


class _Execution:
    """The state of one plan while it runs: what is stored so far, for the interrupt line."""

    def __init__(self, plan: RunPlan, tasks: dict[PlannedTask, Task], reporter: Reporter,
                 checkpoint_s: float) -> None:
        self.plan, self.tasks, self.reporter, self.checkpoint_s = plan, tasks, reporter, checkpoint_s
        self.cache: ResponseCache | None = None
        self.results: list[RunResult] = []
        self.planned: list[tuple[PlannedTask, RunResult]] = []  # each result with its planned task (judges)
        self.judged: list[JudgedRun] = []
        self.batch_id = ""
        self.current: tuple[str, int, int | None] | None = None  # label, samples done, total

    def all(self, db: ResultStore, executor: Executor, adapters: list[ModelAdapter], batch_id: str) -> None:
        self.batch_id = batch_id
        single = len(self.plan.models) * len(self.plan.tasks) == 1
        origins = list(self.plan.model_origins) + [None] * len(self.plan.models)
        for (entry, only), adapter, origin in zip(self.plan.models, adapters, origins, strict=False):
            try:
                with named(origin):  # a suite model's forced scoring: names its entry of the file
                    pairs = self.pairs(entry, only, adapter, single)
                for pt, task in pairs:
                    self.one(db, executor, adapter, entry, pt, task)
            finally:
                adapter.close()

    def pairs(self, entry: ModelEntry, only: tuple[str, ...] | None, adapter: ModelAdapter,
              single: bool) -> list[tuple[PlannedTask, Task]]:
        """The tasks this model runs: those its suite entry names, minus those it cannot serve."""
        from llmbench.runner import choose_mode

        pairs = []
        for pt, task in self.tasks.items():
            if only is not None and task.name not in only and pt.ref not in only:
                continue
            try:
                choose_mode(task, adapter, entry.display, entry.scoring)
            except RunError as err:
                if single:
                    raise
                self.reporter.note(f"skipped {entry.display} on {task.name}: {err}")
                continue
            pairs.append((pt, task))
        return pairs

    def one(self, db: ResultStore, executor: Executor, adapter: ModelAdapter, entry: ModelEntry,
            pt: PlannedTask, task: Task) -> None:
        from llmbench.executors import adapter_options
        from llmbench.runner import evaluate

        config = self.plan.config.model_copy(update={"limit": pt.limit or self.plan.config.limit,
                                                     "use_cache": self.cache is not None})
        # Placement options (replicas, num_gpus, ...) say where, not what: not stored.
        stored = entry.model_copy(update={"options": adapter_options(entry.options)})
        where = executor.describe(adapter)
        # One bar per (model, task), however many replicas answer it; ``where`` names them.
        label = f"{stored.display} · {task.name}" + (f" · {where}" if where else "")
        with self.reporter.tracking(label) as tracker:
            self.current = (label, 0, None)

            def started(total: int) -> None:
                tracker.start(total)
                self.current = (label, 0, total)

            def advanced(k: int) -> None:
                tracker.advance(k)
                self.current = (label, tracker.done, self.current[2] if self.current else None)

            result = evaluate(task, adapter, stored, config, store=db, cache=self.cache, batch_id=self.batch_id,
                              on_start=started, on_progress=advanced,
                              chunk_samples=executor.chunk_samples(adapter, CHUNK_SAMPLES),
                              checkpoint_s=self.checkpoint_s)
        self.current = None
        self.results.append(result)
        self.planned.append((pt, result))
        self.reporter.run_done(result, db)

    def saved(self) -> str:
        """What an interrupt leaves behind, in one line."""
        parts = [f"{len(self.results)} run(s) stored"]
        if self.current is not None:
            label, done, total = self.current
            of = f"/{total}" if total is not None else ""
            cached = " (their answers are in the response cache)" if self.cache is not None else ""
            parts.append(f"'{label}' stopped after {done}{of} samples{cached}")
        return "; ".join(parts)


@contextmanager
def named(origin: str | None) -> Iterator[None]:
    """Prefix a user error with where a suite file named the task or model, so the one line
    says which entry of which file to fix."""
    try:
        yield
    except UserError as err:
        if origin is None:
            raise
        raise UserError(f"{origin}: {err}") from None


def _run_finetune_steps(plan: RunPlan, reporter: Reporter) -> None:
    from llmbench.finetune import finetune

    for step in plan.finetune:
        if (step.out / "config.json").exists():
            reporter.note(f"fine-tuned model cached at {step.out}")
            continue
        reporter.console.print(f"fine-tuning {step.base} on {step.task} -> {step.out}")
        finetune(step, console=reporter.console)
