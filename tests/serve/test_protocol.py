"""The server's protocol promises (issues 11 and 16): OpenAI-shaped 400s for what it cannot do
faithfully, 500s that keep the connection, /v1/models/{id}, seed semantics and bearer auth."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fault_server import ServerThread, wait_for

from llmbench.errors import UserError
from llmbench.models.base import ModelAdapter
from llmbench.models.hf.adapter import HFAdapter, HFConfig
from llmbench.serve.app import create_app
from llmbench.serve.auth import check_bind, is_loopback
from llmbench.types import Request, Response

NAME = "tiny-gpt2"


@pytest.fixture(scope="module")
def hf(tiny_gpt2: Path) -> Iterator[HFAdapter]:
    adapter = HFAdapter(HFConfig(path=str(tiny_gpt2), device="cpu"))
    yield adapter
    adapter.close()


@pytest.fixture(scope="module")
def url(hf: HFAdapter) -> Iterator[str]:
    with ServerThread(create_app(hf, NAME)) as s:
        yield s.url


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


@pytest.mark.parametrize(("field", "value"), [
    ("logit_bias", {"5": 10}), ("presence_penalty", 0.5), ("frequency_penalty", -1.0),
    ("tools", [{"type": "function", "function": {"name": "f"}}]),
    ("response_format", {"type": "json_object"}), ("suffix", " end"), ("top_k", 5),
])
def test_answer_changing_parameters_are_refused(url: str, field: str, value: Any) -> None:
    for path, body in (("/completions", {"prompt": "the movie"}),
                       ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})):
        r = httpx.post(url + path, json={"model": NAME, "max_tokens": 2, **body, field: value})
        err = error(r, 400)
        assert err["param"] == field and err["code"] == "unsupported_parameter", err


def test_their_off_values_are_accepted(url: str) -> None:
    r = httpx.post(url + "/completions", json={
        "model": NAME, "prompt": "the movie", "max_tokens": 2, "logit_bias": {}, "presence_penalty": 0,
        "frequency_penalty": 0.0, "suffix": None, "response_format": {"type": "text"}, "tools": [],
        "user": "someone", "metadata": {"a": "b"}})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("prompt", ["", [], [""], [[]], ["ok", ""]])
def test_empty_prompt_is_a_400(url: str, prompt: Any) -> None:
    err = error(httpx.post(url + "/completions", json={"model": NAME, "prompt": prompt}), 400)
    assert err["param"] == "prompt" and "empty" in err["message"]


def test_bad_token_ids_are_a_400(url: str) -> None:
    err = error(httpx.post(url + "/completions", json={"model": NAME, "prompt": [1, 10**6]}), 400)
    assert err["param"] == "prompt" and "1000000" in err["message"]


def test_over_long_prompts_are_refused_alike_on_every_path(hf: HFAdapter, url: str) -> None:
    """The model takes 512 positions. Generation and echo scoring refuse alike; nothing is cut."""
    tok = hf.runtime.tokenizer
    prompt = "the movie was great " * 200
    ids = tok(prompt, add_special_tokens=False)["input_ids"][:505]
    assert tok(prompt, add_special_tokens=False)["input_ids"][:505] == ids and len(ids) == 505
    cases = [
        ("/completions", {"prompt": ids, "max_tokens": 8}, 513),          # generation
        ("/completions", {"prompt": ids * 2, "max_tokens": 0, "echo": True, "logprobs": 0}, 1010),  # echo
        ("/completions", {"prompt": ids, "max_tokens": 8, "echo": True, "logprobs": 1}, 513),
        ("/completions", {"prompt": prompt}, None),                        # text, default max_tokens
        ("/chat/completions", {"messages": [{"role": "user", "content": prompt}]}, None),
    ]
    for path, body, total in cases:
        err = error(httpx.post(url + path, json={"model": NAME, **body}), 400)
        assert err["code"] == "context_length_exceeded", (body, err)
        assert "maximum context length is 512 tokens" in err["message"]
        if total is not None:
            assert f"you requested {total} tokens" in err["message"]
    fits = httpx.post(url + "/completions", json={"model": NAME, "prompt": ids, "max_tokens": 7})
    assert fits.status_code == 200 and fits.json()["usage"]["total_tokens"] <= 512


def test_model_by_id(url: str) -> None:
    r = httpx.get(f"{url}/models/{NAME}")
    assert r.status_code == 200 and r.json() == {"id": NAME, "object": "model", "created": 0,
                                                 "owned_by": "llmbench"}
    err = error(httpx.get(f"{url}/models/other"), 404)
    assert err["code"] == "model_not_found"


def test_model_id_with_slashes(hf: HFAdapter) -> None:
    with ServerThread(create_app(hf, "hf:models/tiny")) as s:
        assert httpx.get(f"{s.url}/models/hf:models/tiny").json()["id"] == "hf:models/tiny"


def test_seed_semantics(url: str) -> None:
    """temperature 0 is deterministic; a seed makes sampling repeatable; no seed is not."""
    def text(**kw: Any) -> str:
        r = httpx.post(url + "/completions", json={"model": NAME, "prompt": "the movie was",
                                                   "max_tokens": 12, **kw})
        assert r.status_code == 200, r.text
        return str(r.json()["choices"][0]["text"])

    assert text(temperature=0) == text(temperature=0, seed=5)
    assert text(temperature=1.0, seed=7) == text(temperature=1.0, seed=7)
    seeded = {text(temperature=1.0, seed=s) for s in range(4)}
    assert len(seeded) > 1
    unseeded = {text(temperature=1.0) for _ in range(4)}
    assert len(unseeded) > 1  # not silently deterministic


class _Broken(ModelAdapter):
    """A plugin whose every batch raises: the server must answer 500, not drop the connection."""

    name = "broken"
    supports = frozenset({"generate"})

    def identity(self) -> dict[str, Any]:
        return {"backend": "broken"}

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        raise RuntimeError("the GPU caught fire")


def test_a_500_keeps_the_keep_alive_connection() -> None:
    with ServerThread(create_app(_Broken(), "broken")) as s:
        host, port = s.url.split("//")[1].split("/")[0].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        body = json.dumps({"model": "broken", "prompt": "x", "max_tokens": 2})
        conn.request("GET", "/v1/models")
        conn.getresponse().read()
        sock = conn.sock
        for _ in range(4):
            conn.request("POST", "/v1/completions", body=body,
                         headers={"content-type": "application/json"})
            resp = conn.getresponse()
            payload = json.loads(resp.read())
            assert resp.status == 500 and payload["error"]["type"] == "server_error"
            assert "GPU caught fire" in payload["error"]["message"]
            assert (resp.getheader("connection") or "").lower() != "close"
        conn.request("GET", "/v1/models")
        assert conn.getresponse().status == 200
        assert conn.sock is sock  # the same connection all along
        conn.close()


def test_text_only_adapters_refuse_token_ids() -> None:
    with ServerThread(create_app(_Broken(), "broken")) as s:
        err = error(httpx.post(f"{s.url}/completions", json={"model": "broken", "prompt": [1, 2]}), 400)
        assert err["param"] == "prompt" and "token-id" in err["message"]


# ---------------------------------------------------------------------------------- auth


def test_with_a_key_every_endpoint_needs_it(hf: HFAdapter) -> None:
    with ServerThread(create_app(hf, NAME, api_key="s3cret")) as s:
        root = s.url.removesuffix("/v1")
        calls = [("GET", "/v1/models", None), ("GET", f"/v1/models/{NAME}", None),
                 ("POST", "/v1/completions", {"model": NAME, "prompt": "x", "max_tokens": 1}),
                 ("POST", "/v1/chat/completions", {"model": NAME, "max_tokens": 1,
                                                   "messages": [{"role": "user", "content": "x"}]}),
                 ("GET", "/docs", None), ("GET", "/openapi.json", None), ("GET", "/nowhere", None)]
        with httpx.Client(base_url=root) as client:
            for method, path, body in calls:
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                    r = client.request(method, path, json=body, headers=headers)
                    err = error(r, 401)
                    assert err["code"] in ("invalid_api_key", "missing_api_key"), (path, headers)
                    assert r.headers["www-authenticate"] == "Bearer"
                r = client.request(method, path, json=body, headers={"Authorization": "Bearer s3cret"})
                assert r.status_code == (404 if path == "/nowhere" else 200), (path, r.text)


def test_non_loopback_bind_needs_a_key() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert is_loopback(host), host
        check_bind(host, None)
    for host in ("0.0.0.0", "::", "10.1.2.3", ""):
        assert not is_loopback(host), host
        with pytest.raises(UserError, match="--api-key"):
            check_bind(host, None)
        check_bind(host, "k")
    with pytest.raises(UserError, match="empty"):
        check_bind("127.0.0.1", "  ")


def test_cli_refuses_an_open_bind_before_loading(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from llmbench.cli.main import main

    monkeypatch.delenv("LLMBENCH_SERVE_API_KEY", raising=False)
    with pytest.raises(SystemExit) as done:
        main(["serve", "hf:/no/such/model", "--host", "0.0.0.0"])
    err = capsys.readouterr().err
    assert done.value.code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--api-key" in lines[0] and "/no/such/model" not in lines[0]
    monkeypatch.setenv("LLMBENCH_SERVE_API_KEY", "k")  # with a key it gets as far as the model
    with pytest.raises(SystemExit) as done:
        main(["serve", "hf:/no/such/model", "--host", "0.0.0.0"])
    assert done.value.code == 2 and "/no/such/model" in capsys.readouterr().err


class _Held(ModelAdapter):
    """Holds each batch until the test releases it, and records the prompts it was asked:
    the test orders events instead of sleeping and hoping the model is busy by then."""

    name = "held"
    supports = frozenset({"generate"})

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.busy = threading.Event()  # a batch has reached the model
        self.release = threading.Event()

    def identity(self) -> dict[str, Any]:
        return {"backend": "held"}

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        self.busy.set()
        assert self.release.wait(timeout=30)
        for i, r in enumerate(requests):
            self.seen.append(str(r.prompt))
            yield i, Response(text="ok")


def test_an_abandoned_request_never_reaches_the_model() -> None:
    adapter = _Held()
    app = create_app(adapter, "held")
    with ServerThread(app) as s:
        body = {"model": "held", "max_tokens": 2}
        first = threading.Thread(target=httpx.post, args=(f"{s.url}/completions",),
                                 kwargs={"json": {**body, "prompt": "first"}, "timeout": 30})
        first.start()
        assert adapter.busy.wait(timeout=30)  # the model is held with "first"
        with pytest.raises(httpx.TimeoutException):  # a client that gives up while it waits
            httpx.post(f"{s.url}/completions", json={**body, "prompt": "abandoned"}, timeout=0.3)
        assert wait_for(lambda: app.state.abandoned == 1, timeout=30)  # the server noticed
        adapter.release.set()
        first.join()
        after = httpx.post(f"{s.url}/completions", json={**body, "prompt": "after"}, timeout=30)
        assert after.status_code == 200
    assert adapter.seen == ["first", "after"]
    assert app.state.worker.dropped == 1
