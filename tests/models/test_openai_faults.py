"""Fault injection: 30% of requests get a 429 (with Retry-After), a 500, a timeout or
malformed JSON. Transient faults must not change any result; faults that never stop
must come back as ``Response(error=...)`` in bounded time, never as a wrong answer."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fault_server import FaultInjector, ServerThread, fake_openai_app

from llmbench.models.openai.adapter import OpenAIAdapter, OpenAIConfig
from llmbench.types import ChatMessage, GenerationConfig, Request, Response

KINDS = ("429", "500", "timeout", "malformed")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")


def requests_mix(n: int = 16) -> list[Request]:
    out = []
    for i in range(n):
        out.append(Request(sample_id=f"g{i}", kind="generate", prompt=f"write {i}",
                           config=GenerationConfig(max_new_tokens=5)))
        out.append(Request(sample_id=f"l{i}", kind="loglikelihood", prompt=f"review {i}. Label:",
                           continuations=(" positive", " negative")))
        out.append(Request(sample_id=f"c{i}", kind="classify",
                           prompt=(ChatMessage(role="user", content=f"text {i}"),),
                           continuations=("positive", "negative", "neutral")))
    return out


def config(url: str, **kw: Any) -> OpenAIConfig:
    return OpenAIConfig(model="m", base_url=url, api="chat", echo_logprobs=True, timeout_s=0.3,
                        backoff_base_s=0.01, backoff_max_s=0.05, **kw)


def answers(results: dict[int, Response]) -> dict[int, Response]:
    """Everything but timing and the number of attempts."""
    return {i: r.model_copy(update={"latency_s": None, "latency_total_s": None, "attempts": 1})
            for i, r in results.items()}


def run(app: Any, requests: list[Request], **kw: Any) -> tuple[dict[int, Response], float]:
    with ServerThread(app) as s:
        adapter = OpenAIAdapter(config(s.url, **kw))
        start = time.monotonic()
        got = dict(adapter.run(requests))
        elapsed = time.monotonic() - start
        adapter.close()
    return got, elapsed


@pytest.fixture(scope="module")
def clean() -> dict[int, Response]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", "EMPTY")
        got, _ = run(fake_openai_app(), requests_mix())
    assert all(r.error is None for r in got.values())
    return answers(got)


def test_transient_faults_change_nothing(clean: dict[int, Response]) -> None:
    app = FaultInjector(fake_openai_app(), rate=0.3, failures=2, kinds=KINDS, hang_s=1.0)
    got, _ = run(app, requests_mix(), max_retries=4, timeout_retries=4)
    assert set(app.injected) == set(KINDS), app.injected  # every fault kind was exercised
    chosen = sum(v is not None for v in app.assigned.values())
    assert 0.15 * len(app.assigned) <= chosen <= 0.45 * len(app.assigned)
    assert answers(got) == clean


def test_persistent_faults_become_errors_in_bounded_time(clean: dict[int, Response]) -> None:
    app = FaultInjector(fake_openai_app(), rate=0.3, persistent=True, kinds=KINDS, hang_s=1.0)
    got, elapsed = run(app, requests_mix(), max_retries=2, timeout_retries=2)
    failed = {i for i, r in got.items() if r.error is not None}
    assert len(got) == len(clean)
    assert failed and len(failed) < len(got)
    for i, r in got.items():
        if i in failed:
            assert r.error.startswith("failed after 3 attempts")  # type: ignore[union-attr]
            assert r.text is None and r.logprobs is None and r.label_scores is None
        else:
            assert answers({i: r})[i] == clean[i]
    errors = " ".join(got[i].error or "" for i in failed)
    for what in ("HTTP 429", "HTTP 500", "timed out", "malformed response"):
        assert what in errors
    # 3 attempts x 0.3 s timeout + back-off is the worst single request; allow slack
    # for 2 CPU cores, but a hang would blow far past this.
    assert elapsed < 10
