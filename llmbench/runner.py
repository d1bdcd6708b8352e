"""The wiring: task -> requests -> (cache | adapter) -> responses -> scores -> store.

``evaluate`` runs one model on one task. It refuses before the first request when the
task accepts no scoring mode the model can serve, answers what it can from the cache,
sends the rest to the adapter and commits its answers to the cache (the checkpoints that
make an interrupted run resume from near where it stopped: an adapter that streams its
answers has each one cached as it arrives, one that answers a whole list at once gets
pieces of about ``CHECKPOINT_S`` seconds of work, committed after each), scores, and
writes the run to the store through the store's typed records (``RunInfo`` with
``StoredRunConfig``, ``SampleRecord`` with ``AnswerInfo``, ``RunUsage``). It streams: the
samples flow through in chunks and only each metric's small per-sample statistics are
kept for the final reduce, so memory does not grow with prompts, token ids and records;
the run only looks complete once its metrics and status are written in one transaction.
The chunks go through a bounded pipeline (``_Run.stream``): the next chunk is built and the
previous one scored and stored while the model answers the current one; a streaming adapter
takes all the chunks through one ``run_chunks`` call, so a pool of replicas can start on the
next chunk before the current one's last answers are back.
"""

from __future__ import annotations

import contextlib
import gc
import json
import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import Field

from llmbench.cache import ResponseCache, request_keys
from llmbench.environment import environment
from llmbench.errors import UserError
from llmbench.models import model_kind
from llmbench.models.base import ModelAdapter
from llmbench.models.openai.scrub import redact_urls
from llmbench.store import (
    AnswerInfo,
    ResultStore,
    RunInfo,
    RunUsage,
    SampleRecord,
    Status,
    StoredMetric,
    StoredRunConfig,
    new_id,
    now_iso,
)
from llmbench.store.lifecycle import HEARTBEAT_EVERY_S
from llmbench.tasks.base import Task
from llmbench.types import Frozen, MetricValue, Request, RequestKind, Response, Sample

if TYPE_CHECKING:  # imported in build_metrics: metric libraries load only when a run scores
    from llmbench.metrics.base import Metric


class RunError(UserError):
    """The run cannot start (e.g. no scoring mode in common); one line, exit code 2."""


class ModelEntry(Frozen):
    """A model as a suite or the CLI names it: spec + adapter options + prompt style."""

    spec: str
    label: str | None = None
    chat: bool = False
    # Force one of the task's scoring modes for this model (e.g. loglikelihood instead of an
    # API's first-token classify); None takes the task's first mode the model serves.
    scoring: RequestKind | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def display(self) -> str:
        return self.label or self.spec


class RunConfig(Frozen):
    limit: int | None = Field(default=None, ge=1)
    seed: int = 0
    n_resamples: int = Field(default=1000, ge=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    use_cache: bool = True
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunResult:
    run_id: str
    model: str
    task: str
    status: Status
    metrics: list[MetricValue]
    primary_metric: str
    scoring_mode: str
    n_samples: int
    n_errors: int
    cache_hits: int
    cache_misses: int
    usage: RunUsage


ProgressFn = Callable[[int], None]


def prompt_text(request: Request) -> str:
    if isinstance(request.prompt, str):
        return request.prompt
    return json.dumps([m.model_dump() for m in request.prompt], ensure_ascii=False)


def choose_mode(task: Task, adapter: ModelAdapter, model: str, forced: RequestKind | None = None) -> RequestKind:
    if forced is not None:
        if forced not in task.scoring:
            raise RunError(f"task '{task.name}' does not accept scoring by {forced} (it accepts "
                           f"{', '.join(task.scoring)}) — drop the forced mode (--scoring, or the suite model's "
                           "'scoring:') or add it to the task's 'scoring:' list")
        if forced not in adapter.supports:
            raise RunError(f"model '{model}' cannot score by {forced} (it serves "
                           f"{', '.join(sorted(adapter.supports)) or 'nothing'}) — drop the forced mode (--scoring, "
                           "or the suite model's 'scoring:') or pick another")
        return forced
    mode = task.choose_mode(adapter.supports)
    if mode is None:
        raise RunError(
            f"task '{task.name}' accepts scoring by {', '.join(task.scoring)} but model '{model}' "
            f"serves only {', '.join(sorted(adapter.supports)) or 'nothing'} — pick another model or "
            f"add a mode it serves to the task's 'scoring:' list"
        )
    return mode


def build_metrics(task: Task) -> list[tuple[Metric, dict[str, Any]]]:
    from llmbench.metrics import get_metric

    return [(get_metric(ref.name, labels=task.labels, **ref.args), ref.args) for ref in task.metrics]


def _flag(response: Response, mode: RequestKind) -> str | None:
    """Why an answer is scored but should not be trusted blindly: cut at max_new_tokens
    (``length`` on a generation, which is expected to end by itself; a one-token classify
    ends on ``length`` by design) or partly withheld by a content filter."""
    if response.finish_reason == "length" and mode == "generate":
        return "truncated"
    if response.finish_reason == "content_filter":
        return "content_filter"
    return None


@dataclass
class _Usage:
    """Token, cost, retry and latency totals, accumulated chunk by chunk. ``attempts`` and
    ``retries`` count the requests this run sent (a cached answer sent none);
    ``latency_*`` is the successful attempt's, ``latency_total_*`` end to end (retries and
    back-off included)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cost_usd: float | None = None
    attempts: int = 0
    retries: int = 0
    latencies: list[float] = field(default_factory=list)
    latencies_total: list[float] = field(default_factory=list)
    finish_reasons: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)

    def add(self, responses: Sequence[Response | None], mode: RequestKind) -> None:
        for r in responses:
            if r is None:
                continue
            if not r.cached:
                self.attempts += r.attempts
                self.retries += max(0, r.attempts - 1)
            if r.latency_total_s is not None:
                self.latencies_total.append(r.latency_total_s)
            if r.finish_reason is not None:
                self.finish_reasons[r.finish_reason] = self.finish_reasons.get(r.finish_reason, 0) + 1
            if r.error is not None:
                continue
            if (flag := _flag(r, mode)) is not None:
                self.flagged[flag] = self.flagged.get(flag, 0) + 1
            if r.usage:
                self.prompt_tokens += r.usage.prompt_tokens
                self.completion_tokens += r.usage.completion_tokens
                self.cached_prompt_tokens += r.usage.cached_prompt_tokens
            if r.cost_usd is not None:
                self.cost_usd = (self.cost_usd or 0.0) + r.cost_usd
            if r.latency_s is not None:
                self.latencies.append(r.latency_s)

    def summary(self, slices: dict[str, Any] | None = None) -> RunUsage:
        def pct(values: list[float], q: int) -> float | None:
            lat = sorted(values)
            if not lat:
                return None
            return lat[0] if len(lat) == 1 else statistics.quantiles(lat, n=100, method="inclusive")[q - 1]

        return RunUsage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
                        cached_prompt_tokens=self.cached_prompt_tokens, cost_usd=self.cost_usd,
                        attempts=self.attempts, retries=self.retries,
                        latency_p50_s=pct(self.latencies, 50), latency_p95_s=pct(self.latencies, 95),
                        latency_total_p50_s=pct(self.latencies_total, 50),
                        latency_total_p95_s=pct(self.latencies_total, 95),
                        finish_reasons=dict(sorted(self.finish_reasons.items())),
                        flagged=dict(sorted(self.flagged.items())), slices=slices)


@dataclass
class _Chunk:
    """One slice of the task on its way through: samples, their requests and cache keys."""

    offset: int
    samples: list[Sample]
    requests: list[Request]
    keys: list[str]
    found: dict[str, Response]

    @property
    def misses(self) -> bool:
        return len(self.found) < len(set(self.keys))


@dataclass
class _Waiting:
    """A chunk a streaming adapter has taken: its answers so far (cached ones included), the
    positions it was asked for, and how many of those are still out."""

    chunk: _Chunk
    out: list[Response | None]
    todo: list[int]
    left: int


#: Samples that travel together through requests -> answers -> scores -> store. Large
#: enough that length-sorted batches stay full, small enough that a 100k-sample run holds
#: a few MB of prompts, token ids and records instead of gigabytes.
CHUNK_SAMPLES = 2048

#: Seconds of model work between two checkpoints of the response cache. The runner hands
#: the adapter pieces of about this much work (measured as the run goes) and commits their
#: answers after each, so a run killed at any moment resumes from at most this far back,
#: even when the adapter answers a whole batch at once.
CHECKPOINT_S = 30.0
#: The first piece, before the run has measured how fast the model answers.
FIRST_PIECE = 16
#: Chunks each pipeline stage may hold ahead of the next one (see ``_Run.stream``): one
#: chunk is built while the model answers another and a third is scored and stored, so at
#: most about five chunks are alive at once. 0: the stages run one after the other, in this
#: thread (what the pipeline's results are compared with in the tests).
PIPELINE_DEPTH = 1


def evaluate(
    task: Task,
    adapter: ModelAdapter,
    entry: ModelEntry,
    config: RunConfig,
    *,
    store: ResultStore,
    cache: ResponseCache | None,
    batch_id: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: ProgressFn | None = None,
    chunk_samples: int = CHUNK_SAMPLES,
    checkpoint_s: float = CHECKPOINT_S,
    pipeline_depth: int = PIPELINE_DEPTH,
) -> RunResult:
    """Run ``entry``'s ``adapter`` on ``task`` and store the run (see the module docstring).

    The adapter's scoring notes (``take_scoring_notes``: fallbacks it took) are stored with
    the run once its answers are in; a fallback taken for part of the run is still the run's
    note. Answers from the response cache bring none: an earlier run computed them."""
    mode = choose_mode(task, adapter, entry.display, entry.scoring)
    run = _Run(task, adapter, entry, config, mode, cache if config.use_cache else None, chunk_samples)
    run.depth = pipeline_depth
    run_id = new_id()
    store.begin_run(run.info(run_id, batch_id or run_id))
    # From here on the run exists: an error marks it failed (with the reason) and Ctrl-C
    # interrupted, instead of leaving it 'running' forever.
    try:
        if on_start:
            on_start(task.sample_count(limit=config.limit))
        adapter.take_scoring_notes()  # notes of earlier work belong to earlier runs
        with _frozen_heap():
            run.stream(store, run_id, _with_heartbeat(store, run_id, on_progress), _Pacer(checkpoint_s))
        values, usage = run.reduce()
        status: Status = "complete" if run.n_errors == 0 else "incomplete"
        store.finish_run(run_id, status=status, metrics=values, notes=adapter.take_scoring_notes(), counts={
            "n_samples": run.n_samples, "n_errors": run.n_errors, "cache_hits": run.hits,
            "cache_misses": run.n_samples - run.hits, "usage": usage.model_dump(mode="json"),
        })
    except BaseException as err:
        with contextlib.suppress(Exception):  # the original error matters more than this write
            store.mark(run_id, "interrupted" if isinstance(err, KeyboardInterrupt) else "failed",
                       reason=str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}")
        raise
    return RunResult(run_id=run_id, model=entry.display, task=task.name, status=status,
                     metrics=[v.value for v in values], primary_metric=task.primary_metric,
                     scoring_mode=mode, n_samples=run.n_samples, n_errors=run.n_errors,
                     cache_hits=run.hits, cache_misses=run.n_samples - run.hits, usage=usage)


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """The objects alive when the answers start (the task's rows and samples, a loaded model)
    left out of the garbage collector's full passes until the run ends (``gc.freeze``).

    A run makes a few short-lived objects per answer, and every so many of them CPython scans
    every live object for cycles; with a 50,000-row task loaded that scan was about 15% of the
    driver's time. Nothing is lost: cyclic garbage among the frozen objects is collected after
    ``gc.unfreeze`` like any other; what the run itself allocates is collected as usual."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _Run:
    """One (model, task) run on its way through: what is fixed before the first request
    (mode, metrics, the first chunk, whether the model had to load) and the running totals."""

    def __init__(self, task: Task, adapter: ModelAdapter, entry: ModelEntry, config: RunConfig,
                 mode: RequestKind, cache: ResponseCache | None, chunk_samples: int) -> None:
        self.task, self.adapter, self.entry, self.config, self.mode, self.cache = (
            task, adapter, entry, config, mode, cache)
        self.chunks = task.iter_samples(limit=config.limit, seed=config.seed, chunk_size=chunk_samples)
        first_samples = next(self.chunks, [])  # data errors first: cheapest to find
        metrics = build_metrics(task)  # unknown metric -> error before any model call
        self.metrics, self.not_computed = _served_metrics(task, mode, metrics)
        if task.train_split:
            adapter.fit(task.load_split(task.train_split))
        self.identity = adapter.identity()
        self.key_identity = adapter.cache_identity()
        self.method = adapter.scoring_method(mode)
        self.first: _Chunk | None = self.chunk_of(0, first_samples)
        self.prepared = False
        if self.first.misses:
            adapter.prepare()  # load the model only when the cache cannot answer; fail before storing
            self.prepared = True
        self.stats_per_metric: list[list[dict[str, Any]]] = [[] for _ in self.metrics]
        self.slice_keys: list[str] = []  # the slice of each scored sample (task.slice_by), in stats order
        self.totals = _Usage()
        self.n_samples = self.n_errors = self.hits = 0
        self.depth = PIPELINE_DEPTH

    def chunk_of(self, offset: int, samples: list[Sample]) -> _Chunk:
        requests = [self.adapter.adapt_request(r)
                    for r in self.task.build_requests(samples, self.mode, chat=self.entry.chat)]
        keys = request_keys(self.key_identity, self.task.name, self.task.version, requests)
        return _Chunk(offset, samples, requests, keys, self.cache.get_many(keys) if self.cache else {})

    def info(self, run_id: str, batch_id: str) -> RunInfo:
        task, adapter = self.task, self.adapter
        stored = StoredRunConfig(
            **self.config.model_dump(mode="json"), model=redact_urls(self.entry.model_dump(mode="json")),
            labels=list(task.labels) if task.labels else None, task=task.config_fingerprint(),
            model_info=adapter.describe(), metric_stats={m.name: m.describe_stats() for m, _ in self.metrics},
            not_computed=self.not_computed)
        return RunInfo(
            id=run_id, batch_id=batch_id, created_at=now_iso(), finished_at=None,
            status="running", model=self.entry.display, model_kind=model_kind(self.entry.spec),
            model_identity=self.identity, task=task.name, task_kind=task.kind, task_version=task.version,
            task_fingerprint=task.fingerprint(), scoring_mode=self.mode,
            scoring_method=self.method, primary_metric=task.primary_metric,
            config=stored.model_dump(mode="json"), environment=environment(task.source),
            tags=list(self.config.tags), usage={})

    def stream(self, store: ResultStore, run_id: str, progress: ProgressFn, pacer: _Pacer) -> None:
        """Answer, score and store chunk by chunk; only the metrics' per-sample stats stay.

        A bounded pipeline of three stages, so the model (a pool of Ray replicas above all)
        never waits for the driver's own work: a thread builds chunk k+1 (prompts, cache
        keys, cache lookups) while this thread has the model answer chunk k, and another
        thread scores and stores chunk k-1. Each stage holds at most ``depth`` chunks ahead
        of the next, so memory stays bounded. Chunks are scored and stored in order, each in
        one store transaction, so the records and metrics are those of the sequential run;
        an answer is cached the moment it arrives, as before, so an interrupted run resumes
        from the cache. On an error or an interrupt the chunks the model had finished are
        still scored and stored, as the sequential run stored them, and nothing after; both
        threads have stopped before the run is marked failed or interrupted.
        """
        warm = threading.Thread(target=_warm_up, args=([m for m, _ in self.metrics],), daemon=True)
        warm.start()  # metric libraries import while the model runs (torch releases the GIL)

        def score_and_store(item: tuple[_Chunk, list[Response | None]]) -> None:
            chunk, responses = item
            warm.join()  # scoring needs the metric libraries (instant after the first chunk)
            records = _score(self.task, chunk, responses, self.mode, self.metrics, self.stats_per_metric,
                             self.slice_keys)
            store.add_samples(run_id, records)
            self.totals.add(responses, self.mode)
            self.n_samples += len(records)
            self.n_errors += sum(1 for r in records if r.error is not None)
            self.hits += sum(1 for r in responses if r is not None and r.cached)

        built = _Ahead(self._built_chunks(), self.depth, "llmbench-build")
        scorer = _Behind(score_and_store, self.depth, "llmbench-score")

        def checked(k: int) -> None:  # a scoring error stops the model at its next answer
            scorer.check()
            progress(k)

        try:
            if self.adapter.streams_answers:
                self._answer_stream(built, scorer.put, checked)
            else:
                for chunk in built:
                    if chunk.misses and not self.prepared:
                        self.adapter.prepare()
                        self.prepared = True
                    scorer.put((chunk, _answer(chunk, self.adapter, self.cache, checked, pacer)))
            scorer.finish()
        except BaseException:
            scorer.stop()
            raise
        finally:
            built.close()

    def _answer_stream(self, chunks: Iterable[_Chunk], done: Callable[[tuple[_Chunk, list[Response | None]]], None],
                       on_progress: ProgressFn) -> None:
        """A streaming adapter's answers to every chunk through one ``run_chunks`` call, which
        may start on chunk k+1 while chunk k's last answers are out (a pool of replicas never
        waits at a chunk's end). Each answer is cached as it arrives; each chunk goes on to
        ``done`` (scoring and storing), in order, once all its answers are in — what ``_answer``
        gives chunk by chunk. A chunk that is all cached is never sent."""
        cache, waiting = self.cache, deque[_Waiting]()
        first = 0  # the chunk number of ``waiting[0]``

        def requests() -> Iterator[list[Request]]:
            for chunk in chunks:
                out, todo = _from_cache(chunk, on_progress)
                if todo and not self.prepared:
                    self.adapter.prepare()
                    self.prepared = True
                waiting.append(_Waiting(chunk, out, todo, len(todo)))
                yield [chunk.requests[i] for i in todo]

        def release() -> None:
            nonlocal first
            while waiting and waiting[0].left == 0:
                ready = waiting.popleft()
                first += 1
                if cache is not None:
                    cache.flush()  # the checkpoint: a kill from here on loses none of this chunk's answers
                done((ready.chunk, ready.out))

        try:
            for c, j, response in self.adapter.run_chunks(requests()):
                item = waiting[c - first]
                i = item.todo[j]
                item.out[i] = response
                if cache is not None:
                    cache.put(item.chunk.keys[i], response)
                item.left -= 1
                on_progress(1)
                if item.left == 0:
                    release()
            release()
        finally:
            if cache is not None:
                cache.flush()

    def _built_chunks(self) -> Iterator[_Chunk]:
        first, self.first = self.first, None  # the pipeline holds it from here; nobody else may
        assert first is not None, "a run streams once"
        offset = first.offset + len(first.samples)
        yield first
        del first
        for samples in self.chunks:
            yield self.chunk_of(offset, samples)
            offset += len(samples)

    def reduce(self) -> tuple[list[StoredMetric], RunUsage]:
        config = self.config
        values: list[StoredMetric] = []
        for (metric, args), stats in zip(self.metrics, self.stats_per_metric, strict=True):
            for v in metric.aggregate(stats, n_resamples=config.n_resamples, seed=config.seed,
                                      confidence=config.confidence):
                values.append(StoredMetric(value=v, metric=metric.name, metric_args=args))
        slices = None
        if self.task.slice_by is not None and self.slice_keys:
            from llmbench.metrics.slices import slice_report

            slices = slice_report(
                self.task.slice_by,
                [(m, st) for (m, _), st in zip(self.metrics, self.stats_per_metric, strict=True)],
                self.slice_keys, n_resamples=config.n_resamples, seed=config.seed, confidence=config.confidence)
        return values, self.totals.summary(slices)


def _with_heartbeat(store: ResultStore, run_id: str, on_progress: ProgressFn | None) -> ProgressFn:
    """``on_progress`` that also moves the run's heartbeat, at most every HEARTBEAT_EVERY_S
    (one tiny UPDATE): a slow model batch still shows the run as live, not interrupted."""
    last = time.monotonic()

    def progress(k: int) -> None:
        nonlocal last
        if on_progress is not None:
            on_progress(k)
        if time.monotonic() - last >= HEARTBEAT_EVERY_S:
            last = time.monotonic()
            store.heartbeat(run_id)

    return progress


def _warm_up(metrics: Sequence[Metric]) -> None:
    for metric in metrics:
        with contextlib.suppress(Exception):  # a failing import will fail again, visibly, when scoring
            metric.warm_up()


_T = TypeVar("_T")
_END = object()


class _Ahead(Generic[_T]):
    """Iterate ``source`` in a thread of its own, at most ``depth`` items ahead of the
    consumer (``depth`` 0: in the consumer's thread, no thread at all). An error raised by
    ``source`` is raised to the consumer where that item would have been."""

    def __init__(self, source: Iterator[_T], depth: int, name: str) -> None:
        self._source = source
        self._stop = threading.Event()
        self._queue: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=max(1, depth))
        self._thread: threading.Thread | None = None
        if depth > 0:
            self._thread = threading.Thread(target=self._fill, daemon=True, name=name)
            self._thread.start()

    def _fill(self) -> None:
        try:
            for item in self._source:
                if self._stop.is_set():
                    return
                self._queue.put((item, None))  # waits while the consumer is ``depth`` behind
            self._queue.put((_END, None))
        except BaseException as err:  # handed to the consumer, raised there
            self._queue.put((_END, err))

    def __iter__(self) -> Iterator[_T]:
        if self._thread is None:
            yield from self._source
            return
        while True:
            item, err = self._queue.get()
            if err is not None:
                raise err
            if item is _END:
                return
            yield item

    def close(self) -> None:
        """Stop the thread (after the item it is building) and wait for it."""
        self._stop.set()
        while self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)  # frees a put the thread may be waiting in
        self._thread = None


class _Behind(Generic[_T]):
    """``work(item)`` on each item ``put``, in order, in a thread of its own, with at most
    ``depth`` items waiting (``depth`` 0: at once, in the caller's thread). The first error
    ``work`` raises is raised to the caller by its next ``put``, ``check`` or ``finish``; the
    items after it are dropped."""

    def __init__(self, work: Callable[[_T], None], depth: int, name: str) -> None:
        self._work = work
        self._error: BaseException | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._thread: threading.Thread | None = None
        if depth > 0:
            self._thread = threading.Thread(target=self._drain, daemon=True, name=name)
            self._thread.start()

    def _drain(self) -> None:
        while (item := self._queue.get()) is not _END:
            if self._error is not None:
                continue  # keep taking items, so a put never waits on a stopped worker
            try:
                self._work(item)
            except BaseException as err:  # raised to the caller by ``check``
                self._error = err

    def check(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: _T) -> None:
        self.check()
        if self._thread is None:
            self._work(item)
        else:
            self._queue.put(item)

    def finish(self) -> None:
        """Wait until every item is done; raise the first error."""
        self._join()
        self.check()

    def stop(self) -> None:
        """Finish the items already put and stop, without raising: the caller is on its
        way out with an error of its own, which matters more."""
        self._join()

    def _join(self) -> None:
        if self._thread is not None:
            self._queue.put(_END)
            self._thread.join()
            self._thread = None



class _Pacer:
    """How many requests to hand the adapter at once so each piece is about ``checkpoint_s``
    of work: ``FIRST_PIECE`` until the run has measured a rate, then rate x ``checkpoint_s``
    (a fast model gets whole chunks, so its batches stay full)."""

    def __init__(self, checkpoint_s: float) -> None:
        self.checkpoint_s = checkpoint_s
        self.answered = 0
        self.seconds = 0.0

    def size(self, remaining: int) -> int:
        if self.answered == 0 or self.seconds <= 0:
            return min(remaining, FIRST_PIECE)
        return max(1, min(remaining, int(self.answered / self.seconds * self.checkpoint_s)))

    def record(self, n: int, seconds: float) -> None:
        self.answered += n
        self.seconds += seconds


def _from_cache(chunk: _Chunk, on_progress: ProgressFn) -> tuple[list[Response | None], list[int]]:
    """The chunk's answers the cache had (None where it had none; counted as progress) and
    the positions still to ask the model for."""
    out: list[Response | None] = [chunk.found.get(key) for key in chunk.keys]
    if chunk.found:
        on_progress(sum(1 for r in out if r is not None))
    return out, [i for i, r in enumerate(out) if r is None]


def _answer(chunk: _Chunk, adapter: ModelAdapter, cache: ResponseCache | None, on_progress: ProgressFn,
            pacer: _Pacer) -> list[Response | None]:
    """The chunk's responses: from the cache where it has them, else from the adapter, in
    pieces (``_Pacer``) whose answers are committed to the cache after each one (an adapter
    that does not stream its answers; the others go through ``_Run._answer_stream``)."""
    out, todo = _from_cache(chunk, on_progress)
    try:
        while todo:
            n = pacer.size(len(todo))
            piece, todo = todo[:n], todo[n:]
            began = time.monotonic()
            for j, response in adapter.run([chunk.requests[i] for i in piece]):
                i = piece[j]
                out[i] = response
                if cache is not None:
                    cache.put(chunk.keys[i], response)
                on_progress(1)
            pacer.record(len(piece), time.monotonic() - began)
            if cache is not None:
                cache.flush()  # the checkpoint: a kill from here on loses none of these answers
    finally:
        if cache is not None:
            cache.flush()
    return out


def _served_metrics(task: Task, mode: RequestKind, metrics: list[tuple[Metric, dict[str, Any]]],
                    ) -> tuple[list[tuple[Metric, dict[str, Any]]], dict[str, str]]:
    """The metrics this run computes, and why the others are not: a calibration metric reads
    label probabilities, which a run scored by generation does not have."""
    from llmbench.metrics.calibration import ProbabilityMetric

    if task.gives_label_probabilities(mode):
        return metrics, {}
    kept = [(m, a) for m, a in metrics if not isinstance(m, ProbabilityMetric)]
    why = f"scoring by {mode} gives no label probabilities"
    return kept, {m.name: why for m, _ in metrics if isinstance(m, ProbabilityMetric)}


def _score(
    task: Task, chunk: _Chunk, responses: Sequence[Response | None], mode: RequestKind,
    metrics: list[tuple[Any, dict[str, Any]]], per_metric: list[list[dict[str, Any]]],
    slice_keys: list[str] | None = None,
) -> list[SampleRecord]:
    """Records for one chunk; each metric's per-sample stats are appended to ``per_metric``
    (a calibration metric's from the task's label probabilities) and each scored sample's
    slice to ``slice_keys`` (also kept in its record)."""
    from llmbench.metrics.calibration import ProbabilityMetric

    records: list[SampleRecord] = []
    for k, (sample, request, response) in enumerate(zip(chunk.samples, chunk.requests, responses, strict=True)):
        assert response is not None
        common: dict[str, Any] = {
            "idx": chunk.offset + k, "sample_id": sample.id, "input": sample.input,
            "prompt": prompt_text(request), "references": list(sample.references),
            "latency_s": response.latency_s, "cost_usd": response.cost_usd,
            "prompt_tokens": response.usage.prompt_tokens if response.usage else None,
            "completion_tokens": response.usage.completion_tokens if response.usage else None,
            "answer": answer_info(response, mode)}
        if response.error is not None:
            records.append(SampleRecord(prediction=None, stats={}, error=response.error, **common))
            continue
        prediction = task.predict(sample, response, mode)
        stats: dict[str, Any] = {}
        probs = task.label_probabilities(sample, response, mode)
        for (metric, _), bucket in zip(metrics, per_metric, strict=True):
            if isinstance(metric, ProbabilityMetric):
                if probs is None:
                    continue
                s = metric.probability_stats(prediction=prediction, probabilities=probs,
                                             references=sample.references)
            else:
                s = metric.answer_stats(prediction=prediction, sample=sample, response=response)
            bucket.append(s)
            stats[metric.name] = s
        key = task.slice_of(sample)
        if key is not None and slice_keys is not None:
            slice_keys.append(key)
        records.append(SampleRecord(prediction=prediction, stats=stats, slice=key, **common))
    return records


def answer_info(response: Response, mode: RequestKind) -> AnswerInfo:
    """How ``response`` came about, as the sample record keeps it (raw output, per-choice
    log-likelihoods, finish reason, retries, end-to-end latency, flag)."""
    return AnswerInfo(
        output=response.text,
        choice_logprobs=list(response.logprobs) if response.logprobs is not None else None,
        greedy_match=list(response.greedy_match) if response.greedy_match is not None else None,
        label_scores=dict(response.label_scores) if response.label_scores is not None else None,
        finish_reason=response.finish_reason,
        attempts=response.attempts if not response.cached and response.attempts != 1 else None,
        latency_total_s=response.latency_total_s,
        flag=_flag(response, mode) if response.error is None else None,
        cached=response.cached)
