"""The runner: refusal before any call, cache hits on rerun, failed samples never scored."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from llmbench.cache import ResponseCache
from llmbench.models.base import ModelAdapter
from llmbench.models.baselines import BaselineAdapter
from llmbench.runner import ModelEntry, RunConfig, RunError, evaluate
from llmbench.store import ResultStore
from llmbench.tasks import load_task
from llmbench.types import Request, RequestKind, Response


class EchoAdapter(ModelAdapter):
    """Answers generate requests with the sample input; fails the ids it is told to."""

    name = "echo"
    supports: frozenset[RequestKind] = frozenset({"generate"})

    def __init__(self, fail: set[str] | None = None) -> None:
        self.fail = fail or set()
        self.calls: list[str] = []

    def identity(self) -> dict[str, str]:
        return {"backend": "echo"}

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for i, r in enumerate(requests):
            self.calls.append(r.sample_id)
            if r.sample_id in self.fail:
                yield i, Response(error="HTTP 500 after 6 retries")
            else:
                yield i, Response(text=r.input or "", latency_s=0.01 * (i + 1))


@pytest.fixture
def qa_task(tmp_path: Path):  # type: ignore[no-untyped-def]
    rows = [{"id": f"q{i}", "q": f"answer {i}", "ctx": "c", "a": [f"answer {i}" if i % 3 else "nope"]}
            for i in range(12)]
    (tmp_path / "qa.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "qa.yaml").write_text("name: qa_echo\nkind: qa\ndataset: {path: qa.jsonl}\n"
                                      "fields: {id: id, input: q, context: ctx, target: a}\n")
    return load_task(str(tmp_path / "qa.yaml"))


def test_refuses_before_any_call(qa_task, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    adapter = BaselineAdapter("majority")
    store = ResultStore(tmp_path / "db.sqlite")
    with pytest.raises(RunError, match="accepts scoring by generate but model 'baseline:majority' serves only"):
        evaluate(qa_task, adapter, ModelEntry(spec="baseline:majority"), RunConfig(), store=store, cache=None)
    assert store.runs() == []


def test_scores_cache_and_rerun(qa_task, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = ResultStore(tmp_path / "db.sqlite")
    cache = ResponseCache(tmp_path / "cache.sqlite")
    adapter = EchoAdapter()
    entry = ModelEntry(spec="echo:x")
    first = evaluate(qa_task, adapter, entry, RunConfig(n_resamples=200), store=store, cache=cache)
    em = {m.name: m.value for m in first.metrics}
    assert em["exact_match"] == pytest.approx(100 * 8 / 12)  # SQuAD scale: 0-100
    assert (first.cache_hits, first.cache_misses, len(adapter.calls)) == (0, 12, 12)
    second = evaluate(qa_task, adapter, entry, RunConfig(n_resamples=200), store=store, cache=cache)
    assert (second.cache_hits, second.cache_misses, len(adapter.calls)) == (12, 0, 12)
    assert [m.value for m in second.metrics] == [m.value for m in first.metrics]
    stored = {m.value.name: m.value.value for m in store.metrics(first.run_id)}
    assert stored == {m.name: m.value for m in first.metrics}
    assert store.run(first.run_id).run_usage.latency_p50_s == pytest.approx(0.065)


def test_failed_samples_are_counted_not_scored_and_retried(qa_task, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = ResultStore(tmp_path / "db.sqlite")
    cache = ResponseCache(tmp_path / "cache.sqlite")
    flaky = EchoAdapter(fail={"q1", "q2"})
    r = evaluate(qa_task, flaky, ModelEntry(spec="echo:x"), RunConfig(n_resamples=100), store=store, cache=cache)
    assert r.status == "incomplete" and r.n_errors == 2
    assert all(m.n == 10 for m in r.metrics)
    rows = store.samples(r.run_id)
    assert [x.sample_id for x in rows if x.error] == ["q1", "q2"]
    healthy = EchoAdapter()
    again = evaluate(qa_task, healthy, ModelEntry(spec="echo:x"), RunConfig(n_resamples=100), store=store, cache=cache)
    assert healthy.calls == ["q1", "q2"] and again.status == "complete"


def test_a_fully_cached_rerun_never_loads_the_weights(qa_task, tiny_gpt2: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    store, cache = ResultStore(tmp_path / "db.sqlite"), ResponseCache(tmp_path / "cache")
    entry, config = ModelEntry(spec=f"hf:{tiny_gpt2}"), RunConfig(n_resamples=20)
    cold_adapter = HFAdapter(HFConfig(path=str(tiny_gpt2)))
    assert cold_adapter._rt is None  # constructing checks the folder and config only
    cold = evaluate(qa_task, cold_adapter, entry, config, store=store, cache=cache)
    assert cold_adapter._rt is not None and cold.cache_misses == 12

    warm_adapter = HFAdapter(HFConfig(path=str(tiny_gpt2)))
    warm = evaluate(qa_task, warm_adapter, entry, config, store=store, cache=cache)
    assert warm_adapter._rt is None  # every answer came from the cache
    assert (warm.cache_hits, warm.cache_misses) == (12, 0) and warm.metrics == cold.metrics


def test_a_broken_checkpoint_fails_before_a_run_is_stored(qa_task, tiny_gpt2: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from llmbench.models.base import ModelError
    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    broken = tmp_path / "broken"
    shutil.copytree(tiny_gpt2, broken)
    for weights in broken.glob("*.safetensors"):
        weights.write_bytes(b"not a safetensors file")
    store = ResultStore(tmp_path / "db.sqlite")
    adapter = HFAdapter(HFConfig(path=str(broken)))
    with pytest.raises(ModelError):
        evaluate(qa_task, adapter, ModelEntry(spec=f"hf:{broken}"), RunConfig(), store=store, cache=None)
    assert store.runs() == []


def _rows(store: ResultStore, run_id: str) -> list[tuple[object, ...]]:
    return [(s.idx, s.sample_id, s.prediction, s.error, json.dumps(s.stats, sort_keys=True))
            for s in store.samples(run_id)]


def test_streaming_in_chunks_gives_the_same_run(qa_task, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = ResultStore(tmp_path / "db.sqlite")
    entry, config = ModelEntry(spec="echo:x"), RunConfig(n_resamples=200)
    whole_adapter, chunked_adapter = EchoAdapter(fail={"q4"}), EchoAdapter(fail={"q4"})
    whole = evaluate(qa_task, whole_adapter, entry, config, store=store, cache=None)
    chunked = evaluate(qa_task, chunked_adapter, entry, config, store=store, cache=None, chunk_samples=5)
    assert chunked.metrics == whole.metrics and chunked.n_errors == whole.n_errors == 1
    assert chunked_adapter.calls == whole_adapter.calls == [f"q{i}" for i in range(12)]
    assert _rows(store, chunked.run_id) == _rows(store, whole.run_id)
    assert [s.idx for s in store.samples(chunked.run_id)] == list(range(12))


class StopAfter(EchoAdapter):
    """Dies (like Ctrl-C) when asked for more than ``n`` answers in total."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for i, response in super().run(requests):
            if len(self.calls) > self.n:
                raise KeyboardInterrupt
            yield i, response


def test_an_interrupted_streamed_run_never_looks_complete_and_resumes(qa_task, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, cache = ResultStore(tmp_path / "db.sqlite"), ResponseCache(tmp_path / "cache.sqlite")
    entry, config = ModelEntry(spec="echo:x"), RunConfig(n_resamples=100)
    with pytest.raises(KeyboardInterrupt):
        evaluate(qa_task, StopAfter(7), entry, config, store=store, cache=cache, chunk_samples=5)
    (broken,) = store.runs()
    # Ctrl-C marks the run interrupted at once (no heartbeat to wait out); no metrics
    assert broken.status == "interrupted" and store.metrics(broken.id) == []
    assert [s.sample_id for s in store.samples(broken.id)] == [f"q{i}" for i in range(5)]  # first chunk only
    resumed_adapter = EchoAdapter()
    resumed = evaluate(qa_task, resumed_adapter, entry, config, store=store, cache=cache, chunk_samples=5)
    assert resumed_adapter.calls == [f"q{i}" for i in range(7, 12)]  # 7 answers were cached as they came
    fresh = evaluate(qa_task, EchoAdapter(), entry, config, store=store, cache=None)
    assert resumed.status == "complete" and resumed.metrics == fresh.metrics
    assert _rows(store, resumed.run_id) == _rows(store, fresh.run_id)


def test_the_same_checkpoint_in_another_folder_answers_from_the_cache(qa_task, tiny_gpt2: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    store, cache = ResultStore(tmp_path / "db.sqlite"), ResponseCache(tmp_path / "cache")
    config = RunConfig(n_resamples=20)
    first = evaluate(qa_task, HFAdapter(HFConfig(path=str(tiny_gpt2))), ModelEntry(spec=f"hf:{tiny_gpt2}"),
                     config, store=store, cache=cache)
    copy = tmp_path / "another-clone" / "model"
    shutil.copytree(tiny_gpt2, copy)  # e.g. the same package in another venv
    moved = HFAdapter(HFConfig(path=str(copy)))
    again = evaluate(qa_task, moved, ModelEntry(spec=f"hf:{copy}"), config, store=store, cache=cache)
    assert (again.cache_hits, again.cache_misses) == (12, 0) and again.metrics == first.metrics
    assert moved._rt is None
    assert store.run(again.run_id).model_identity["path"] == str(copy)  # the record still says where
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("}", ', "note": 1}', 1))
    changed = evaluate(qa_task, HFAdapter(HFConfig(path=str(copy))), ModelEntry(spec=f"hf:{copy}"), config,
                       store=store, cache=cache)
    assert changed.cache_hits == 0  # different content, different key


class NotingAdapter(EchoAdapter):
    """An echo model that takes a fallback (and notes it) for the samples it is told to."""

    def __init__(self, fallback_for: set[str]) -> None:
        super().__init__()
        self.fallback_for = fallback_for
        self.notes: list[str] = []

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for i, r in super().run(requests):
            if requests[i].sample_id in self.fallback_for and "fell back" not in self.notes:
                self.notes.append("fell back")
            yield i, r

    def take_scoring_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes


def test_the_adapters_notes_are_stored_with_the_run_whose_answers_took_the_fallback(
        qa_task, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A fallback taken for one sample of one chunk is the run's note, and what the adapter
    noted before the run is not; the next run on the same adapter (a suite) starts with
    none, and a rerun answered from the cache computed nothing, so it has none."""
    store, cache = ResultStore(tmp_path / "db.sqlite"), ResponseCache(tmp_path / "cache.sqlite")
    adapter = NotingAdapter(fallback_for={"q9"})
    adapter.notes = ["left over from work before the run"]
    entry, config = ModelEntry(spec="echo:x"), RunConfig(n_resamples=10)
    noted = evaluate(qa_task, adapter, entry, config, store=store, cache=cache, chunk_samples=4)
    adapter.fallback_for = set()
    clean = evaluate(qa_task, adapter, entry, config, store=store, cache=None)
    rerun = NotingAdapter(fallback_for={"q9"})
    cached = evaluate(qa_task, rerun, entry, config, store=store, cache=cache)
    assert cached.cache_hits == 12 and rerun.calls == []
    assert [store.run(r.run_id).notes for r in (noted, clean, cached)] == [["fell back"], [], []]


class FreezeWatcher(EchoAdapter):
    """Records whether the task's samples (alive before the answers start) were out of the
    collector's reach while it answered."""

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        import gc

        self.frozen = gc.get_freeze_count()
        yield from super().run(requests)


@pytest.mark.parametrize("interrupt", [False, True])
def test_the_heap_is_frozen_while_a_run_answers_and_thawed_after(qa_task, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                 interrupt: bool) -> None:
    """``gc.freeze`` for the run (the collector's full passes over a big task's rows were 15%
    of the driver's time), ``gc.unfreeze`` after it, also when it ends by Ctrl-C."""
    import gc

    assert gc.get_freeze_count() == 0
    adapter = StopAfter(3) if interrupt else FreezeWatcher()
    if interrupt:
        with pytest.raises(KeyboardInterrupt):
            evaluate(qa_task, adapter, ModelEntry(spec="echo:x"), RunConfig(n_resamples=0),
                     store=ResultStore(tmp_path / "db.sqlite"), cache=None)
    else:
        evaluate(qa_task, adapter, ModelEntry(spec="echo:x"), RunConfig(n_resamples=0),
                 store=ResultStore(tmp_path / "db.sqlite"), cache=None)
        assert adapter.frozen > 1000  # every object alive when the answers started, the task's samples among them
    assert gc.get_freeze_count() == 0
