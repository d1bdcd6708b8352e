"""Dynamic batching for ``llmbench serve``: one thread owns the model.

HTTP handlers run on the server's event loop and must not block it; the model
is neither thread-safe nor efficient one request at a time. So handlers put a
job on a queue and await a future, and a single worker thread collects whatever
arrives within ``wait_s`` (a few milliseconds) into one call — ``adapter.run``
for text requests, the token scorer's ``generate`` / ``score`` for token-level
ones, the same batching the adapter does for an offline run — and settles each
future on the loop it came from. A job whose client has gone away (its future
cancelled) before its batch starts is dropped, not computed.

A generation job may carry a ``listener`` (streaming): it is called on the model thread with
each token id as the token is produced (``llmbench.models.hf.generate.on_tokens``).

What a long-lived server keeps is bounded: ``batch_sizes`` counts batches by size (at most
``max_batch`` keys) instead of listing every batch ever run.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from llmbench.models.base import GenerateJob, ModelAdapter, ScoreJob, TokenLogprob, TokenScorer
from llmbench.types import Request, Response

log = logging.getLogger(__name__)
T = TypeVar("T")


Kind = Literal["run", "generate", "score", "call"]


@dataclass
class _Job:
    kind: Kind
    payload: Any
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    queued_at: float = field(default_factory=time.monotonic)
    listener: Callable[[int], None] | None = None


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the client went away and the handler was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class ModelWorker:
    """Collects concurrent jobs into batches for ``adapter.run`` and the token scorer."""

    def __init__(self, adapter: ModelAdapter, scorer: TokenScorer | None, *, wait_s: float = 0.005,
                 max_batch: int = 32) -> None:
        self.adapter, self.scorer = adapter, scorer
        self.wait_s, self.max_batch = wait_s, max_batch
        # generation batches by size (bounded: at most max_batch keys), for tests and stats
        self.batch_sizes: Counter[int] = Counter()
        self.dropped = 0  # jobs not computed because their client had gone away
        self.jobs: Counter[str] = Counter()  # jobs computed, by kind (call, run, generate, score)
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="llmbench-serve-model",
                                                daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=timeout)

    async def _submit(self, kind: Kind, payload: Any,
                      listener: Callable[[int], None] | None = None) -> Any:
        self.start()
        loop = asyncio.get_running_loop()
        job = _Job(kind, payload, loop, loop.create_future(), listener=listener)
        self._queue.put(job)
        return await job.future

    async def run(self, request: Request) -> Response:
        """A text request through ``adapter.run`` (models without a token scorer)."""
        result: Response = await self._submit("run", request)
        return result

    async def generate(self, job: GenerateJob,
                       listener: Callable[[int], None] | None = None) -> Response:
        """Generation from token ids through the token scorer; ``listener(token_id)`` is called
        on the model thread for each token as it is produced (it must not block)."""
        result: Response = await self._submit("generate", job, listener)
        return result

    async def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the model thread (tokenizers are not safe to share across threads)."""
        result: T = await self._submit("call", fn)
        return result

    async def score(self, job: ScoreJob) -> list[TokenLogprob]:
        result: list[TokenLogprob] = await self._submit("score", job)
        return result

    # ------------------------------------------------------------ worker side
    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stopping = [first], False
            deadline = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._process(batch)
            if stopping:
                return

    @staticmethod
    def _reply(job: _Job, value: Any = None, error: BaseException | None = None) -> None:
        job.loop.call_soon_threadsafe(_settle, job.future, value, error)

    def _process(self, batch: list[_Job]) -> None:
        live = [j for j in batch if not j.future.done()]  # cancelled: the client went away
        self.dropped += len(batch) - len(live)
        self.jobs.update(j.kind for j in live)
        for kind, handle in (("call", self._call), ("run", self._run),
                             ("generate", self._generate), ("score", self._score)):
            jobs = [j for j in live if j.kind == kind]
            if jobs:
                handle(jobs)

    def _run(self, jobs: list[_Job]) -> None:
        self.batch_sizes[len(jobs)] += 1
        pending = dict(enumerate(jobs))
        error: BaseException | None = None
        try:
            for i, response in self.adapter.run([j.payload for j in jobs]):
                job = pending.pop(i, None)
                if job is not None:
                    self._reply(job, response)
        except Exception as err:  # one bad batch must not kill the server
            log.exception("adapter.run failed on a batch of %d", len(jobs))
            error = err
        for job in pending.values():
            self._reply(job, error=error or RuntimeError("the adapter returned no answer"))

    def _call(self, jobs: list[_Job]) -> None:
        for job in jobs:
            try:
                self._reply(job, job.payload())
            except Exception as err:  # the caller turns it into an HTTP error
                self._reply(job, error=err)

    def _generate(self, jobs: list[_Job]) -> None:
        assert self.scorer is not None, "generate jobs need a token scorer"
        self.batch_sizes[len(jobs)] += 1
        with _listening(jobs):
            self._settle_all(jobs, lambda: self.scorer.generate([j.payload for j in jobs]))  # type: ignore[union-attr]

    def _score(self, jobs: list[_Job]) -> None:
        assert self.scorer is not None, "score jobs need a token scorer"
        self._settle_all(jobs, lambda: self.scorer.score([j.payload for j in jobs]))  # type: ignore[union-attr]

    def _settle_all(self, jobs: list[_Job], compute: Callable[[], Sequence[Any]]) -> None:
        """One batched call; its results go to the jobs in order, or its error to all."""
        try:
            results = compute()
        except Exception as err:  # one bad batch must not kill the server
            log.exception("%s failed on a batch of %d", jobs[0].kind, len(jobs))
            for job in jobs:
                self._reply(job, error=err)
            return
        for job, value in zip(jobs, results, strict=True):
            self._reply(job, value)


def _listening(jobs: list[_Job]) -> AbstractContextManager[None]:
    """Route the tokens of a generation batch to its jobs' listeners (job ``i`` is item ``i`` of
    the scorer's batch). The HF generation module is imported only when a job listens: a
    token scorer exists then, so torch is loaded already; another scorer never calls it and
    its stream simply arrives whole at the end."""
    listeners = {i: j.listener for i, j in enumerate(jobs) if j.listener is not None}
    if not listeners:
        return nullcontext()
    try:
        from llmbench.models.hf.generate import on_tokens
    except ImportError:  # a plugin scorer without torch: its streams arrive whole
        return nullcontext()

    def route(index: int, token: int) -> None:
        listener = listeners.get(index)
        if listener is None:
            return
        try:
            listener(token)
        except Exception:  # a broken stream must not stop the batch
            log.exception("a stream listener failed")
            listeners.pop(index, None)

    return on_tokens(route)
