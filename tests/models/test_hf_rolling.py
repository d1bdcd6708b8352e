"""Whole-document log-likelihood (loglikelihood_rolling): lm-eval's windows, causal totals
against a direct token-by-token loop, pseudo-log-likelihood against a direct masking loop,
and the runner's refusal for models that do not serve it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llmbench.models.hf.adapter import HFAdapter, HFConfig
from llmbench.models.hf.rolling import rolling_windows
from llmbench.runner import ModelEntry, RunConfig, RunError, evaluate
from llmbench.store import ResultStore
from llmbench.tasks import load_task
from llmbench.types import Request

DOCS = ["the quick brown fox jumps over the lazy dog " * 6, "a cat", "kuala lumpur is a city by the river",
        "x"]


def _lm_eval_windows(token_list: list[int], prefix_token: int, max_seq_len: int, context_len: int) -> list:
    """lm-evaluation-harness 0.4.13's get_rolling_token_windows + make_disjoint_window, copied."""
    out = []
    if not token_list:
        return out
    pred_len = max_seq_len - context_len + 1
    predicted = 0
    first_seq_len = min(max_seq_len, len(token_list))
    out.append(([prefix_token] + token_list[: first_seq_len - 1], token_list[:first_seq_len]))  # noqa: RUF005
    predicted += first_seq_len
    while predicted < len(token_list):
        window_pred_len = min(len(token_list) - predicted, pred_len)
        window_end = predicted + window_pred_len
        out.append((token_list[window_end - max_seq_len - 1 : window_end - 1],
                    token_list[window_end - window_pred_len : window_end]))
        predicted += window_pred_len
    return [(a[: len(a) - (len(b) - 1)], b) for a, b in out]


@pytest.mark.parametrize("n", [0, 1, 5, 16, 17, 33, 100])
@pytest.mark.parametrize(("max_len", "stride"), [(16, None), (16, 16), (16, 5), (16, 1), (4, 3)])
def test_windows_are_lm_evals(n: int, max_len: int, stride: int | None) -> None:
    tokens = list(range(100, 100 + n))
    ours = rolling_windows(tokens, 7, max_len, stride)
    assert ours == _lm_eval_windows(tokens, 7, max_len, max_len - (stride or max_len) + 1)
    assert [t for _, cont in ours for t in cont] == tokens  # every token predicted exactly once
    assert all(len(ctx) + len(cont) - 1 <= max_len for ctx, cont in ours)


def _doc_request(text: str, stride: int | None = None) -> Request:
    return Request(sample_id="d", kind="loglikelihood_rolling", prompt=text, stride=stride)


@torch.inference_mode()
def _direct_causal(adapter: HFAdapter, text: str, max_len: int) -> float:
    """Each token scored from at most the max_len tokens before it (the prefix EOS first):
    what stride 1 means, computed one token at a time."""
    rt = adapter.runtime
    tokens = [rt.tokenizer.eos_token_id, *rt.tokenizer(text, add_special_tokens=False)["input_ids"]]
    total = 0.0
    for i in range(1, len(tokens)):
        ctx = tokens[max(0, i - max_len) : i]
        logits = rt.model(input_ids=torch.tensor([ctx])).logits[0, -1].double()
        total += float(logits.log_softmax(-1)[tokens[i]])
    return total


def test_causal_totals_match_a_direct_loop(tiny_gpt2: Path) -> None:
    adapter = HFAdapter(HFConfig(path=str(tiny_gpt2), max_length=12, max_batch_size=3))
    answers = dict(adapter.run([_doc_request(d, stride=1) for d in DOCS]))
    for i, doc in enumerate(DOCS):
        expected = _direct_causal(adapter, doc, 12)
        assert answers[i].logprobs is not None
        assert answers[i].logprobs[0] == pytest.approx(expected, rel=1e-6)
        assert answers[i].n_scored == len(adapter.runtime.tokenizer(doc, add_special_tokens=False)["input_ids"])


def test_disjoint_windows_do_not_depend_on_batch_size(tiny_gpt2: Path) -> None:
    totals = []
    for size in (1, 4, 64):
        adapter = HFAdapter(HFConfig(path=str(tiny_gpt2), max_length=16, max_batch_size=size))
        answers = dict(adapter.run([_doc_request(d) for d in DOCS]))
        totals.append([answers[i].logprobs[0] for i in range(len(DOCS))])  # type: ignore[index]
    # padding changes float32 matmul shapes: equal up to float noise, as the other kinds
    assert totals[0] == pytest.approx(totals[1], rel=1e-6) and totals[0] == pytest.approx(totals[2], rel=1e-6)
    # a long document needs several windows, and a window with less context scores worse
    strided = dict(HFAdapter(HFConfig(path=str(tiny_gpt2), max_length=16)).run([_doc_request(DOCS[0], 4)]))
    assert strided[0].logprobs != (totals[0][0],)


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llmbench.testing import build_tiny_bert_mlm

    return build_tiny_bert_mlm(tmp_path_factory.mktemp("models") / "mlm", max_positions=16)


@torch.inference_mode()
def _direct_pseudo(adapter: HFAdapter, text: str, room: int) -> float:
    """Mask one token at a time, one forward each, in chunks of ``room`` tokens."""
    rt = adapter.runtime
    tok = rt.tokenizer
    ids = tok(text, add_special_tokens=False)["input_ids"]
    total = 0.0
    for lo in range(0, len(ids), room):
        chunk = [tok.cls_token_id, *ids[lo : lo + room], tok.sep_token_id]
        for p in range(1, len(chunk) - 1):
            masked = list(chunk)
            masked[p] = tok.mask_token_id
            logits = rt.model(input_ids=torch.tensor([masked])).logits[0, p].double()
            total += float(logits.log_softmax(-1)[chunk[p]])
    return total


def test_pseudo_loglikelihood_matches_a_direct_loop(tiny_mlm: Path) -> None:
    adapter = HFAdapter(HFConfig(path=str(tiny_mlm), max_batch_size=5))
    assert adapter.arch == "masked" and adapter.supports == frozenset({"loglikelihood_rolling"})
    assert adapter.scoring_method("loglikelihood_rolling") == "pseudo-loglikelihood"
    answers = dict(adapter.run([_doc_request(d) for d in DOCS]))
    for i, doc in enumerate(DOCS):
        # window of 16 positions: 14 tokens a chunk between [CLS] and [SEP]
        assert answers[i].logprobs[0] == pytest.approx(_direct_pseudo(adapter, doc, 14), rel=1e-6)  # type: ignore[index]
        assert answers[i].n_scored == len(adapter.runtime.tokenizer(doc, add_special_tokens=False)["input_ids"])


def _lm_task(tmp_path: Path) -> object:
    (tmp_path / "docs.jsonl").write_text("\n".join(json.dumps({"id": f"d{i}", "text": d}) for i, d in enumerate(DOCS)))
    (tmp_path / "lm.yaml").write_text("name: lm\nkind: language_modeling\ndataset: {path: docs.jsonl}\n"
                                      "fields: {id: id, input: text}\nrolling: {stride: 8}\n")
    return load_task(str(tmp_path / "lm.yaml"))


def test_runner_scores_perplexity_end_to_end(tiny_gpt2: Path, tmp_path: Path) -> None:
    task = _lm_task(tmp_path)
    assert [r.stride for r in task.build_requests(task.samples(), "loglikelihood_rolling")] == [8] * 4  # type: ignore[attr-defined]
    adapter = HFAdapter(HFConfig(path=str(tiny_gpt2), max_length=16))
    result = evaluate(task, adapter, ModelEntry(spec=f"hf:{tiny_gpt2}"), RunConfig(n_resamples=20),  # type: ignore[arg-type]
                      store=ResultStore(tmp_path / "db.sqlite"), cache=None)
    values = {m.name: m for m in result.metrics}
    assert result.status == "complete" and result.scoring_mode == "loglikelihood_rolling"
    assert set(values) == {"word_perplexity", "byte_perplexity", "bits_per_byte", "token_perplexity"}
    assert values["word_perplexity"].value > 1 and not values["word_perplexity"].higher_is_better


def test_models_without_rolling_are_refused_before_any_call(tiny_t5: Path, tmp_path: Path) -> None:
    task = _lm_task(tmp_path)
    adapter = HFAdapter(HFConfig(path=str(tiny_t5)))
    store = ResultStore(tmp_path / "db.sqlite")
    with pytest.raises(RunError, match="accepts scoring by loglikelihood_rolling but model"):
        evaluate(task, adapter, ModelEntry(spec=f"hf:{tiny_t5}"), RunConfig(), store=store, cache=None)  # type: ignore[arg-type]
    assert store.runs() == []
