"""The Python API: evaluate a model and read stored runs from a notebook or a script.

The command line and this module share one pipeline (``runner.evaluate`` writing to the
results store), so a run made here is listed by ``llmbench runs``, ranked by ``llmbench
report`` and gated by ``llmbench gate`` like any other. Results come back as typed, frozen
objects; ``to_pandas()`` turns them into a DataFrame (pandas is imported only then).

    import llmbench

    run = llmbench.evaluate("baseline:majority", "rotten_tomatoes", limit=200)
    run.scores["accuracy"]                      # 0.5
    llmbench.load_runs(task="rotten_tomatoes").to_pandas()
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from llmbench.runner import ModelEntry, RunConfig
from llmbench.store import DEFAULT_DB, ResultStore, RunInfo, SampleRecord, StoredMetric
from llmbench.types import RequestKind

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


def _open(store: str | Path | None, *, create: bool) -> ResultStore:
    from llmbench.store import StoreError

    target = str(store if store is not None else DEFAULT_DB)
    if not create and "://" not in target and not Path(target).expanduser().exists():
        raise StoreError(f"no results store at '{target}' — run an evaluation first or pass store=")
    return ResultStore(target, create=create)


def _run(store: ResultStore, info: RunInfo) -> Run:
    return Run(info=info, metrics=tuple(store.metrics(info.id)), store=store)


def evaluate(
    model: str,
    task: str | Path,
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
) -> Run:
    """Run ``model`` (a spec such as ``hf:path``, ``openai:gpt-4o-mini``, ``baseline:majority``)
    on ``task`` (a built-in name or a YAML path) and store the run, as ``llmbench run`` does.

    Errors are the CLI's: a ``UserError`` subclass with a one-line message for bad input.
    """
    from llmbench.cache import ResponseCache
    from llmbench.models import load_adapter
    from llmbench.runner import evaluate as run_task
    from llmbench.tasks import load_task

    loaded = load_task(str(task), data=None if data is None else str(data))
    entry = ModelEntry(spec=model, label=label, chat=chat, scoring=scoring, options=dict(options or {}))
    config = RunConfig(limit=limit, seed=seed, n_resamples=resamples, use_cache=cache, tags=tuple(tags))
    db = _open(store, create=True)
    adapter = load_adapter(entry.spec, entry.options)
    response_cache = ResponseCache() if cache else None
    try:
        result = run_task(loaded, adapter, entry, config, store=db, cache=response_cache)
    finally:
        adapter.close()
        if response_cache is not None:
            response_cache.close()
    return _run(db, db.run(result.run_id))


def load_runs(
    store: str | Path | None = None,
    *,
    model: str | None = None,
    task: str | None = None,
    tag: str | None = None,
    complete_only: bool = True,
) -> Runs:
    """Stored runs, oldest first; ``model`` matches a substring of the model name. Never
    creates a store: a mistyped path is an error, not an empty result."""
    db = _open(store, create=False)
    infos = [r for r in db.runs(task=task)
             if (model is None or model in r.model)
             and (tag is None or tag in r.tags)
             and (not complete_only or r.status == "complete")]
    return Runs(tuple(_run(db, info) for info in infos))
