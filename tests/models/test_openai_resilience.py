"""Runs that explain themselves and give up in time: attempts and end-to-end latency per
answer, the circuit breaker against a server that is down or hung (proved by counting what
the server received and how often each request was sent, not by wall-clock upper bounds),
a client that gives up closes its request, finish_reason and the content filter, and
prices for prompt tokens served from the API's prompt cache."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fault_server import FaultInjector, HangApp, ServerThread, fake_openai_app, refused_url, wait_for

from llmbench.models.openai.adapter import OpenAIAdapter, OpenAIConfig
from llmbench.models.openai.limits import CircuitBreaker
from llmbench.models.openai.prices import Price, load_prices, price_for
from llmbench.types import GenerationConfig, Request, Response, Usage


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")


def gen(i: int, text: str = "write") -> Request:
    return Request(sample_id=f"s{i}", kind="generate", prompt=f"{text} {i}",
                   config=GenerationConfig(max_new_tokens=5))


def run_all(url: str, requests: list[Request], **kw: Any) -> tuple[dict[int, Response], float]:
    adapter = OpenAIAdapter(OpenAIConfig(model="m", base_url=url, api="chat", **kw))
    start = time.monotonic()
    try:
        got = dict(adapter.run(requests))
    finally:
        elapsed = time.monotonic() - start
        adapter.close()
    return got, elapsed


# ------------------------------------------------------------------ attempts and latency
def test_attempts_and_end_to_end_latency_are_reported() -> None:
    """Every request fails twice with a 500, then succeeds: 3 attempts, and the end-to-end
    latency holds the back-off that the successful attempt's latency does not."""
    app = FaultInjector(fake_openai_app(), rate=1.0, failures=2, kinds=("500",))
    with ServerThread(app) as s:
        got, _ = run_all(s.url, [gen(i) for i in range(4)], backoff_base_s=0.2, backoff_max_s=0.2)
    for r in got.values():
        assert r.error is None and r.attempts == 3
        assert r.latency_s is not None and r.latency_total_s is not None
        # two back-offs of at least 0.1 s each (equal jitter: half of 0.2 s is fixed)
        assert r.latency_total_s >= r.latency_s + 0.2


def test_a_clean_answer_took_one_attempt() -> None:
    with ServerThread(fake_openai_app()) as s:
        (_, r), = run_all(s.url, [gen(0)]).__getitem__(0).items()
    assert r.attempts == 1 and r.latency_total_s is not None
    assert r.latency_total_s == pytest.approx(r.latency_s, abs=0.05)


# ---------------------------------------------------------------------- circuit breaker
def test_breaker_needs_both_count_and_span() -> None:
    async def go() -> None:
        b = CircuitBreaker(threshold=3, min_span_s=5.0)
        now = time.monotonic()
        assert not b.failure(now, "refused") and not b.failure(now, "refused")
        b.success()  # the server answered: the streak starts again
        assert not any(b.failure(now, "refused") for _ in range(2))
        assert not b.failure(now, "refused")  # 3 in a row, but all within a moment: a blip
        assert b.failure(now - 10.0, "refused")  # one that started 10 s ago: the span is enough
        assert b.is_open and b.opened.is_set() and "refused" in (b.reason or "")
        assert not CircuitBreaker(threshold=0, min_span_s=0).failure(now - 9, "x")  # 0: off

    asyncio.run(go())


def test_refused_server_stops_early_with_defaults() -> None:
    """Nothing listens: with the default settings 200 requests end in about breaker_min_s
    (10 s), not 7 attempts with back-off up to 30 s each; all come back as errors that
    say why, most without being sent again."""
    requests = [gen(i) for i in range(200)]
    got, elapsed = run_all(refused_url(), requests)
    assert len(got) == 200 and all(r.error for r in got.values())
    assert elapsed >= 10.0, elapsed  # the span the breaker waits for: a restart is not a death
    stopped = [r for r in got.values() if "circuit breaker" in (r.error or "")]
    assert len(stopped) >= 150, {r.error for r in got.values()}
    assert "connection refused" in (stopped[0].error or "") and "Rerun to resume" in (stopped[0].error or "")
    assert sum(r.attempts for r in got.values()) < 200 * 7


def test_a_silent_timeout_trips_at_once_a_timeout_amid_answers_does_not() -> None:
    async def go() -> None:
        b = CircuitBreaker(threshold=8, min_span_s=5.0)
        now = time.monotonic()
        b.success()  # an answer came in...
        assert not b.failure(now - 10.0, "timed out", timed_out=True)  # ...while this one waited
        b = CircuitBreaker(threshold=8, min_span_s=5.0)
        assert not b.failure(now - 1.0, "timed out", timed_out=True)  # shorter than the span
        assert b.failure(now - 10.0, "timed out", timed_out=True)  # 10 s of nothing at all
        assert "answered nothing" in (b.reason or "")
        assert not CircuitBreaker(threshold=0, min_span_s=0).failure(now - 9, "x", timed_out=True)

    asyncio.run(go())


@pytest.mark.parametrize("n", [1, 4, 20])
def test_hung_server_costs_one_timeout_whatever_the_sample_count(n: int) -> None:
    """A server that accepts and never answers (timeout_s and breaker_min_s scaled down from the
    defaults, 60 s and 10 s -> 0.5 s and 0.1 s). Issue 28: with 4 samples the run gave up after
    two waves of timeouts (128 s) because 4 timeouts are fewer than the 8 the breaker counted.
    Now every request is sent once, the first wave of timeouts ends the run, and the requests
    still waiting are never sent: the bound is one timeout whatever ``n``. Counted, not timed."""
    app = HangApp()
    with ServerThread(app) as s:
        got, _ = run_all(s.url, [gen(i) for i in range(n)], timeout_s=0.5, breaker_min_s=0.1,
                         backoff_base_s=0.05)
        assert wait_for(lambda: app.disconnects == app.received, timeout=5)
    wave = min(n, 8)  # concurrency 8
    assert app.received == wave and sum(r.attempts for r in got.values()) == wave
    assert all(r.error and "circuit breaker" in r.error for r in got.values())
    assert "timed out after 0.5 s" in (got[0].error or "")


def test_hung_server_costs_one_timeout_at_concurrency_one() -> None:
    """One request at a time: counting 8 (or even 2) timeouts in a row would cost as many
    timeouts; one timeout during which nothing at all came back is enough."""
    app = HangApp()
    with ServerThread(app) as s:
        got, _ = run_all(s.url, [gen(i) for i in range(10)], timeout_s=0.5, concurrency=1,
                         breaker_min_s=0.5, backoff_base_s=0.05)
    assert app.received == 1 and sum(r.attempts for r in got.values()) == 1
    assert all(r.error for r in got.values())


def test_a_timeout_while_the_server_answers_others_is_retried_not_a_breaker() -> None:
    """One prompt hangs, the others are answered meanwhile: the hung one is retried
    ``timeout_retries`` times and fails alone; the breaker stays closed."""
    app = HangApp(fake_openai_app(latency_s=0.05), marker=b"[hang]")
    with ServerThread(app) as s:
        adapter = OpenAIAdapter(OpenAIConfig(model="m", base_url=s.url, api="chat", timeout_s=0.5,
                                             breaker_min_s=0.1, backoff_base_s=0.05, concurrency=2))
        try:
            requests = [gen(0, "[hang]")] + [gen(i) for i in range(1, 40)]
            got = dict(adapter.run(requests))
        finally:
            adapter.close()
    assert not adapter.breaker.is_open
    assert got[0].error and got[0].error.startswith("failed after 2 attempts") and got[0].attempts == 2
    assert all(r.error is None for i, r in got.items() if i)


def test_hung_server_without_breaker_bounded_by_timeout_retries() -> None:
    """Breaker off: each timed-out request is retried only ``timeout_retries`` times (default 1),
    not ``max_retries`` (6) times."""
    app = HangApp()
    with ServerThread(app) as s:
        got, _ = run_all(s.url, [gen(0), gen(1)], timeout_s=0.5, backoff_base_s=0.05,
                         breaker_failures=0)
    assert all(r.error and r.error.startswith("failed after 2 attempts") for r in got.values())
    assert all(r.attempts == 2 for r in got.values())
    assert app.received == 4


# ----------------------------------------------------------------- giving up cancels
def test_a_timed_out_request_is_closed_on_the_server() -> None:
    """Checked while the adapter (and its connection pool) is still open: closing the
    client at the end would close every connection anyway."""
    app = HangApp()
    with ServerThread(app) as s:
        adapter = OpenAIAdapter(OpenAIConfig(model="m", base_url=s.url, api="chat", timeout_s=0.3,
                                             max_retries=0, breaker_failures=0))
        try:
            (_, r), = adapter.run([gen(0)])
            assert r.error and "timed out" in r.error
            assert wait_for(lambda: app.disconnects == 1, timeout=5), (app.received, app.disconnects)
        finally:
            adapter.close()


def test_abandoning_the_stream_closes_requests_in_flight() -> None:
    """The runner stops consuming (Ctrl-C, an exception) while two requests hang: they are
    cancelled and their connections closed, so the server can stop working on them."""
    app = HangApp(fake_openai_app(), marker=b"[hang]")
    with ServerThread(app) as s:
        adapter = OpenAIAdapter(OpenAIConfig(model="m", base_url=s.url, api="chat"))
        it = adapter.run([gen(0, "[hang]"), gen(1), gen(2, "[hang]")])
        i, r = next(it)
        assert i == 1 and r.error is None
        assert wait_for(lambda: app.received == 2, timeout=5)
        assert app.disconnects == 0
        it.close()
        assert wait_for(lambda: app.disconnects == 2, timeout=5), (app.received, app.disconnects)
        adapter.close()


# ------------------------------------------------------------------------ finish_reason
def test_finish_reason_and_the_content_filter() -> None:
    requests = [gen(0), gen(1, "[long]"), gen(2, "[filtered]"), gen(3, "[part-filtered]")]
    with ServerThread(fake_openai_app()) as s:
        got, _ = run_all(s.url, requests)
    assert got[0].finish_reason == "stop" and got[0].text
    assert got[1].finish_reason == "length" and got[1].text and got[1].error is None
    # withheld: an error sample, never an empty answer scored as wrong
    assert got[2].error == "content_filter" and got[2].text is None
    assert got[2].finish_reason == "content_filter" and got[2].attempts == 1  # not retried
    assert got[3].finish_reason == "content_filter" and got[3].text and got[3].error is None


# -------------------------------------------------------------------------------- prices
def test_cached_prompt_tokens_are_priced_as_cached_input() -> None:
    with ServerThread(fake_openai_app(cached_tokens=4)) as s:
        got, _ = run_all(s.url, [gen(0)])
    r = got[0]
    assert r.usage is not None and r.usage.cached_prompt_tokens == 4
    # base_url set and model "m": no price; price the same usage as gpt-4o-mini
    price = price_for("gpt-4o-mini-2024-07-18", load_prices())
    assert price is not None and price.cached_input == 0.075
    expected = ((r.usage.prompt_tokens - 4) * 0.15 + 4 * 0.075 + r.usage.completion_tokens * 0.6) / 1e6
    assert price.cost(r.usage) == pytest.approx(expected)


def test_cached_prompt_tokens_without_a_cached_price_cost_input() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=10, cached_prompt_tokens=600)
    assert Price(input=1.0, output=2.0).cost(usage) == pytest.approx((1000 * 1.0 + 10 * 2.0) / 1e6)
    assert Price(input=1.0, output=2.0, cached_input=0.1).cost(usage) == pytest.approx(
        (400 * 1.0 + 600 * 0.1 + 10 * 2.0) / 1e6)


def test_cost_of_a_run_uses_the_cached_price(tmp_path: Any) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"m": {"input": 1.0, "output": 2.0, "cached_input": 0.5}}')
    with ServerThread(fake_openai_app(cached_tokens=4)) as s:
        got, _ = run_all(s.url, [gen(0)], prices_file=prices)
    u = got[0].usage
    assert u is not None
    assert got[0].cost_usd == pytest.approx(((u.prompt_tokens - 4) * 1.0 + 4 * 0.5
                                             + u.completion_tokens * 2.0) / 1e6)
