"""The HF adapter's scoring notes (``take_scoring_notes``): one sentence per fallback taken,
said once, handed over once, and noted again on every later call that takes it."""

from __future__ import annotations

from pathlib import Path

from llmbench.models.hf.adapter import HFAdapter, HFConfig
from llmbench.types import GenerationConfig, Request

PROMPTS = [f"the movie was great and the acting was wonderful {i}" for i in range(4)]


def _generate() -> list[Request]:
    return [Request(sample_id=f"g{i}", kind="generate", prompt=p, config=GenerationConfig(max_new_tokens=3))
            for i, p in enumerate(PROMPTS)]


def _score() -> list[Request]:
    return [Request(sample_id=f"l{i}", kind="loglikelihood", prompt=p, continuations=(" yes", " no"))
            for i, p in enumerate(PROMPTS)]


def _notes(adapter: HFAdapter, requests: list[Request]) -> list[str]:
    assert all(r.error is None for _, r in adapter.run(requests))
    return adapter.take_scoring_notes()


def test_a_cache_found_unshareable_is_noted_on_every_call_that_falls_back(tiny_sliding_mistral: Path) -> None:
    """Generation finds the sliding-window cache and falls back; scoring on the same adapter
    then never tries the shared context and notes its own fallback, with the same reason."""
    adapter = HFAdapter(HFConfig(path=str(tiny_sliding_mistral), max_batch_size=2))
    assert adapter.take_scoring_notes() == []  # nothing loaded, nothing noted
    first = _notes(adapter, _generate())
    assert len(first) == 1 and first[0].startswith(
        "generation: this model's KV cache cannot be shared row-wise (its cache has DynamicSlidingWindowLayer "
        "layers); transformers' generate ran instead")
    assert not adapter.runtime.kv_reuse and adapter.take_scoring_notes() == []  # taken: forgotten
    assert _notes(adapter, _generate()) == first  # said again for the next run that takes it
    scored = _notes(adapter, _score())
    assert len(scored) == 1 and scored[0].startswith(
        "loglikelihood: this model's KV cache cannot be shared row-wise (its cache has DynamicSlidingWindowLayer "
        "layers); every choice ran as a full forward")


def test_a_shared_cache_is_not_noted_and_seq2seq_generation_is(tiny_gpt2: Path, tiny_t5: Path) -> None:
    gpt2 = HFAdapter(HFConfig(path=str(tiny_gpt2)))
    assert _notes(gpt2, _generate() + _score()) == [] and gpt2.runtime.kv_reuse
    t5 = HFAdapter(HFConfig(path=str(tiny_t5)))
    assert _notes(t5, _score()) == []  # the encoder output is shared: no fallback
    assert _notes(t5, _generate()) == [
        "generation: an encoder-decoder model has no continuous path; transformers' generate ran instead — no "
        "continuous batching, no shared prefixes; answers are unaffected"]
