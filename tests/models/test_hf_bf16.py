"""``dtype=bfloat16`` on CPU: a choice the user makes, honoured and recorded, never a default.

bench/bf16.py measures its speed and accuracy cost on SmolLM2; here a tiny random GPT-2
checks that the option really loads bfloat16 weights on CPU, that its answers are those of
a bfloat16 forward computed by hand, and that CPU's default stays float32.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmbench.models.hf.adapter import HFAdapter, HFConfig
from llmbench.types import GenerationConfig, Request


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _hand_ll(path: Path, dtype: torch.dtype, context: str, continuation: str) -> float:
    """log P(continuation | context) from one unpadded forward of the model loaded in ``dtype``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()
    tok = AutoTokenizer.from_pretrained(path)
    ctx = tok(context)["input_ids"]
    cont = tok(context + continuation)["input_ids"][len(ctx):]
    with torch.no_grad():
        logits = model(torch.tensor([ctx + cont])).logits[0]
    lp = logits[len(ctx) - 1 : -1].double().log_softmax(-1)
    return float(lp.gather(-1, torch.tensor(cont)[:, None]).sum())


def test_cpu_default_is_float32_and_bfloat16_is_a_recorded_choice(tiny_gpt2: Path) -> None:
    assert HFAdapter(HFConfig(path=str(tiny_gpt2))).identity()["dtype"] == "float32"
    bf16 = HFAdapter(HFConfig(path=str(tiny_gpt2), dtype="bfloat16", device="cpu"))
    assert bf16.identity()["dtype"] == "bfloat16" and bf16.identity()["device"] == "cpu"
    bf16.prepare()
    assert {p.dtype for p in bf16.runtime.model.parameters()} == {torch.bfloat16}


def test_bfloat16_loglikelihoods_are_a_bfloat16_forward(tiny_gpt2: Path) -> None:
    prompt, conts = "the movie was", (" great", " terrible", " the capital is kuala lumpur")
    adapter = HFAdapter(HFConfig(path=str(tiny_gpt2), dtype="bfloat16", device="cpu"))
    (_, resp), = adapter.run([Request(sample_id="0", kind="loglikelihood", prompt=prompt, continuations=conts)])
    assert resp.error is None and resp.logprobs is not None
    bf16 = [_hand_ll(tiny_gpt2, torch.bfloat16, prompt, c) for c in conts]
    fp32 = [_hand_ll(tiny_gpt2, torch.float32, prompt, c) for c in conts]
    got = list(resp.logprobs)
    # bfloat16 arithmetic: near the bfloat16 forward by hand (the adapter batches the
    # continuations with padding, so bfloat16 rounding differs a little) ...
    assert got == pytest.approx(bf16, rel=1e-3)
    # ... and, on the whole, nearer to it than to float32's: the option changed the arithmetic
    assert sum(abs(g - b) for g, b in zip(got, bf16, strict=True)) < sum(
        abs(g - f) for g, f in zip(got, fp32, strict=True))


def test_bfloat16_generation_runs_on_cpu(tiny_gpt2: Path) -> None:
    adapter = HFAdapter(HFConfig(path=str(tiny_gpt2), dtype="bfloat16", device="cpu"))
    reqs = [Request(sample_id=str(i), kind="generate", prompt=p, config=GenerationConfig(max_new_tokens=5))
            for i, p in enumerate(["the movie was", "question what is the capital answer"])]
    out = dict(adapter.run(reqs))
    assert all(out[i].error is None and out[i].text is not None for i in range(2))
