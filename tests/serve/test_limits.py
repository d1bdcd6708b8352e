"""Issue 28 on ``llmbench serve``: a body over the cap is refused unread (413, memory flat),
a prompt too long for the window is refused before it is tokenized, values OpenAI refuses
are 400s (not read as something else, not a 500), streaming is live (the first event arrives
while the model is still generating), and lm-eval's rolling log-likelihood gives the same
numbers through text prompts as through token ids.

Nothing here bounds wall-clock time: what is proved is counted (jobs that reached the model
thread, bytes allocated, events seen before a forward pass was allowed to run)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fault_server import ServerThread
from scripted import build_scripted_gpt2

from llmbench.models.hf.adapter import HFAdapter, HFConfig
from llmbench.serve.app import create_app

NAME = "tiny-gpt2"


@pytest.fixture(scope="module")
def hf(tiny_gpt2: Path) -> Iterator[HFAdapter]:
    adapter = HFAdapter(HFConfig(path=str(tiny_gpt2), device="cpu"))
    yield adapter
    adapter.close()


@pytest.fixture(scope="module")
def served(hf: HFAdapter) -> Iterator[tuple[str, Any]]:
    app = create_app(hf, NAME)
    with ServerThread(app) as s:
        yield s.url, app


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


# ------------------------------------------------------------------------------ body cap
def test_a_body_over_the_cap_is_refused_unread(served: tuple[str, Any]) -> None:
    """A 10 MB prompt (issue 28: read, parsed and tokenized for 10 s, memory up by gigabytes):
    the 413, in OpenAI's shape, comes back before a single byte of the body was sent, so the
    server cannot have read, buffered or tokenized it (memory flat); nothing reached the
    model thread, and the server answers normally afterwards."""
    url, app = served
    jobs_before = sum(app.state.worker.jobs.values())
    port = int(url.split(":")[-1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                     b"content-type: application/json\r\ncontent-length: 10000000\r\n\r\n")
        reply = b""
        while b"}}" not in reply:  # the whole JSON error, without sending the body
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    err = json.loads(payload)["error"]
    assert err["code"] == "request_too_large" and "4194304 bytes" in err["message"]
    assert sum(app.state.worker.jobs.values()) == jobs_before
    # a client that sends the 10 MB anyway after the 413 is on its way (httpx and the OpenAI SDK
    # send the whole body before they read): a server that closed at once reset the connection
    # under the upload, and the reset threw the 413 away unread ("peer closed connection")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                     b"content-type: application/json\r\ncontent-length: 10000000\r\n\r\n")
        time.sleep(0.5)  # the 413 has arrived, unread
        sock.sendall(b"a" * 10_000_000)
        reply = b""
        while b"}}" not in reply:
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert sum(app.state.worker.jobs.values()) == jobs_before
    # the same through a client that sends the 10 MB anyway
    body = json.dumps({"model": NAME, "prompt": "a" * 10_000_000, "max_tokens": 1}).encode()
    r = httpx.post(f"{url}/completions", content=body, headers={"content-type": "application/json"},
                   timeout=60)
    assert error(r, 413)["code"] == "request_too_large"
    ok = httpx.post(f"{url}/completions", json={"model": NAME, "prompt": "hi", "max_tokens": 1})
    assert ok.status_code == 200
    assert sum(app.state.worker.jobs.values()) > jobs_before


def test_a_chunked_body_is_counted_as_it_arrives(hf: HFAdapter) -> None:
    """No Content-Length (chunked): refused once the bytes read pass the cap."""
    app = create_app(hf, NAME, max_body_bytes=16 * 1024)
    payload = json.dumps({"model": NAME, "prompt": "b" * 40_000, "max_tokens": 1}).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 4096):
            yield payload[i : i + 4096]

    with ServerThread(app) as s:
        r = httpx.post(f"{s.url}/completions", content=chunks(),
                       headers={"content-type": "application/json"}, timeout=60)
        err = error(r, 413)
        assert err["code"] == "request_too_large" and "16384 bytes" in err["message"]
        small = httpx.post(f"{s.url}/completions", json={"model": NAME, "prompt": "hi", "max_tokens": 1})
        assert small.status_code == 200
    assert app.state.worker.jobs["call"] == 1  # only the small prompt was tokenized


def test_a_prompt_too_long_for_the_window_is_not_tokenized(served: tuple[str, Any], hf: HFAdapter) -> None:
    url, app = served
    window = hf.token_scorer().max_length  # type: ignore[union-attr]
    assert window is not None
    calls = app.state.worker.jobs["call"]
    for path, body in (("/completions", {"prompt": "word " * (window * 8)}),
                       ("/chat/completions", {"messages": [{"role": "user", "content": "x" * (window * 40)}]}),
                       ("/completions", {"prompt": list(range(window + 1))})):
        err = error(httpx.post(f"{url}{path}", json={"model": NAME, "max_tokens": 1, **body}, timeout=60), 400)
        assert err["code"] == "context_length_exceeded", err
    assert app.state.worker.jobs["call"] == calls  # refused before the model thread


# ------------------------------------------------------------------------ refused values
@pytest.mark.parametrize(("path", "fields", "param"), [
    ("/completions", {"prompt": "a\ud800b"}, "prompt"),
    ("/completions", {"prompt": ["fine", "a\udfffb"]}, "prompt"),
    ("/chat/completions", {"messages": [{"role": "user", "content": "a\ud800b"}]}, "messages.0.content"),
    ("/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": "\ud800"}]}]},
     "messages.0.content"),
    ("/completions", {"prompt": "x", "stop": ["\ud800"]}, "stop"),
    ("/completions", {"prompt": "x", "n": 0}, "n"),
    ("/completions", {"prompt": "x", "best_of": 0}, "best_of"),
    ("/completions", {"prompt": "x", "stream": "yes"}, "stream"),
    ("/completions", {"prompt": "x", "echo": "yes"}, "echo"),
    ("/chat/completions", {"messages": [{"role": "user", "content": "x"}], "logprobs": "true"}, "logprobs"),
    ("/completions", {"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
])
def test_values_openai_refuses_are_400s(served: tuple[str, Any], path: str, fields: dict[str, Any],
                                        param: str) -> None:
    url, app = served
    calls = app.state.worker.jobs["call"]
    raw = json.dumps({"model": NAME, "max_tokens": 1, **fields}).encode()  # surrogates as \\ud800 escapes
    err = error(httpx.post(f"{url}{path}", content=raw, headers={"content-type": "application/json"}), 400)
    assert err["param"] is not None and err["param"].startswith(param), err
    assert err["type"] == "invalid_request_error"
    assert app.state.worker.jobs["call"] == calls  # never reached the tokenizer


def test_four_stop_strings_are_fine(served: tuple[str, Any]) -> None:
    url, _ = served
    r = httpx.post(f"{url}/completions", json={"model": NAME, "prompt": "x", "max_tokens": 2,
                                              "stop": ["a", "b", "c", "d"]})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("raw", [b'{"model": "tiny-gpt2", "prompt": ', b"not json", b'{"model": 1,}'])
def test_malformed_json_has_no_offset_in_param(served: tuple[str, Any], raw: bytes) -> None:
    url, _ = served
    r = httpx.post(f"{url}/completions", content=raw, headers={"content-type": "application/json"})
    err = error(r, 400)
    assert err["param"] is None and "not valid JSON" in err["message"], err


# ----------------------------------------------------------------------------- streaming
def _script(tok: Any) -> tuple[dict[int, int], int]:
    return {}, tok.convert_tokens_to_ids("x")  # every token is followed by "x"


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HFAdapter]:
    path = build_scripted_gpt2(tmp_path_factory.mktemp("scripted") / "gpt2", _script)
    adapter = HFAdapter(HFConfig(path=str(path), device="cpu"))
    adapter.prepare()
    yield adapter
    adapter.close()


@pytest.mark.parametrize("sampling", [False, True], ids=["greedy-loop", "generate-streamer"])
@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_the_first_event_arrives_before_the_last_token(scripted: HFAdapter, endpoint: str,
                                                       sampling: bool) -> None:
    """Time to first token, by ordering rather than by clock: the model's 4th forward pass
    (the 4th of 10 tokens) waits until the client has read a content event. A server that
    streams only the finished answer would never send it in time, and the pass would time out."""
    model = scripted.runtime.model
    seen_first = threading.Event()
    passes: list[bool] = []  # per forward pass: had the first event arrived before it ran?

    def hook(*_: Any) -> None:
        if len(passes) == 3:
            seen_first.wait(timeout=20)
        passes.append(seen_first.is_set())

    handle = model.register_forward_pre_hook(hook)
    body: dict[str, Any] = {"model": "m", "max_tokens": 10, "stream": True,
                            "temperature": 1.0 if sampling else 0, "seed": 7}
    if endpoint == "chat":
        body["messages"] = [{"role": "user", "content": "say"}]
    else:
        body["prompt"] = "say"
    texts: list[str] = []
    try:
        with ServerThread(create_app(scripted, "m")) as s, \
                httpx.stream("POST", f"{s.url}/{'chat/completions' if endpoint == 'chat' else 'completions'}",
                             json=body, timeout=60) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if not line.startswith("data: {"):
                    continue
                choice = json.loads(line[6:])["choices"][0]
                text = choice.get("text") or (choice.get("delta") or {}).get("content") or ""
                if text:
                    texts.append(text)
                    seen_first.set()
    finally:
        handle.remove()
    assert len(passes) == 10  # ten tokens, one forward pass each
    assert passes[3:] == [True] * 7  # the 4th pass ran only once the client had an event
    assert len(texts) >= 4  # several events, not one at the end
    assert "".join(texts) == "x" * 10 or sampling


def test_a_live_stream_holds_back_a_stop_string(scripted: HFAdapter) -> None:
    """The answer would be "xxxxxxxxxx"; with stop "xxx" it is "" — and no "x" may have been
    sent before the stop string was complete."""
    body = {"model": "m", "prompt": "say", "max_tokens": 10, "stream": True, "temperature": 0,
            "stop": ["xxx"]}
    with ServerThread(create_app(scripted, "m")) as s, \
            httpx.stream("POST", f"{s.url}/completions", json=body) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    assert "".join(e["choices"][0]["text"] for e in events) == ""
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


# ------------------------------------------------------------------- lm-eval rolling windows
def _rolling_windows(ids: list[int], prefix: int, window: int) -> Iterator[list[int]]:
    """The token windows lm-eval 0.4's local-completions sends for ``loglikelihood_rolling``
    with ``max_length`` set to the model's window: ``get_rolling_token_windows`` at
    ``max_seq_len = (max_length - 1) - 1`` with one context token, made disjoint, written out
    here. The first window is the prefix token and the first tokens; each next one ends
    ``max_seq_len`` tokens further, with as much context as fills it."""
    seq = window - 2
    yield [prefix, *ids[:seq]]
    done = min(seq, len(ids))
    while done < len(ids):
        end = min(done + seq, len(ids))
        yield ids[max(0, end - seq - 1) : end]
        done = end


def _score(url: str, prompt: Any) -> httpx.Response:
    return httpx.post(f"{url}/completions", json={
        "model": NAME, "prompt": prompt, "max_tokens": 1, "echo": True, "logprobs": 1,
        "temperature": 0, "seed": 1234}, timeout=60)


def test_rolling_windows_as_text_score_as_the_token_ids(served: tuple[str, Any], hf: HFAdapter) -> None:
    """lm-eval's rolling log-likelihood with text prompts got 400s where token ids worked.
    The server adds no token and its window check is exact: every window that decodes to text
    and back (as ASCII text always does) gives the same tokens and log-probabilities as its ids,
    at the window's full length (window - 1 tokens + the one generated)."""
    url, _ = served
    tok = hf.runtime.tokenizer
    window = hf.token_scorer().max_length  # type: ignore[union-attr]
    assert window is not None
    doc = " ".join(f"The {i}th line of plain text, with words and numbers {i * 7}." for i in range(150))
    ids = list(tok(doc, add_special_tokens=False)["input_ids"])
    windows = list(_rolling_windows(ids, tok.eos_token_id, window))
    assert len(windows) >= 3 and max(len(w) for w in windows) == window - 1
    for w in windows:
        by_ids, by_text = _score(url, w), _score(url, tok.decode(w))
        assert by_ids.status_code == by_text.status_code == 200, by_text.text
        a, b = (r.json()["choices"][0]["logprobs"] for r in (by_ids, by_text))
        assert a["tokens"] == b["tokens"] and a["token_logprobs"] == b["token_logprobs"]


def test_a_window_cut_inside_a_character_says_why(served: tuple[str, Any], hf: HFAdapter) -> None:
    """The text path's 400s: lm-eval decodes a window whose edge cuts a multi-byte character,
    the half character becomes U+FFFD, which encodes to three byte tokens — more than the
    client counted. Not fixable on the server (the bytes are gone); the 400 says so, and the
    token ids of the same window are scored."""
    url, _ = served
    tok = hf.runtime.tokenizer
    window = hf.token_scorer().max_length  # type: ignore[union-attr]
    assert window is not None
    ids = list(tok("café résumé " * 400, add_special_tokens=False)["input_ids"])
    cut = next(w for w in _rolling_windows(ids, tok.eos_token_id, window)
               if "\ufffd" in tok.decode(w) and len(w) == window - 1)
    assert _score(url, cut).status_code == 200
    err = error(_score(url, tok.decode(cut)), 400)
    assert err["code"] == "context_length_exceeded" and "U+FFFD" in err["message"]


def test_a_bos_written_in_the_text_is_not_added_twice(tiny_gpt2: Path) -> None:
    """For a model that puts BOS in front of a text prompt (Llama-style; here the tiny GPT-2
    told so), a text that starts with the BOS written out — lm-eval's decoded first window —
    is read as the client's ids, not with a second BOS the client did not send."""
    adapter = HFAdapter(HFConfig(path=str(tiny_gpt2), device="cpu"))
    adapter.prepare()
    tok = adapter.runtime.tokenizer
    bos = tok.eos_token_id  # GPT-2 has one token for both
    adapter.runtime.prefix = [bos]
    try:
        with ServerThread(create_app(adapter, NAME)) as s:
            ids = [bos, *tok("plain text, scored twice", add_special_tokens=False)["input_ids"]]
            by_ids, by_text = _score(s.url, ids), _score(s.url, tok.decode(ids))
            plain = _score(s.url, tok.decode(ids[1:]))  # without BOS in the text: the server adds it
    finally:
        adapter.close()
    lps = [r.json()["choices"][0]["logprobs"] for r in (by_ids, by_text, plain)]
    assert lps[0]["token_logprobs"] == lps[1]["token_logprobs"] == lps[2]["token_logprobs"]
    assert by_text.json()["usage"]["prompt_tokens"] == len(ids)


def test_a_refused_body_that_never_ends_is_cut_off(served: tuple[str, Any]) -> None:
    """The 413's connection lingers only ``LINGER_S`` (5 s) while the upload is dropped: a
    client that declares a terabyte and keeps uploading is then disconnected, and nothing of
    it reached the model thread."""
    url, app = served
    jobs_before = sum(app.state.worker.jobs.values())
    port = int(url.split(":")[-1].split("/")[0])
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                     b"content-type: application/json\r\ncontent-length: 1000000000000\r\n\r\n")
        with pytest.raises(OSError):  # reset or broken pipe once the server has closed
            while time.monotonic() - start < 30:
                sock.sendall(b"a" * 65536)
    assert time.monotonic() - start < 15
    assert sum(app.state.worker.jobs.values()) == jobs_before
