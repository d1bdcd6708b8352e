"""``llmbench serve`` over the tiny GPT-2, driven by the official ``openai`` client through
``OpenAIAdapter``: the API path must give the same numbers as the HF adapter directly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fault_server import FaultInjector, ServerThread
from transformers.convert_slow_tokenizer import bytes_to_unicode

from llmbench.models.hf.adapter import HFAdapter, HFConfig
from llmbench.models.openai.adapter import OpenAIAdapter, OpenAIConfig
from llmbench.serve.app import create_app
from llmbench.types import ChatMessage, GenerationConfig, Request, Response

NAME = "tiny-gpt2"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")


@pytest.fixture(scope="module")
def hf(tiny_gpt2: Path) -> Iterator[HFAdapter]:
    adapter = HFAdapter(HFConfig(path=str(tiny_gpt2), device="cpu"))
    yield adapter
    adapter.close()


@pytest.fixture(scope="module")
def server(hf: HFAdapter) -> Iterator[ServerThread]:
    with ServerThread(create_app(hf, NAME)) as s:
        yield s


def client(server: ServerThread, **kw: Any) -> OpenAIAdapter:
    return OpenAIAdapter(OpenAIConfig(model=NAME, base_url=server.url, echo_logprobs=True,
                                      **{"api": "completions", **kw}))


LL_REQUESTS = [
    Request(sample_id=f"r{i}", kind="loglikelihood", prompt=f"the movie was {w}.\nLabel:",
            continuations=(" positive", " negative", " neutral"))
    for i, w in enumerate(["great", "terrible", "boring", "wonderful", "bad"])
] + [
    # trailing space in the prompt: scored as " kuala lumpur" after "answer:", like the HF side
    Request(sample_id="qa", kind="loglikelihood", prompt="question: what is the capital? answer: ",
            continuations=("the capital", "kuala lumpur.")),
    Request(sample_id="multi", kind="loglikelihood", prompt="translate english to malay:",
            continuations=(" good morning, how are you today?",)),
]
GEN_REQUESTS = [
    Request(sample_id=f"g{i}", kind="generate", prompt=p,
            config=GenerationConfig(max_new_tokens=10, stop=stop))
    for i, (p, stop) in enumerate([
        ("translate english to malay: good morning", ()),
        ("summarize: the quick brown fox", ()),
        ("question: what is the capital? answer:", ("\n",)),
        ("the movie was", ("acti",)),
    ])
]


def by_index(adapter: Any, requests: list[Request]) -> dict[int, Response]:
    return dict(adapter.run(requests))


def test_loglikelihood_equals_hf_adapter(hf: HFAdapter, server: ServerThread) -> None:
    direct = by_index(hf, LL_REQUESTS)
    api = client(server)
    via = by_index(api, LL_REQUESTS)
    api.close()
    for i in direct:
        assert via[i].error is None, via[i].error
        assert via[i].logprobs == pytest.approx(direct[i].logprobs, abs=1e-5)
        assert via[i].greedy_match == direct[i].greedy_match


def test_greedy_generation_is_identical(hf: HFAdapter, server: ServerThread) -> None:
    direct = by_index(hf, GEN_REQUESTS)
    api = client(server)
    via = by_index(api, GEN_REQUESTS)
    api.close()
    assert {i: r.text for i, r in via.items()} == {i: r.text for i, r in direct.items()}
    assert all(r.usage == direct[i].usage for i, r in via.items())

    chat_reqs = [Request(sample_id="c", kind="generate",
                         prompt=(ChatMessage(role="system", content="be brief"),
                                 ChatMessage(role="user", content="the movie was")),
                         config=GenerationConfig(max_new_tokens=8))]
    chat = client(server, api="chat")
    assert by_index(chat, chat_reqs)[0].text == by_index(hf, chat_reqs)[0].text
    chat.close()


_BYTE = {c: b for b, c in bytes_to_unicode().items()}


def spelled(tokenizer: Any, token_id: int) -> str:
    """A token as OpenAI names it alone: its text, or ``bytes:\\xNN`` when its bytes are
    not whole UTF-8 characters (read from the byte-level vocabulary, not from decode)."""
    raw = bytes(_BYTE[c] for c in tokenizer.convert_ids_to_tokens(token_id))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in raw)


def own_logprobs(hf: HFAdapter, ids: list[int]) -> torch.Tensor:
    rt = hf.runtime
    assert rt is not None
    with torch.inference_mode():
        return rt.model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)


def test_echo_logprobs_are_the_models_own(hf: HFAdapter, server: ServerThread) -> None:
    """The bug llama.cpp's server has: echoed prompt log-probs must be log P(t_i | t_<i)."""
    prompt = "a terrible film with a boring plot é!"
    r = httpx.post(f"{server.url}/completions", json={
        "model": NAME, "prompt": prompt, "max_tokens": 0, "echo": True, "logprobs": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    choice = body["choices"][0]
    assert choice["text"] == prompt
    lp = choice["logprobs"]
    ids = hf.runtime.tokenizer(prompt, add_special_tokens=False)["input_ids"]  # type: ignore[union-attr]
    table = own_logprobs(hf, ids)
    assert len(lp["tokens"]) == len(ids) == body["usage"]["prompt_tokens"]
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    for i in range(1, len(ids)):
        assert lp["token_logprobs"][i] == pytest.approx(float(table[i - 1, ids[i]]), abs=1e-5)
        best = table[i - 1].topk(3)
        top = lp["top_logprobs"][i]
        assert 3 <= len(top) <= 4  # the top 3, plus the actual token when it is not among them
        assert max(top.values()) == pytest.approx(float(best.values[0]), abs=1e-5)
    assert lp["text_offset"] == sorted(lp["text_offset"]) and lp["text_offset"][0] == 0
    assert "".join(lp["tokens"][:-3]) == prompt[: lp["text_offset"][-3]]


def test_chat_first_token_logprobs_and_classify(hf: HFAdapter, server: ServerThread) -> None:
    from llmbench.models.hf.inputs import render_prompt

    prompt = (ChatMessage(role="user", content="the movie was great"),)
    rt = hf.runtime
    assert rt is not None
    text, _ = render_prompt(rt.tokenizer, prompt)
    ids = rt.tokenizer(text, add_special_tokens=False)["input_ids"]
    nxt = own_logprobs(hf, ids)[-1]
    best = nxt.topk(20)
    tops = [(spelled(rt.tokenizer, int(i)), float(v))
            for v, i in zip(best.values, best.indices, strict=True)]
    assert any(t.startswith("bytes:") for t, _ in tops)  # byte pieces are named, not "\ufffd"
    r = httpx.post(f"{server.url}/chat/completions", json={
        "model": NAME, "messages": [{"role": "user", "content": "the movie was great"}],
        "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20})
    assert r.status_code == 200, r.text
    got = r.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    assert [t["token"] for t in got] == [t for t, _ in tops]
    assert [t["logprob"] for t in got] == pytest.approx([v for _, v in tops], abs=1e-5)
    # classify through the adapter: two labels made from top tokens whose first letter no other
    # top token has, so exactly one returned token matches each label; its score is that token's
    # log-probability, read here straight from the model's logits
    initials = [t.strip().casefold()[:1] for t, _ in tops]
    picked = [(t.strip(), int(i)) for (t, _), i in zip(tops, best.indices, strict=True)
              if t.strip().isalpha() and initials.count(t.strip().casefold()[0]) == 1][:2]
    assert len(picked) == 2, tops
    labels = tuple(word + "zz" for word, _ in picked)
    want = {label: float(nxt[i]) for label, (_, i) in zip(labels, picked, strict=True)}
    assert all(-50 < v < 0 for v in want.values())  # real log-probabilities, not the missing floor
    chat = client(server, api="chat")
    (_, resp), = chat.run([Request(sample_id="x", kind="classify", prompt=prompt,
                                   continuations=labels)])
    chat.close()
    assert resp.error is None
    assert resp.label_scores == pytest.approx(want, abs=1e-5)


def test_errors_are_openai_shaped(server: ServerThread) -> None:
    url = server.url
    cases = [
        ("/completions", {"model": NAME, "prompt": "x", "logprobs": 50}, 400, "logprobs"),
        ("/completions", {"model": NAME, "prompt": "x", "n": 2}, 400, "n"),
        ("/completions", {"model": "other", "prompt": "x"}, 404, "model"),
        ("/chat/completions", {"model": NAME, "messages": [{"role": "tool", "content": "x"}]},
         400, "messages[0].role"),
        ("/chat/completions", {"model": NAME, "messages": []}, 400, "messages"),
    ]
    for path, body, status, param in cases:
        r = httpx.post(url + path, json=body)
        assert r.status_code == status, (body, r.text)
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["param"] == param
    r = httpx.post(url + "/completions", content=b"{not json", headers={
        "content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()
    too_long = httpx.post(url + "/completions", json={
        "model": NAME, "prompt": "the movie was great " * 300, "max_tokens": 0, "echo": True,
        "logprobs": 0})
    assert too_long.status_code == 400, too_long.text
    assert too_long.json()["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 512 tokens" in too_long.json()["error"]["message"]
    models = httpx.get(url + "/models").json()
    assert models["data"][0]["id"] == NAME


def test_concurrent_requests_share_batches(hf: HFAdapter, tiny_gpt2: Path) -> None:
    app = create_app(hf, NAME, batch_wait_s=0.05)
    many = [Request(sample_id=f"b{i}", kind="generate", prompt=f"the movie was {i}",
                    config=GenerationConfig(max_new_tokens=4)) for i in range(16)]
    with ServerThread(app) as s:
        api = OpenAIAdapter(OpenAIConfig(model=NAME, base_url=s.url, api="completions",
                                         concurrency=16))
        via = by_index(api, many)
        api.close()
    assert max(app.state.worker.batch_sizes) > 1
    assert sum(size * n for size, n in app.state.worker.batch_sizes.items()) == len(many)
    direct = by_index(hf, many)
    assert {i: r.text for i, r in via.items()} == {i: r.text for i, r in direct.items()}


def test_faults_in_front_of_the_real_server(hf: HFAdapter) -> None:
    requests = LL_REQUESTS + GEN_REQUESTS
    direct = by_index(hf, requests)
    app = FaultInjector(create_app(hf, NAME), rate=0.3, failures=1, hang_s=1.0)
    with ServerThread(app) as s:
        api = OpenAIAdapter(OpenAIConfig(model=NAME, base_url=s.url, api="completions",
                                         echo_logprobs=True, timeout_s=0.5, backoff_base_s=0.01,
                                         backoff_max_s=0.05))
        via = by_index(api, requests)
        api.close()
    assert sum(app.injected.values()) > 0
    for i, r in direct.items():
        assert via[i].error is None
        assert via[i].text == r.text
        if r.logprobs is not None:
            assert via[i].logprobs == pytest.approx(r.logprobs, abs=1e-5)


def test_seq2seq_generates_but_has_no_logprobs(tiny_t5: Path) -> None:
    t5 = HFAdapter(HFConfig(path=str(tiny_t5), device="cpu"))
    with ServerThread(create_app(t5, "t5")) as s:
        ok = httpx.post(f"{s.url}/completions", json={"model": "t5", "prompt": "summarize: x",
                                                       "max_tokens": 3, "temperature": 0})
        no = httpx.post(f"{s.url}/completions", json={"model": "t5", "prompt": "x",
                                                       "max_tokens": 0, "echo": True,
                                                       "logprobs": 1})
    t5.close()
    assert ok.status_code == 200 and isinstance(ok.json()["choices"][0]["text"], str)
    assert no.status_code == 400 and "log-probabilities" in no.json()["error"]["message"]


@pytest.mark.slow
def test_runner_scores_a_task_the_same_both_ways(hf: HFAdapter, server: ServerThread,
                                                 tmp_path: Path) -> None:
    from llmbench import runner
    from llmbench.store import ResultStore
    from llmbench.tasks import load_task

    rows = [{"id": str(i), "text": t, "label": lab} for i, (t, lab) in enumerate([
        ("the movie was great and the acting was wonderful", "positive"),
        ("a terrible film with a boring plot and bad acting", "negative"),
        ("wonderful acting", "positive"), ("a boring plot", "negative"),
        ("great", "positive"), ("bad acting", "negative")])]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task_file = tmp_path / "tiny_sentiment.yaml"
    task_file.write_text(
        "name: tiny_sentiment\nkind: classification\n"
        f"dataset: {{path: {data}, split: test}}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
        "scoring: [loglikelihood]\n"
        "prompt: {template: \"Review: {{ input }}\\nLabel:\", target_template: \" {{ target }}\"}\n")
    task = load_task(str(task_file))
    results = {}
    for spec, adapter in (("hf:tiny", hf), ("openai:tiny", client(server))):
        entry = runner.ModelEntry(spec=spec, chat=False)
        res = runner.evaluate(task, adapter, entry, runner.RunConfig(n_resamples=0),
                              store=ResultStore(tmp_path / "runs.db"), cache=None)
        assert res.n_errors == 0 and res.scoring_mode == "loglikelihood"
        results[spec] = {m.name: m.value for m in res.metrics}
    # Predictions and every count-based metric are exact; the calibration metrics use the
    # probabilities themselves, which the server sends as float32 log-probabilities.
    calibration = {"ece", "brier", "nll"}
    exact = {k: v for k, v in results["hf:tiny"].items() if k not in calibration}
    assert {k: v for k, v in results["openai:tiny"].items() if k not in calibration} == pytest.approx(exact, abs=1e-9)
    for name in calibration & set(results["hf:tiny"]):
        assert results["openai:tiny"][name] == pytest.approx(results["hf:tiny"][name], abs=1e-6)


def test_completion_logprobs_long_echo_and_generated_tokens(hf: HFAdapter,
                                                            server: ServerThread) -> None:
    """Past the scorer's 256-row chunks, and on generated (not echoed) tokens."""
    rt = hf.runtime
    assert rt is not None
    prompt = " ".join(["the movie was great and the acting was wonderful"] * 18)
    r = httpx.post(f"{server.url}/completions", json={
        "model": NAME, "prompt": prompt, "max_tokens": 0, "echo": True, "logprobs": 1}).json()
    ids = rt.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert 256 < len(ids) <= 512
    table = own_logprobs(hf, ids)
    got = r["choices"][0]["logprobs"]["token_logprobs"]
    want = [None] + [float(table[i - 1, ids[i]]) for i in range(1, len(ids))]
    assert got[0] is None and got[1:] == pytest.approx(want[1:], abs=1e-5)

    short = "question: what is the capital? answer:"
    r = httpx.post(f"{server.url}/completions", json={
        "model": NAME, "prompt": short, "max_tokens": 5, "temperature": 0,
        "logprobs": 2}).json()
    choice = r["choices"][0]
    lp = choice["logprobs"]
    assert lp["text_offset"][0] == len(short) and "".join(lp["tokens"]) == choice["text"]
    p_ids = rt.tokenizer(short, add_special_tokens=False)["input_ids"]
    c_ids = rt.tokenizer(choice["text"], add_special_tokens=False)["input_ids"]
    table = own_logprobs(hf, p_ids + c_ids)
    want = [float(table[len(p_ids) + i - 1, t]) for i, t in enumerate(c_ids)]
    assert lp["token_logprobs"] == pytest.approx(want, abs=1e-5)
    assert r["usage"]["completion_tokens"] == 5 and choice["finish_reason"] == "length"
