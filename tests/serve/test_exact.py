"""The server reports what the model read and produced, token by token (issue 16).

A scripted bigram GPT-2 (``scripted.py``) makes the model produce chosen tokens: after ":"
it says "!", then the two byte pieces of "é" (0xC3, 0xA9), then EOS; after anything else "x".
So each test knows the exact ids the model generates and checks the server against the
model's own logits on those ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import torch
from fault_server import ServerThread
from scripted import build_scripted_gpt2

from llmbench.models.hf.adapter import HFAdapter, HFConfig
from llmbench.serve.app import create_app

NAME = "scripted"


def _script(tok: Any) -> tuple[dict[int, int], int]:
    ids = tok.convert_tokens_to_ids
    colon, bang, c3, a9 = ids(":"), ids("!"), ids("Ã"), ids("©")  # byte-level names of 0xC3, 0xA9
    return {colon: bang, bang: c3, c3: a9, a9: tok.eos_token_id}, ids("x")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HFAdapter]:
    path = build_scripted_gpt2(tmp_path_factory.mktemp("scripted") / "gpt2", _script)
    adapter = HFAdapter(HFConfig(path=str(path), device="cpu"))
    yield adapter
    adapter.close()


@pytest.fixture(scope="module")
def url(model: HFAdapter) -> Iterator[str]:
    with ServerThread(create_app(model, NAME)) as s:
        yield s.url


def ids_of(model: HFAdapter, text: str) -> list[int]:
    return list(model.runtime.tokenizer(text, add_special_tokens=False)["input_ids"])


def token(model: HFAdapter, name: str) -> int:
    return int(model.runtime.tokenizer.convert_tokens_to_ids(name))


def own(model: HFAdapter, ids: list[int]) -> list[float]:
    """log P(ids[i] | ids[:i]) for i >= 1, straight from the model."""
    with torch.inference_mode():
        lps = model.runtime.model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
    return [float(lps[i - 1, ids[i]]) for i in range(1, len(ids))]


def post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{url}{path}", json={"model": NAME, **body}, timeout=60)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_the_script_holds(model: HFAdapter) -> None:
    ids = ids_of(model, "say:")
    seq = [*ids, token(model, "!"), token(model, "Ã"), token(model, "©"), 0]
    assert all(v > -0.01 for v in own(model, seq)[len(ids) - 1:])  # each scripted step is certain


def test_a_generated_byte_piece_stays_one_token(model: HFAdapter, url: str) -> None:
    """lm-eval's loglikelihood request (max_tokens=1, echo, logprobs=1) after a prompt whose next
    token is half of "é": one generated token, scored as itself (not three "\\ufffd" tokens)."""
    prompt = "say:!"
    ids = ids_of(model, prompt)
    body = post(url, "/completions", {"prompt": prompt, "max_tokens": 1, "echo": True, "logprobs": 1,
                                      "temperature": 0})
    lp = body["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == len(ids) + 1
    assert body["usage"] == {"prompt_tokens": len(ids), "completion_tokens": 1,
                             "total_tokens": len(ids) + 1}
    want = own(model, [*ids, token(model, "Ã")])
    assert lp["token_logprobs"][0] is None
    assert lp["token_logprobs"][1:] == pytest.approx(want, abs=1e-5)
    assert lp["top_logprobs"][-1] == {"bytes:\\xc3": pytest.approx(want[-1], abs=1e-5)}
    assert lp["text_offset"][-1] == len(prompt)


def test_generated_eos_is_kept_with_finish_reason_stop(model: HFAdapter, url: str) -> None:
    prompt = "say:"
    ids = ids_of(model, prompt)
    body = post(url, "/completions", {"prompt": prompt, "max_tokens": 10, "echo": True, "logprobs": 0,
                                      "temperature": 0})
    choice = body["choices"][0]
    assert choice["text"] == "say:!é" and choice["finish_reason"] == "stop"
    generated = [token(model, "!"), token(model, "Ã"), token(model, "©"), 0]
    lp = choice["logprobs"]
    assert lp["tokens"][len(ids):] == ["!", "", "é", "<|endoftext|>"]
    assert lp["token_logprobs"][1:] == pytest.approx(own(model, ids + generated), abs=1e-5)
    assert lp["text_offset"][len(ids):] == [4, 5, 5, 6]
    # logprobs=0 asks for no alternatives; the chosen token is always there, spelled alone
    assert [list(t) for t in lp["top_logprobs"][len(ids):]] == [["!"], ["bytes:\\xc3"], ["bytes:\\xa9"],
                                                                 ["<|endoftext|>"]]
    assert body["usage"]["completion_tokens"] == 4  # EOS counted
    # without a stop token the generation runs to max_tokens
    other = post(url, "/completions", {"prompt": "hello", "max_tokens": 3, "temperature": 0})
    assert other["choices"][0]["text"] == "xxx" and other["choices"][0]["finish_reason"] == "length"


def test_stop_string_cuts_text_and_tokens(url: str) -> None:
    body = post(url, "/completions", {"prompt": "say:", "max_tokens": 10, "stop": ["é"], "logprobs": 0,
                                      "temperature": 0})
    choice = body["choices"][0]
    assert choice["text"] == "!" and choice["finish_reason"] == "stop"
    assert choice["logprobs"]["tokens"] == ["!"]


def test_chat_logprobs_spell_the_content_with_real_bytes(model: HFAdapter, url: str) -> None:
    body = post(url, "/chat/completions", {"messages": [{"role": "user", "content": "say"}],
                                           "max_tokens": 10, "temperature": 0, "logprobs": True,
                                           "top_logprobs": 2})
    choice = body["choices"][0]
    assert choice["message"]["content"] == "!é" and choice["finish_reason"] == "stop"
    entries = choice["logprobs"]["content"]
    assert "".join(e["token"] for e in entries) == "!é"
    assert [e["bytes"] for e in entries] == [[0x21], [0xC3], [0xA9]]  # EOS left out
    assert bytes(b for e in entries for b in e["bytes"]).decode() == "!é"
    assert entries[1]["top_logprobs"][0] == {"token": "bytes:\\xc3", "bytes": [0xC3],
                                             "logprob": pytest.approx(entries[1]["logprob"])}


def test_token_id_prompts_single_and_batched(model: HFAdapter, url: str) -> None:
    text = post(url, "/completions", {"prompt": "say:", "max_tokens": 5, "echo": True, "logprobs": 1,
                                      "temperature": 0})["choices"][0]
    ids = ids_of(model, "say:")
    one = post(url, "/completions", {"prompt": ids, "max_tokens": 5, "echo": True, "logprobs": 1,
                                     "temperature": 0})["choices"][0]
    assert one["text"] == text["text"] and one["logprobs"] == text["logprobs"]
    other = ids_of(model, "hello")
    both = post(url, "/completions", {"prompt": [ids, other], "max_tokens": 2, "temperature": 0})
    assert [c["index"] for c in both["choices"]] == [0, 1]
    assert [c["text"] for c in both["choices"]] == ["!\ufffd", "xx"]  # a cut character shows as "\ufffd"
    assert both["usage"]["prompt_tokens"] == len(ids) + len(other)


def test_max_tokens_zero_counts_the_prompt(model: HFAdapter, url: str) -> None:
    n = len(ids_of(model, "say: hello"))
    for echo in (False, True):
        body = post(url, "/completions", {"prompt": "say: hello", "max_tokens": 0, "echo": echo})
        assert body["usage"] == {"prompt_tokens": n, "completion_tokens": 0, "total_tokens": n}
        assert body["choices"][0]["text"] == ("say: hello" if echo else "")


def _events(r: httpx.Response) -> list[Any]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    lines = [ln for ln in r.text.split("\n\n") if ln]
    assert all(ln.startswith("data: ") for ln in lines)
    assert lines[-1] == "data: [DONE]"
    return [json.loads(ln[len("data: "):]) for ln in lines[:-1]]


def test_streaming_chat_and_completions(url: str) -> None:
    r = httpx.post(f"{url}/chat/completions", json={
        "model": NAME, "messages": [{"role": "user", "content": "say"}], "max_tokens": 10,
        "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
    events = _events(r)
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [e["choices"][0]["delta"].get("content", "") for e in events if e["choices"]]
    assert "".join(content) == "!é" and content[1:3] == ["!", "é"]
    assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == "stop"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 4

    r = httpx.post(f"{url}/completions", json={"model": NAME, "prompt": "say:", "max_tokens": 10,
                                                "temperature": 0, "stream": True, "logprobs": 0})
    events = _events(r)
    assert all(e["object"] == "text_completion" for e in events)
    texts = [e["choices"][0]["text"] for e in events]
    assert "".join(texts) == "!é" and events[-1]["choices"][0]["finish_reason"] == "stop"
    streamed = [t for e in events if e["choices"][0]["logprobs"] for t in e["choices"][0]["logprobs"]["tokens"]]
    assert streamed == ["!", "", "é", "<|endoftext|>"]


def test_token_pieces_spell_multibyte_text(model: HFAdapter) -> None:
    """Each token's bytes come from the vocabulary; a token ending inside a character adds ""
    and the one completing it adds the character, so the pieces spell the text exactly."""
    scorer = model.token_scorer()
    assert scorer is not None
    text = "é中😀 ok!"
    ids = ids_of(model, text)
    pieces = scorer.pieces(ids)
    assert len(ids) > len(text)  # the tiny tokenizer never saw these characters: byte pieces
    assert "".join(p.text for p in pieces) == text
    assert b"".join(p.raw for p in pieces) == text.encode()
    assert [p.text for p in pieces[:2]] == ["", "é"]
    assert [p.raw for p in pieces[:2]] == [b"\xc3", b"\xa9"]
