"""The runner's bounded pipeline (build ahead, answer, score and store behind): the stored
records and metrics equal the sequential run's, errors and interrupts stop both threads and
store the whole chunks answered before them, the builder stays a bounded distance ahead, and
an adapter that streams its answers gets whole chunks rather than checkpoint pieces."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from llmbench.cache import ResponseCache
from llmbench.models.base import ModelAdapter
from llmbench.runner import FIRST_PIECE, ModelEntry, RunConfig, evaluate
from llmbench.store import ResultStore
from llmbench.tasks import load_task
from llmbench.tasks.base import Task
from llmbench.types import Request, RequestKind, Response

N = 103
CHUNK = 20  # 6 chunks, the last one short; more than FIRST_PIECE


class Echo(ModelAdapter):
    """Echoes the input (wrong for every third sample); fails the ids it is told to; records
    the size of every ``run`` call and can raise once ``stop_after`` answers were given."""

    name = "echo"
    supports: frozenset[RequestKind] = frozenset({"generate"})

    def __init__(self, *, fail: frozenset[str] = frozenset(), stop_after: int | None = None,
                 streams: bool = False) -> None:
        self.fail, self.stop_after, self.streams_answers = fail, stop_after, streams
        self.calls: list[int] = []
        self.answered = 0

    def identity(self) -> dict[str, str]:
        return {"backend": "echo"}

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        self.calls.append(len(requests))
        for i, r in enumerate(requests):
            if self.stop_after is not None and self.answered >= self.stop_after:
                raise KeyboardInterrupt
            self.answered += 1
            n = int(r.sample_id[1:])
            if r.sample_id in self.fail:
                yield i, Response(error="HTTP 500")
            else:
                yield i, Response(text=(r.input or "") if n % 3 else "wrong", finish_reason="stop")


@pytest.fixture
def task(tmp_path: Path) -> Task:
    rows = [{"id": f"q{i}", "q": f"answer {i}", "a": [f"answer {i}"], "g": f"g{i % 4}"} for i in range(N)]
    (tmp_path / "qa.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "qa.yaml").write_text("name: qa_pipe\nkind: qa\ndataset: {path: qa.jsonl}\n"
                                      "fields: {id: id, input: q, target: a}\nslice_by: g\n")
    return load_task(str(tmp_path / "qa.yaml"))


def _rows(store: ResultStore, run_id: str) -> list[dict[str, Any]]:
    return [r.model_dump(exclude={"latency_s"}) for r in store.samples(run_id)]


def _uncached_rows(store: ResultStore, run_id: str) -> list[dict[str, Any]]:
    """The rows of a run on the half-warm cache, the even samples' answers marked cached (the
    only difference a warm cache makes) and the mark then cleared."""
    got = _rows(store, run_id)
    assert sum(r["answer"]["cached"] for r in got) == (N + 1) // 2
    for row in got:
        row["answer"]["cached"] = False
    return got


def _metrics(store: ResultStore, run_id: str) -> list[Any]:
    return sorted((m.value.name, m.value.value, m.value.ci_low, m.value.ci_high, m.value.n)
                  for m in store.metrics(run_id))


def _pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("llmbench-build", "llmbench-score")]


def _run(task: Task, tmp: Path, name: str, depth: int, adapter: Echo | None = None,
         cache: ResponseCache | None = None) -> tuple[ResultStore, str]:
    store = ResultStore(tmp / f"{name}.db")
    result = evaluate(task, adapter or Echo(fail=frozenset({"q5", "q17"})), ModelEntry(spec="echo:x"),
                      RunConfig(n_resamples=50), store=store, cache=cache, chunk_samples=CHUNK,
                      pipeline_depth=depth)
    return store, result.run_id


@pytest.mark.parametrize("depth", [1, 3])
def test_records_and_metrics_equal_the_sequential_run(task: Task, tmp_path: Path, depth: int) -> None:
    """Across 6 chunks, with failed samples, slices and a half-warm cache: the same rows (in
    the same order), the same metrics with their CIs, the same usage as with no pipeline."""
    seq, seq_id = _run(task, tmp_path, "seq", 0)
    rows = _rows(seq, seq_id)
    assert [r["idx"] for r in rows] == list(range(N))
    assert sum(r["error"] is not None for r in rows) == 2
    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:  # the even samples' answers cached first (failures are not), so chunks mix hits and misses
        _run(task, tmp_path, "warm", 0, Echo(fail=frozenset(f"q{i}" for i in range(1, N, 2))), cache)
        piped, piped_id = _run(task, tmp_path, "piped", depth, cache=cache)
    finally:
        cache.close()
    assert _uncached_rows(piped, piped_id) == rows
    assert _metrics(piped, piped_id) == _metrics(seq, seq_id)
    assert piped.run(piped_id).run_usage.slices == seq.run(seq_id).run_usage.slices
    assert _pipeline_threads() == []


def test_scoring_error_reaches_the_caller_and_stops_both_threads(task: Task, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = task.predict

    def predict(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2 * CHUNK + 3:  # in the third chunk
            raise ValueError("a metric broke")
        return original(*args, **kwargs)

    monkeypatch.setattr(task, "predict", predict)
    store = ResultStore(tmp_path / "db.sqlite")
    adapter = Echo()
    with pytest.raises(ValueError, match="a metric broke"):
        evaluate(task, adapter, ModelEntry(spec="echo:x"), RunConfig(n_resamples=0), store=store, cache=None,
                 chunk_samples=CHUNK, pipeline_depth=1)
    run = store.runs()[0]
    assert run.status == "failed" and "a metric broke" in (run.reason or "")
    assert len(store.samples(run.id)) == 2 * CHUNK  # the chunks before the bad one, whole
    assert adapter.answered < N  # the model stopped soon after, not at the end of the task
    assert _pipeline_threads() == []


def test_interrupt_keeps_whole_chunks_and_resumes_from_the_cache(task: Task, tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "db.sqlite")
    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:
        with pytest.raises(KeyboardInterrupt):
            evaluate(task, Echo(stop_after=2 * CHUNK + 5, streams=True), ModelEntry(spec="echo:x"),
                     RunConfig(n_resamples=0), store=store, cache=cache, chunk_samples=CHUNK, pipeline_depth=1)
        assert _pipeline_threads() == []
        run = store.runs()[0]
        assert run.status == "interrupted"
        # the chunks the model had finished, whole, as the sequential runner stored them
        assert [r.idx for r in store.samples(run.id)] == list(range(2 * CHUNK))
        again = Echo(streams=True)
        result = evaluate(task, again, ModelEntry(spec="echo:x"), RunConfig(n_resamples=0), store=store,
                          cache=cache, chunk_samples=CHUNK, pipeline_depth=1)
    finally:
        cache.close()
    assert result.status == "complete" and result.n_samples == N
    assert result.cache_hits == 2 * CHUNK + 5 and again.answered == N - (2 * CHUNK + 5)


def test_the_builder_stays_a_bounded_distance_ahead(task: Task, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """While the model answers chunk k, at most ``depth`` + 1 later chunks have been built (one
    queued, one in the builder's hands): memory does not grow with the task."""
    built = {"n": 0}
    original = task.iter_samples

    def counted(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for chunk in original(*args, **kwargs):
            built["n"] += 1
            yield chunk

    monkeypatch.setattr(task, "iter_samples", counted)
    seen: list[int] = []

    class Slow(Echo):
        def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
            threading.Event().wait(0.05)  # time for the builder to run ahead as far as it may
            seen.append(built["n"] - len(seen) - 1)  # chunks built beyond the one being answered
            return super().run(requests)

    _run(task, tmp_path, "bounded", 1, Slow(streams=True))
    assert len(seen) == 6 and max(seen) <= 2, seen
    assert max(seen) >= 1  # it does run ahead


@pytest.mark.parametrize("streams", [False, True])
def test_a_streaming_adapter_gets_whole_chunks(task: Task, tmp_path: Path, streams: bool) -> None:
    adapter = Echo(streams=streams)
    _run(task, tmp_path, f"s{streams}", 1, adapter)
    if streams:
        assert adapter.calls == [CHUNK] * 5 + [N - 5 * CHUNK]
    else:  # checkpoint pieces: the first one small, before the rate is known
        assert adapter.calls[0] == FIRST_PIECE < CHUNK and len(adapter.calls) > 6 and sum(adapter.calls) == N


class Interleaved(Echo):
    """Streams, and takes chunk k+1 before it has answered all of chunk k: half of each chunk,
    then the next chunk's first half, ... (what a pool of replicas does at a chunk's end)."""

    def run_chunks(self, chunks: Iterator[Sequence[Request]]) -> Iterator[tuple[int, int, Response]]:
        held: list[tuple[int, int, Response]] = []
        for c, requests in enumerate(chunks):
            answers = [(c, j, r) for j, r in super().run(requests)]
            half = len(answers) // 2
            yield from answers[:half]
            yield from held  # the previous chunk's second half, after this chunk's first
            held = answers[half:]
        yield from held


@pytest.mark.parametrize("depth", [0, 1])
def test_interleaved_answers_of_two_chunks_give_the_sequential_records(task: Task, tmp_path: Path,
                                                                       depth: int) -> None:
    seq, seq_id = _run(task, tmp_path, "seq", 0)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:  # a half-warm cache: some chunks send part of their samples
        _run(task, tmp_path, "warm", 0, Echo(fail=frozenset(f"q{i}" for i in range(1, N, 2))), cache)
        inter, inter_id = _run(task, tmp_path, "inter", depth,
                               Interleaved(fail=frozenset({"q5", "q17"}), streams=True), cache)
    finally:
        cache.close()
    assert _uncached_rows(inter, inter_id) == _rows(seq, seq_id)
    assert _metrics(inter, inter_id) == _metrics(seq, seq_id)
