"""The Python API: evaluate a model and read stored runs from a notebook or a script.

The command line and this module share one plan executor (``llmbench.plan``) and one store
(``--store``/``store=``, else ``$LLMBENCH_STORE``), so a run made here is listed by
``llmbench runs``, ranked by ``llmbench report`` and gated by ``llmbench gate`` like any
other. Results come back as typed, frozen objects; ``to_pandas()`` turns them into a
DataFrame (pandas is imported only then).

    import llmbench

    run = llmbench.evaluate("baseline:majority", "rotten_tomatoes", limit=200)
    run.scores["accuracy"]                      # 0.5
    grid = llmbench.evaluate(models=["baseline:majority", "baseline:random"],
                             tasks=["rotten_tomatoes", "ag_news"], limit=200)
    llmbench.load_runs(task="rotten_tomatoes").to_pandas()
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from pydantic import ConfigDict, Field, ValidationError

from llmbench.errors import UserError, validation_line
from llmbench.executors import ExecutorName
from llmbench.store import ResultStore, RunInfo, SampleRecord, StoredMetric
from llmbench.types import Frozen, RequestKind

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Run", "Runs", "evaluate", "load_runs"]


@dataclass(frozen=True)
class Run:
    """One stored run (a model on a task): what it was, its scores, and its samples on demand."""

    info: RunInfo
    metrics: tuple[StoredMetric, ...]
    store: ResultStore = field(repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def model(self) -> str:
        return self.info.model

    @property
    def task(self) -> str:
        return self.info.task

    @property
    def status(self) -> str:
        return self.info.status

    @property
    def notes(self) -> list[str]:
        """How the adapter computed the answers, when that differs from its usual path (a
        fallback it took, and why); ``llmbench run`` and ``show`` print the same lines."""
        return list(self.info.notes)

    @property
    def scores(self) -> dict[str, float]:
        """Metric name → corpus value (on the metric's own scale, as stored)."""
        return {m.value.name: m.value.value for m in self.metrics}

    @property
    def primary(self) -> float | None:
        """The task's primary metric, or ``None`` when the run has no value for it."""
        return self.scores.get(self.info.primary_metric)

    def samples(self) -> list[SampleRecord]:
        """Every per-sample record: prompt, prediction, references, statistics, latency, tokens."""
        return self.store.samples(self.info.id)

    def samples_frame(self) -> pd.DataFrame:
        """The per-sample records as a DataFrame, one row per sample."""
        import pandas as pd

        return pd.DataFrame([s.model_dump(mode="json") for s in self.samples()])

    def to_pandas(self) -> pd.DataFrame:
        """This run's metrics, one row each (see ``Runs.to_pandas``)."""
        return Runs((self,)).to_pandas()


@dataclass(frozen=True)
class Runs(Sequence[Run]):
    """Runs in the order they were made (oldest first), with a long-format ``to_pandas``."""

    items: tuple[Run, ...]

    @overload
    def __getitem__(self, index: int) -> Run: ...
    @overload
    def __getitem__(self, index: slice) -> Runs: ...
    def __getitem__(self, index: int | slice) -> Run | Runs:
        if isinstance(index, slice):
            return Runs(self.items[index])
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.items)

    def to_pandas(self) -> pd.DataFrame:
        """One row per (run, metric): run id, batch, time, status, model, task, scoring mode,
        metric, value, CI, n and whether it is the task's primary metric. Long format, so a
        models × tasks table is one ``pivot_table`` away."""
        import pandas as pd

        columns = ["run_id", "batch_id", "created_at", "status", "model", "task", "task_version",
                   "scoring_mode", "metric", "value", "ci_low", "ci_high", "n", "primary"]
        rows: list[dict[str, Any]] = []
        for run in self.items:
            info = run.info
            for m in run.metrics:
                v = m.value
                rows.append({"run_id": info.id, "batch_id": info.batch_id, "created_at": info.created_at,
                             "status": info.status, "model": info.model, "task": info.task,
                             "task_version": info.task_version, "scoring_mode": info.scoring_mode,
                             "metric": v.name, "value": v.value, "ci_low": v.ci_low, "ci_high": v.ci_high,
                             "n": v.n, "primary": v.name == info.primary_metric})
        return pd.DataFrame(rows, columns=columns)


class _Arguments(Frozen):
    """``evaluate``'s arguments, checked strictly (a list where one string is expected, a
    limit of 0, an unknown scoring mode or executor) before anything runs."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    models: list[str] = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    limit: int | None = Field(default=None, ge=1)
    seed: int = 0
    resamples: int = Field(default=1000, ge=0)
    store: str | None = None
    cache: bool = True
    chat: bool = False
    scoring: RequestKind | None = None
    data: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    tags: list[str] = Field(default_factory=list)
    replicas: int | None = Field(default=None, ge=1)
    executor: ExecutorName = "local"
    ray_address: str | None = None
    progress: bool = True
    checkpoint_seconds: float = Field(default=30.0, gt=0)


def _names(value: object) -> object:
    """One name or path as a one-element list; a list or tuple as a list (``Path`` items as text)."""
    if isinstance(value, str | Path):
        return [str(value)]
    if isinstance(value, list | tuple):
        return [str(v) if isinstance(v, Path) else v for v in value]
    return value


def _arguments(raw: dict[str, Any]) -> _Arguments:
    raw = {**raw, "models": _names(raw["models"]), "tasks": _names(raw["tasks"]),
           "tags": list(raw["tags"]) if isinstance(raw["tags"], list | tuple) else raw["tags"]}
    for key in ("store", "data"):
        if isinstance(raw[key], Path):
            raw[key] = str(raw[key])
    try:
        args = _Arguments.model_validate(raw)
    except ValidationError as err:
        raise UserError(validation_line(err, subject="llmbench.evaluate",
                                        fix="the call's arguments (see help(llmbench.evaluate))")) from None
    if args.label is not None and len(args.models) > 1:
        raise UserError("llmbench.evaluate: label= names one model but models= has "
                        f"{len(args.models)} — drop label= or evaluate one model")
    return args


def evaluate(
    models: str | Path | Sequence[str],
    tasks: str | Path | Sequence[str | Path],
    *,
    limit: int | None = None,
    seed: int = 0,
    resamples: int = 1000,
    store: str | Path | None = None,
    cache: bool = True,
    chat: bool = False,
    scoring: RequestKind | None = None,
    data: str | Path | None = None,
    options: dict[str, Any] | None = None,
    label: str | None = None,
    tags: Sequence[str] = (),
    replicas: int | None = None,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
    progress: bool = True,
    checkpoint_seconds: float = 30.0,
) -> Run | Runs:
    """Run ``models`` (specs such as ``hf:path``, ``openai:gpt-4o-mini``, ``baseline:majority``)
    on ``tasks`` (built-in names or task files) and store the runs, exactly as ``llmbench run``
    does: the same plan executor, refusals, executors and placement (``replicas=``,
    ``executor="ray"``), the same store (``store=``, else ``$LLMBENCH_STORE``, else
    ``results/llmbench.db``) and response cache (``$LLMBENCH_CACHE``). Progress goes to stderr
    unless ``progress=False``.

    Returns the ``Run`` when one model and one task were given as strings, else the ``Runs``
    in plan order (models outer, tasks inner; pairs a model cannot serve are skipped with a
    note). Every bad argument is a ``UserError`` with a one-line message.
    """
    from rich.console import Console

    from llmbench.plan import Reporter, execute, plan_from_args
    from llmbench.store import open_existing, store_location

    args = _arguments({"models": models, "tasks": tasks, "limit": limit, "seed": seed, "resamples": resamples,
                       "store": store, "cache": cache, "chat": chat, "scoring": scoring, "data": data,
                       "options": dict(options or {}), "label": label, "tags": tags, "replicas": replicas,
                       "executor": executor, "ray_address": ray_address, "progress": progress,
                       "checkpoint_seconds": checkpoint_seconds})
    opts = {**args.options, **({"replicas": args.replicas} if args.replicas is not None else {})}
    plan = plan_from_args(args.models, args.tasks, limit=args.limit, seed=args.seed, options=opts,
                          chat=args.chat, data=args.data, tags=tuple(args.tags), resamples=args.resamples,
                          scoring=args.scoring, label=args.label)
    plan = dataclasses.replace(plan, executor="ray" if args.ray_address else args.executor,
                               ray_address=args.ray_address)
    where = store_location(args.store)
    console = Console(stderr=True, quiet=not args.progress)
    outcome = execute(plan, store=where, use_cache=args.cache, reporter=Reporter(console),
                      checkpoint_s=args.checkpoint_seconds)
    db = open_existing(where)
    runs = Runs(tuple(_run(db, db.run(r.run_id)) for r in outcome.results))
    if isinstance(models, str | Path) and isinstance(tasks, str | Path) and len(runs) == 1:
        return runs[0]
    return runs


def _run(store: ResultStore, info: RunInfo) -> Run:
    return Run(info=info, metrics=tuple(store.metrics(info.id)), store=store)


def load_runs(
    store: str | Path | None = None,
    *,
    model: str | None = None,
    task: str | None = None,
    tag: str | None = None,
    complete_only: bool = True,
) -> Runs:
    """Stored runs, oldest first; ``model`` matches a substring of the model name. The store
    is ``store``, else ``$LLMBENCH_STORE``, else ``results/llmbench.db``; it is never
    created: a mistyped path is an error, not an empty result."""
    from llmbench.store import open_existing

    db = open_existing(None if store is None else str(store))
    infos = [r for r in db.runs(task=task)
             if (model is None or model in r.model)
             and (tag is None or tag in r.tags)
             and (not complete_only or r.status == "complete")]
    return Runs(tuple(_run(db, info) for info in infos))
