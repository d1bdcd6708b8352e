"""The HF adapter's speed paths give the answers of the plain computation.

* Greedy generation runs its own loop that drops finished rows from the batch: same text,
  token ids, finish reasons and usage as ``model.generate`` (its fallback), while the model
  computes only the rows still writing.
* Loglikelihood computes the output projection only at the last context position and the
  continuation positions: values within 1e-5 of a straightforward full-logits computation.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

import llmbench.models.hf.batching as hf_batching
from llmbench.models.hf.adapter import HFAdapter, HFConfig
from llmbench.types import GenerationConfig, Request, Response

WORDS = ("the", "movie", "was", "great", "and", "acting", "wonderful", "a", "terrible", "film",
         "with", "boring", "plot", "question", "what", "is", "capital", "answer", "kuala", "lumpur")
CHOICES = ("great", " terrible", "yes", "no", " the capital is kuala lumpur", "fox")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():  # type: ignore[no-untyped-def]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _adapter(path: Path, **kw: Any) -> HFAdapter:
    return HFAdapter(HFConfig(path=str(path), **kw))


def _run(adapter: HFAdapter, requests: list[Request]) -> list[Response]:
    out = dict(adapter.run(requests))
    return [out[i] for i in range(len(requests))]


def _prompts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))) for _ in range(n)]


def _gen_requests(n: int = 24, seed: int = 0, stop: tuple[str, ...] = ("e",),
                  max_new: tuple[int, ...] = (6, 16)) -> list[Request]:
    """Greedy requests whose rows end at different steps: on a stop string that the tiny
    model writes sooner or later (or never), or after their own max_new_tokens."""
    rng = random.Random(seed)
    return [Request(sample_id=str(i), kind="generate", prompt=p,
                    config=GenerationConfig(max_new_tokens=rng.choice(max_new), stop=stop))
            for i, p in enumerate(_prompts(n, seed))]


def _answers(responses: list[Response]) -> list[tuple[Any, ...]]:
    return [(r.text, r.token_ids, r.finish_reason, r.usage, r.error) for r in responses]


def _count_rows(adapter: HFAdapter) -> list[int]:
    """Rows of every forward of the adapter's model from now on."""
    rows: list[int] = []
    adapter.runtime.model.register_forward_hook(
        lambda _m, args, kwargs, _o: rows.append(int(kwargs["input_ids"].shape[0])), with_kwargs=True)
    return rows


@pytest.mark.parametrize("stop", [("e",), ("e", "th"), ()])
def test_greedy_loop_answers_like_model_generate(tiny_gpt2: Path, stop: tuple[str, ...]) -> None:
    fast, plain = _adapter(tiny_gpt2, max_batch_size=8), _adapter(tiny_gpt2, max_batch_size=8)
    plain.runtime.kv_reuse = False  # the fallback: transformers' generate
    reqs = _gen_requests(stop=stop)
    got, want = _run(fast, reqs), _run(plain, reqs)
    assert _answers(got) == _answers(want)
    assert fast.runtime.kv_reuse  # the loop ran (a fallback would have switched it off)
    if stop:
        assert {r.finish_reason for r in got} == {"stop", "length"}  # rows ended both ways


def test_greedy_loop_stops_on_eos_like_model_generate(tiny_gpt2: Path) -> None:
    reqs = _gen_requests(stop=())
    probe = _run(_adapter(tiny_gpt2), reqs[:1])[0]
    fast, plain = _adapter(tiny_gpt2, max_batch_size=8), _adapter(tiny_gpt2, max_batch_size=8)
    plain.runtime.kv_reuse = False
    assert probe.token_ids
    for adapter in (fast, plain):  # a token the model writes is now EOS
        adapter.runtime.model.generation_config.eos_token_id = probe.token_ids[1]
    got, want = _run(fast, reqs), _run(plain, reqs)
    assert _answers(got) == _answers(want)
    assert any(r.token_ids and r.token_ids[-1] == probe.token_ids[1] for r in got)


def test_finished_rows_leave_the_batch(tiny_gpt2: Path) -> None:
    """Each row is computed once per token it keeps (the first comes from the prompt's
    forward): sum of decode rows == sum of (completion tokens - 1). ``generate`` computes
    every row until the slowest one ends, which is more."""
    reqs = _gen_requests(max_new=(16,))  # one decoding setting: one batch
    fast, plain = _adapter(tiny_gpt2, max_batch_size=64), _adapter(tiny_gpt2, max_batch_size=64)
    plain.runtime.kv_reuse = False
    fast_rows, plain_rows = _count_rows(fast), _count_rows(plain)
    got = _run(fast, reqs)
    _run(plain, reqs)
    kept = sum(r.usage.completion_tokens - 1 for r in got)
    assert fast_rows[0] == len(reqs)  # one prompt forward for the whole batch
    assert sum(fast_rows[1:]) == kept
    assert sum(plain_rows[1:]) > kept


def test_a_cache_that_cannot_be_cut_falls_back_to_generate(tiny_gpt2: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    reqs = _gen_requests(12, seed=3)
    want = _run(_adapter(tiny_gpt2), reqs)
    monkeypatch.setattr(hf_batching, "reusable_cache", lambda cache: False)
    adapter = _adapter(tiny_gpt2)
    assert _answers(_run(adapter, reqs)) == _answers(want)
    assert not adapter.runtime.kv_reuse


# ------------------------------------------------------------------------------ scoring


def _full_logits(model: Any, tok: Any, context: str, continuation: str) -> tuple[float, bool]:
    """log P(continuation | context) from one unpadded forward with every position's logits."""
    if context.endswith(" "):
        context, continuation = context.rstrip(" "), " " + continuation
    ctx = tok(context)["input_ids"]
    cont = tok(context + continuation)["input_ids"][len(ctx):]
    with torch.no_grad():
        logits = model(torch.tensor([ctx + cont])).logits[0].double()
    lp = logits[len(ctx) - 1 : -1].log_softmax(-1)
    target = torch.tensor(cont)
    return float(lp.gather(-1, target[:, None]).sum()), bool((lp.argmax(-1) == target).all())


def _ll_requests(n: int, seed: int) -> list[Request]:
    rng = random.Random(seed)
    return [Request(sample_id=str(i), kind="loglikelihood", prompt=p + (" " if i % 3 == 0 else ""),
                    continuations=tuple(rng.sample(CHOICES, rng.randint(1, 4))))
            for i, p in enumerate(_prompts(n, seed))]


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_loglikelihood_equals_full_logits(tiny_gpt2: Path, batch_size: int) -> None:
    adapter = _adapter(tiny_gpt2, max_batch_size=batch_size)
    reqs = _ll_requests(30, seed=batch_size)
    rt = adapter.runtime
    for req, resp in zip(reqs, _run(adapter, reqs), strict=True):
        assert req.continuations is not None and isinstance(req.prompt, str)
        want = [_full_logits(rt.model, rt.tokenizer, req.prompt, c) for c in req.continuations]
        assert resp.logprobs == pytest.approx([w[0] for w in want], abs=1e-5, rel=0)
        assert list(resp.greedy_match or ()) == [w[1] for w in want]


def test_output_projection_runs_only_where_a_logprob_is_needed(tiny_gpt2: Path) -> None:
    """One batch: the head sees one position per context (its last) and, for the choices,
    the continuation positions (padded to the longest in the batch), never the context."""
    adapter = _adapter(tiny_gpt2, max_batch_size=64)
    reqs = _ll_requests(20, seed=1)
    rt = adapter.runtime
    positions: list[int] = []
    rt.model.get_output_embeddings().register_forward_hook(
        lambda _m, args, _o: positions.append(int(args[0].shape[0] * args[0].shape[1])))
    _run(adapter, reqs)
    items = [adapter._tokenise(rt, i, r, (str(r.prompt), False)) for i, r in enumerate(reqs)]
    tails = [len(c) - 1 for it in items for c in it.conts]
    context_tokens = sum(len(it.ids) for it in items)
    assert positions[0] == len(reqs)
    assert sum(positions[1:]) == len(tails) * max(tails)
    assert sum(positions) < context_tokens  # far below a full-logits forward


def _fewshot_requests(subjects: int = 3, per_subject: int = 8, seed: int = 5) -> list[Request]:
    """MMLU-shaped requests: every question of a subject repeats the same worked examples
    (a long shared token prefix), then its own question; four letter choices."""
    rng = random.Random(seed)

    def question() -> str:  # short: the whole prompt must fit the tiny model's 512 positions
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))

    reqs = []
    for s in range(subjects):
        shots = "\n\n".join(f"Question: {question()}\nAnswer: {rng.choice('ABCD')}" for _ in range(3))
        header = f"The following are questions about subject {s}.\n\n{shots}\n\n"
        for _ in range(per_subject):
            q = question()
            reqs.append(Request(sample_id=str(len(reqs)), kind="loglikelihood",
                                prompt=f"{header}Question: {q}\nAnswer:", continuations=(" A", " B", " C", " D")))
    rng.shuffle(reqs)  # the adapter regroups them by prefix
    return reqs


@pytest.mark.parametrize("batch_size", [4, 64])
def test_shared_prefixes_run_once_and_give_the_full_forward_values(tiny_gpt2: Path, batch_size: int) -> None:
    """A few-shot task's shared header runs once per batch (a one-row forward, then only the
    remainders), every log-likelihood within 1e-5 of the full forward, the same greedy flags;
    and the model sees far fewer context tokens than the contexts hold."""
    adapter = _adapter(tiny_gpt2, max_batch_size=batch_size)
    reqs = _fewshot_requests()
    rt = adapter.runtime
    shapes: list[tuple[int, int]] = []
    hook = rt.model.register_forward_hook(
        lambda _m, args, kwargs, _o: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    responses = _run(adapter, reqs)
    hook.remove()
    for req, resp in zip(reqs, responses, strict=True):
        assert req.continuations is not None and isinstance(req.prompt, str)
        want = [_full_logits(rt.model, rt.tokenizer, req.prompt, c) for c in req.continuations]
        assert resp.logprobs == pytest.approx([w[0] for w in want], abs=1e-5, rel=0)
        assert list(resp.greedy_match or ()) == [w[1] for w in want]
    prefix_passes = [s for s in shapes if s[0] == 1]
    expected_batches = sum(-(-8 // batch_size) for _ in range(3))  # batches never straddle subjects
    assert len(prefix_passes) == expected_batches, shapes
    items = [adapter._tokenise(rt, i, r, (str(r.prompt), False)) for i, r in enumerate(reqs)]
    fed = sum(rows * width for rows, width in shapes)
    assert fed < 0.5 * sum(len(it.ids) for it in items), (fed, shapes)


def test_requests_sharing_nothing_keep_the_plain_context_pass(tiny_gpt2: Path) -> None:
    """Single-prompt tasks are unchanged: no one-row prefix forward, longest-first batches."""
    adapter = _adapter(tiny_gpt2, max_batch_size=64)
    rows = _count_rows(adapter)
    _run(adapter, _ll_requests(20, seed=3))
    assert rows[0] == 20
