"""OpenAIAdapter without a model: config, secrets, prices, parsing, labels, flow control.

Network tests talk real HTTP to small FastAPI apps on 127.0.0.1 (see fault_server).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fault_server import ServerThread, fake_openai_app

from llmbench.models.base import ModelAdapter, ModelError
from llmbench.models.openai.adapter import OpenAIAdapter, OpenAIConfig
from llmbench.models.openai.labels import MISSING_LOGPROB, check_labels, score_labels
from llmbench.models.openai.limits import AdaptiveLimiter, backoff_delay, parse_retry_after
from llmbench.models.openai.parse import FatalResponse, cut_at_stop, echo_logprob
from llmbench.models.openai.prices import load_prices, price_for
from llmbench.types import ChatMessage, GenerationConfig, Usage
from llmbench.types import Request as LLMRequest

SECRET = "sk-test-SECRET123"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("LLMBENCH_PRICES", raising=False)


def fast(**kw: Any) -> OpenAIConfig:
    """Small timeouts and back-off so fault tests take seconds."""
    base = {"model": "m", "timeout_s": 2.0, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
            "max_retries": 3}
    return OpenAIConfig(**{**base, **kw})


def gen(i: int, text: str = "hello") -> LLMRequest:
    return LLMRequest(sample_id=str(i), kind="generate", prompt=f"{text} {i}",
                      config=GenerationConfig(max_new_tokens=4))


# ------------------------------------------------------------------ config
def test_api_resolution_and_supports() -> None:
    assert OpenAIConfig(model="davinci-002").resolved_api() == "completions"
    assert OpenAIConfig(model="gpt-3.5-turbo-instruct").resolved_api() == "completions"
    assert OpenAIConfig(model="gpt-4o-mini").resolved_api() == "chat"
    a = OpenAIAdapter(OpenAIConfig(model="davinci-002"))
    assert a.supports == {"generate", "classify", "loglikelihood"}
    assert a.scoring_method("loglikelihood") == "completions-echo"
    b = OpenAIAdapter(OpenAIConfig(model="gpt-3.5-turbo-instruct"))  # no echo logprobs
    assert "loglikelihood" not in b.supports
    c = OpenAIAdapter(OpenAIConfig(model="local", base_url="http://127.0.0.1:1/v1"))
    assert c.supports == {"generate", "classify"}  # a local server must opt in to echo
    assert (c.scoring_method("generate"), c.scoring_method("classify")) == ("chat", "first-token-top-logprobs")
    assert "loglikelihood" not in c.supports
    assert isinstance(c, ModelAdapter)
    with pytest.raises(ValueError):
        OpenAIConfig(model="m", concurency=3)  # type: ignore[call-arg]


def test_missing_key_is_a_one_line_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ModelError) as err:
        OpenAIAdapter(OpenAIConfig(model="gpt-4o-mini"))
    assert str(err.value) == ("OPENAI_API_KEY is not set — export it or set api_key_env in the "
                              "model config")
    monkeypatch.setenv("MY_KEY", "x")
    OpenAIAdapter(OpenAIConfig(model="gpt-4o-mini", api_key_env="MY_KEY"))


def test_requests_are_validated_before_anything_is_sent() -> None:
    app = fake_openai_app()
    seen: list[str] = []

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Any:
        seen.append(request.url.path)
        return await call_next(request)

    with ServerThread(app) as s:
        a = OpenAIAdapter(fast(base_url=s.url, api="chat"))
        bad = LLMRequest(sample_id="x", kind="classify", prompt="t",
                         continuations=("pos", "positive"))
        with pytest.raises(ModelError, match="cannot tell labels 'pos' and 'positive' apart"):
            a.run([gen(0), bad])
        with pytest.raises(ModelError, match="echo_logprobs"):
            a.run([LLMRequest(sample_id="y", kind="loglikelihood", prompt="p",
                              continuations=("a",))])
        completions = OpenAIAdapter(fast(base_url=s.url, api="completions"))
        chat = (ChatMessage(role="user", content="hi"),)
        with pytest.raises(ModelError, match="plain-text"):
            completions.run([LLMRequest(sample_id="z", kind="generate", prompt=chat)])
        a.close()
        completions.close()
    assert seen == []


# ----------------------------------------------------------------- secrets
def test_key_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    """The key reaches the server, and nothing else: identity, reprs, logs, errors."""
    app = FastAPI()
    auth_seen: list[str] = []

    @app.post("/v1/chat/completions")
    async def echo_auth(request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        auth_seen.append(auth)
        body = await request.json()
        status = 401 if "deny" in body["messages"][0]["content"] else 500
        return JSONResponse({"error": {"message": f"bad credentials: {auth}", "type": "x"}},
                            status_code=status)

    caplog.set_level(logging.DEBUG)
    with ServerThread(app) as s:
        config = fast(base_url=s.url, api="chat", max_retries=1)
        adapter = OpenAIAdapter(config)
        results = dict(adapter.run([gen(0, "deny"), gen(1, "crash")]))
        texts = [repr(adapter), str(adapter), repr(config), str(config),
                 json.dumps(adapter.identity()), repr(vars(adapter)), caplog.text,
                 *(r.error or "" for r in results.values())]
        adapter.close()
    assert auth_seen and all(a == f"Bearer {SECRET}" for a in auth_seen)
    assert results[0].error and results[0].error.startswith("HTTP 401")
    assert results[1].error and "HTTP 500" in results[1].error
    assert "***" in results[0].error  # the server echoed the key; we scrubbed it
    for text in texts:
        assert SECRET not in text
    assert adapter.identity() == {"backend": "openai", "model": "m", "base_url": s.url,
                                  "api": "chat", "top_logprobs": 20}


# ------------------------------------------------------------------ prices
def test_price_table(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    table = load_prices()
    mini = price_for("gpt-4o-mini", table)
    assert mini is not None and price_for("gpt-4o-mini-2024-07-18", table) == mini
    assert price_for("gpt-4o-mini-audio", table) is None  # no loose prefix matching
    assert price_for("my-local-model", table) is None
    assert mini.cost(Usage(prompt_tokens=1_000_000, completion_tokens=2_000_000)) == pytest.approx(
        mini.input + 2 * mini.output)
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps({"my-local-model": {"input": 1.0, "output": 3.0}}))
    own = tmp_path / "own.json"
    own.write_text(json.dumps({"models": {"gpt-4o-mini": {"input": 9.0, "output": 9.0},
                                          "_comment": "ignored"}}))
    monkeypatch.setenv("LLMBENCH_PRICES", str(env_file))
    table = load_prices(own)
    assert price_for("my-local-model", table).input == 1.0  # type: ignore[union-attr]
    assert price_for("gpt-4o-mini", table).input == 9.0  # type: ignore[union-attr]
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": {"input": "cheap"}}')
    with pytest.raises(ModelError, match=r"bad\.json"):
        load_prices(bad)


def test_cost_is_computed_per_response(tmp_path: Any) -> None:
    prices = tmp_path / "p.json"
    prices.write_text(json.dumps({"m": {"input": 2.0, "output": 10.0}}))
    with ServerThread(fake_openai_app()) as s:
        priced = OpenAIAdapter(fast(base_url=s.url, api="chat", prices_file=prices))
        unpriced = OpenAIAdapter(fast(base_url=s.url, api="chat", model="unknown-model"))
        (_, r), = priced.run([gen(0)])
        (_, u), = unpriced.run([gen(0)])
        priced.close()
        unpriced.close()
    assert r.usage is not None and r.latency_s is not None and r.latency_s > 0
    expected = (r.usage.prompt_tokens * 2.0 + r.usage.completion_tokens * 10.0) / 1e6
    assert r.cost_usd == pytest.approx(expected)
    assert u.error is None and u.cost_usd is None


# ----------------------------------------------------------------- parsing
def lp(tokens: list[str], values: list[float | None], tops: list[Any] | None = None) -> Any:
    offsets, pos = [], 0
    for t in tokens:
        offsets.append(pos)
        pos += len(t)
    return SimpleNamespace(tokens=tokens, token_logprobs=values, text_offset=offsets,
                           top_logprobs=tops)


def test_echo_logprob_sums_the_continuation_only() -> None:
    tops = [None, {"x": -0.5}, {" b": -1.0}, {"c": -1.0}]
    got = echo_logprob("a:", " bc", lp(["a", ":", " b", "c"], [None, -0.5, -1.0, -2.0], tops))
    assert got == (-3.0, False)
    tops[3] = {"c": -2.0}
    assert echo_logprob("a:", " bc", lp(["a", ":", " b", "c"], [None, -0.5, -1.0, -2.0],
                                         tops)) == (-3.0, True)
    # trailing space of the prompt belongs to the continuation (lm-eval convention)
    assert echo_logprob("a: ", "bc", lp(["a", ":", " bc"], [None, -1.0, -4.0]))[0] == -4.0
    with pytest.raises(FatalResponse, match="straddles"):
        echo_logprob("a:b", "c", lp(["a", ":", "bc"], [None, -1.0, -4.0]))
    with pytest.raises(FatalResponse, match="no log-probability"):
        echo_logprob("", "bc", lp(["bc"], [None]))
    with pytest.raises(FatalResponse, match="no echoed"):
        echo_logprob("a", "b", None)
    assert cut_at_stop("one\ntwo###", ["###", "\n"]) == "one"


def test_label_rule() -> None:
    check_labels(["positive", "negative"])
    check_labels(["entailment", "neutral", "contradiction"])
    for labels in (["pos", "positive"], ["very good", "very bad"], ["1", "10"],
                   ["Yes", "yes"], ["", "x"]):
        with pytest.raises(ModelError):
            check_labels(labels)
    top = [(" Positive", -0.1), ("pos", -0.5), ("negative", -1.5), ("n", -0.2), ("neg.", -0.3)]
    scores = score_labels(["positive", "negative", "neutral"], top)
    # " Positive" matches first; "n" is a prefix of two labels, so it says nothing;
    # "neg." is not a prefix of "negative"; "neutral" never appears.
    assert scores == {"positive": -0.1, "negative": -1.5, "neutral": MISSING_LOGPROB}


# ------------------------------------------------------------ flow control
def test_retry_after_and_backoff() -> None:
    assert parse_retry_after({"retry-after": "0.05"}) == 0.05
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "1e9"}) == 120.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    import random

    rng = random.Random(0)
    delays = [backoff_delay(a, 0.1, 1.0, rng) for a in range(8)]
    assert 0.05 <= delays[0] <= 0.1 and all(0.5 <= d <= 1.0 for d in delays[4:])


def test_limiter_aimd() -> None:
    async def scenario() -> list[float]:
        lim = AdaptiveLimiter(8)
        epochs = [await lim.acquire() for _ in range(8)]
        assert lim.in_flight == 8
        for e in epochs[:4]:  # one congestion event: four 429s from the same window
            await lim.release(e, "throttled")
        assert lim.limit == 4.0
        for e in epochs[4:]:
            await lim.release(e, "failed")
        for _ in range(30):
            await lim.release(await lim.acquire(), "ok")
        return [v for _, v in lim.trace]

    trace = asyncio.run(scenario())
    assert trace[0] == 8.0 and min(trace) == 4.0 and trace[-1] == 8.0


def throttling_app(limit: int) -> FastAPI:
    """Answers 429 whenever more than ``limit`` requests are in flight (while ``on``)."""
    app = fake_openai_app()
    app.state.on = True
    app.state.busy = 0
    app.state.peak = 0
    app.state.throttled = 0

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Any:
        if app.state.on and app.state.busy >= limit:
            app.state.throttled += 1
            return JSONResponse({"error": {"message": "slow down", "type": "requests"}},
                                status_code=429, headers={"retry-after": "0.02"})
        app.state.busy += 1
        app.state.peak = max(app.state.peak, app.state.busy)
        try:
            await asyncio.sleep(0.02)
            return await call_next(request)
        finally:
            app.state.busy -= 1

    return app


def test_adaptive_concurrency_goes_down_on_429_and_back_up() -> None:
    app = throttling_app(limit=2)
    with ServerThread(app) as s:
        adapter = OpenAIAdapter(fast(base_url=s.url, api="chat", concurrency=16,
                                     max_retries=20))
        first = dict(adapter.run([gen(i) for i in range(60)]))
        assert all(r.error is None for r in first.values())
        assert app.state.throttled > 0
        low = min(v for _, v in adapter.limiter.trace)
        assert low <= 4
        app.state.on, app.state.peak = False, 0
        second = dict(adapter.run([gen(i, "more") for i in range(200)]))
        assert all(r.error is None for r in second.values())
        assert adapter.limiter.limit >= 12  # additive increase brought it back up
        assert app.state.peak > 4  # and the server saw the concurrency again
        adapter.close()


def test_timeout_and_non_retryable_errors() -> None:
    app = FastAPI()
    calls: list[str] = []

    @app.post("/v1/chat/completions")
    async def slow(request: Request) -> JSONResponse:
        body = await request.json()
        calls.append(body["messages"][0]["content"])
        if "bad" in body["messages"][0]["content"]:
            return JSONResponse({"error": {"message": "no such thing", "type": "x"}}, 400)
        await asyncio.sleep(1.0)
        return JSONResponse({})

    with ServerThread(app) as s:
        adapter = OpenAIAdapter(fast(base_url=s.url, api="chat", timeout_s=0.2, max_retries=1))
        got = dict(adapter.run([gen(0, "slow"), gen(1, "bad")]))
        adapter.close()
    assert got[0].error is not None and "timed out after 0.2 s" in got[0].error
    assert got[0].error.startswith("failed after 2 attempts")  # max_retries=1: sent twice
    assert calls.count("slow 0") == 2 and got[0].attempts == 2
    assert got[1].error == "HTTP 400: no such thing"
    assert calls.count("bad 1") == 1  # a 400 is not retried


def test_stream_order_and_early_stop() -> None:
    app = fake_openai_app(latency_s=0.01)
    with ServerThread(app) as s:
        adapter = OpenAIAdapter(fast(base_url=s.url, api="chat", concurrency=4))
        requests = [gen(i) for i in range(20)]
        indices = [i for i, _ in adapter.run(requests)]
        assert sorted(indices) == list(range(20))
        it = adapter.run(requests)
        next(it)
        it.close()  # the runner may stop consuming; the worker must not wedge
        assert len(list(adapter.run(requests[:3]))) == 3
        adapter.close()
        adapter.close()


def test_retry_after_header_is_honoured() -> None:
    """One 429 asking for 0.3 s: the retry waits that long (and not the 30 s back-off)."""
    app = fake_openai_app()
    hits: list[float] = []

    @app.middleware("http")
    async def once(request: Request, call_next: Any) -> Any:
        hits.append(time.monotonic())
        if len(hits) == 1:
            return JSONResponse({"error": {"message": "wait", "type": "requests"}},
                                status_code=429, headers={"retry-after": "0.3"})
        return await call_next(request)

    with ServerThread(app) as s:
        adapter = OpenAIAdapter(fast(base_url=s.url, api="chat", backoff_base_s=30.0,
                                     backoff_max_s=30.0))
        (_, r), = adapter.run([gen(0)])
        adapter.close()
    assert r.error is None and len(hits) == 2
    assert 0.3 <= hits[1] - hits[0] < 1.0
