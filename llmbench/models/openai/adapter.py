"""Models behind an OpenAI-compatible HTTP API (OpenAI itself, vLLM, ``llmbench serve``).

Requests go through the official ``openai`` client (``AsyncOpenAI``) on an event
loop that lives in one worker thread for the adapter's lifetime, so that the
connection pool and the adaptive concurrency limit carry over between ``run``
calls; ``run`` is a plain generator that yields ``(index, Response)`` as each
request completes. The client's own retries are off (``max_retries=0``): ours
know about adaptive concurrency and turn a request that keeps failing into
``Response(error=...)`` — never into a wrong answer.

How each request kind is done (``scoring_method``, recorded with results):

* ``generate`` — chat completions, or legacy completions for the GPT-3 line;
* ``loglikelihood`` — legacy completions with ``echo=True, logprobs=1,
  max_tokens=0``: the server returns the log-probability of every prompt token and
  we sum those at or after the end of the prompt (``text_offset``). Only when the
  server supports it (``echo_logprobs``): the official API does for davinci-002 and
  babbage-002 only; vLLM and ``llmbench serve`` do; llama.cpp's server returns wrong
  values, so leave it off there;
* ``classify`` — the top log-probabilities of the first answer token (see
  ``api_labels`` for the matching rule).

The API key is read from the environment variable named in the config (for a
local server that ignores keys, ``export OPENAI_API_KEY=EMPTY``, as vLLM's docs do)
and kept out of ``identity()``, reprs, logs and error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Awaitable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import openai
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from llmbench.models.base import ModelAdapter, ModelError
from llmbench.models.openai.labels import check_labels, score_labels
from llmbench.models.openai.limits import AdaptiveLimiter, CircuitBreaker, CircuitOpen, Outcome
from llmbench.models.openai.parse import (
    FatalResponse,
    MalformedResponse,
    cut_at_stop,
    echo_logprob,
    to_usage,
)
from llmbench.models.openai.prices import cost_usd, load_prices, price_for
from llmbench.models.openai.retry import (
    DETAIL_CHARS,
    ERROR_CHARS,
    HANDLED,
    RetryPolicy,
    Verdict,
)
from llmbench.models.openai.scrub import Scrubber, ScrubLogs, redact_url, url_secrets
from llmbench.types import Request, RequestKind, Response

log = logging.getLogger(__name__)

OFFICIAL_BASE_URL = "https://api.openai.com/v1"
# The GPT-3 line only has the legacy completions endpoint ("auto" picks it for them).
COMPLETION_MODELS = frozenset({"davinci-002", "babbage-002", "gpt-3.5-turbo-instruct"})
# Official models whose completions endpoint returns prompt log-probabilities with echo.
ECHO_MODELS = frozenset({"davinci-002", "babbage-002"})
# Official API limits on requested log-probabilities (local servers allow more).
OFFICIAL_MAX_TOP_LOGPROBS = {"chat": 20, "completions": 5}
_T = TypeVar("_T")
#: Longest stored ``finish_reason`` (OpenAI's are single words; anything longer is a server's).
FINISH_CHARS = 40


class OpenAIConfig(BaseModel):
    """How to reach one model. ``base_url=None`` is the official OpenAI API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    base_url: str | None = None
    api: Literal["chat", "completions", "auto"] = "auto"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(default=8, ge=1)
    max_retries: int = Field(default=6, ge=0)
    # Timeouts (see README, "API models"): an answer may take timeout_s (long generations,
    # busy servers; raise it for reasoning models), a connection only connect_timeout_s. A
    # timed-out request is retried at most timeout_retries times — each retry of a hung
    # server costs a whole timeout_s — and the circuit breaker stops the run after
    # breaker_failures attempts in a row (over at least breaker_min_s) got no answer at all
    # (refused, reset, timed out) — or as many as concurrency allows, if fewer; 0 turns it
    # off. With these defaults a server that never answers costs one or two timeout_s per
    # run, not max_retries of them per sample.
    timeout_s: float = Field(default=60.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    timeout_retries: int = Field(default=1, ge=0)
    breaker_failures: int = Field(default=8, ge=0)
    breaker_min_s: float = Field(default=10.0, ge=0)
    # Whether the completions endpoint returns prompt log-probabilities with echo.
    # None: yes for davinci-002 / babbage-002 on the official API, otherwise no —
    # a server that silently gets it wrong would give wrong scores, so opt in.
    echo_logprobs: bool | None = None
    top_logprobs: int = Field(default=20, ge=1)
    prices_file: Path | None = None
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)

    def resolved_api(self) -> Literal["chat", "completions"]:
        if self.api != "auto":
            return self.api
        return "completions" if self.model in COMPLETION_MODELS else "chat"

    def resolved_echo(self) -> bool:
        if self.echo_logprobs is not None:
            return self.echo_logprobs
        return self.base_url is None and self.model in ECHO_MODELS


class _Secret:
    """Holds the key so that no repr, traceback local or log line shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"


class OpenAIAdapter(ModelAdapter):
    """``ModelAdapter`` over an OpenAI-compatible API (see the module docstring)."""

    def __init__(self, config: OpenAIConfig) -> None:
        self.config = config
        key = os.environ.get(config.api_key_env, "")
        if not key:
            raise ModelError(f"{config.api_key_env} is not set — export it or set api_key_env "
                             "in the model config")
        self._key = _Secret(key)
        # The key and the base URL's credentials (``user:PASS@``, ``?api-key=``) are scrubbed
        # from every string the server sends back, and from the HTTP stack's log records.
        self._scrubber = Scrubber([key, *url_secrets(config.base_url or "")])
        self._log_filter = ScrubLogs(self._scrubber)
        self._log_filter.install()
        self.name = config.model
        self.api = config.resolved_api()
        self.echo = config.resolved_echo()
        kinds: set[RequestKind] = {"generate", "classify"}
        self._methods: dict[RequestKind, str] = {
            "generate": self.api,
            "classify": "first-token-top-logprobs"
            + ("" if self.api == "chat" else "-completions"),
        }
        if self.echo:
            kinds.add("loglikelihood")
            self._methods["loglikelihood"] = "completions-echo"
        self.supports: frozenset[RequestKind] = frozenset(kinds)
        self._price = price_for(config.model, load_prices(config.prices_file))
        self.limiter = AdaptiveLimiter(config.concurrency)
        # One breaker for the adapter's lifetime: once the server is found down, the
        # following chunks and tasks of the same plan fail fast too (a rerun resumes them).
        # It needs no more failures than can be in flight at once (but two, not one): with
        # concurrency 1 and a hung server, 8 sequential timeouts would cost 8 minutes.
        threshold = min(config.breaker_failures, max(2, config.concurrency))
        self.breaker = CircuitBreaker(threshold, config.breaker_min_s)
        self.policy = RetryPolicy(
            max_retries=config.max_retries, timeout_retries=config.timeout_retries,
            timeout_s=config.timeout_s, backoff_base_s=config.backoff_base_s,
            backoff_max_s=config.backoff_max_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: openai.AsyncOpenAI | None = None

    def __repr__(self) -> str:
        return (f"OpenAIAdapter(model={self.config.model!r}, base_url={self._base_url()!r}, "
                f"api={self.api!r})")

    def scoring_method(self, kind: RequestKind) -> str:
        return self._methods[kind]

    def identity(self) -> dict[str, Any]:
        # top_logprobs decides which labels classify can see, so it belongs here too.
        return {"backend": "openai", "model": self.config.model,
                "base_url": self._base_url(), "api": self.api,
                "top_logprobs": self.config.top_logprobs}

    def _base_url(self) -> str | None:
        """The URL as stored with every run: some gateways take the key in the query string
        (``?api-key=...``), and identity() goes to the store, exports and the leaderboard."""
        url = self.config.base_url
        return None if url is None else self._scrubber.scrub_always(redact_url(url))

    def _scrub(self, text: str, limit: int = ERROR_CHARS) -> str:
        """An error text as stored: the key removed in every form, *then* cut to ``limit``."""
        return self._scrubber.scrub_error(text, limit)

    def _clean(self, text: str) -> str:
        """An answer as stored and cached: every form of the key removed, nothing cut."""
        return self._scrubber.scrub(text)

    def _finish(self, reason: object) -> str | None:
        """A ``finish_reason`` as stored (run usage, sample stats, the cache): any string a
        server sends, so scrubbed like an error and cut to a label's length."""
        return None if reason is None else self._scrub(str(reason), FINISH_CHARS)

    # ------------------------------------------------------------------ driving
    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        """Validate everything up front (a bad request raises ``ModelError`` before
        anything is sent), then stream results in completion order."""
        for r in requests:
            self._validate(r)
        return self._stream(list(requests))

    def _validate(self, r: Request) -> None:
        if r.kind not in self.supports:
            hint = (" — set echo_logprobs: true if the server returns prompt log-probabilities "
                    "with echo (vLLM, llmbench serve)" if r.kind == "loglikelihood" else "")
            raise ModelError(f"{self.name} cannot answer {r.kind} requests{hint}")
        chat_prompt = not isinstance(r.prompt, str)
        if r.kind == "loglikelihood" and chat_prompt:
            raise ModelError("loglikelihood through the completions endpoint needs a plain-text "
                             "prompt, not chat messages")
        if r.kind == "loglikelihood" and not r.continuations:
            raise ModelError("loglikelihood requests need request.continuations")
        if self.api == "completions" and chat_prompt:
            raise ModelError(f"{self.name} uses the completions API, which takes plain-text "
                             "prompts; set api: chat or use a text prompt template")
        if r.kind == "classify":
            check_labels(r.continuations or ())

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="llmbench-openai",
                                      daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    def _stream(self, requests: list[Request]) -> Iterator[tuple[int, Response]]:
        results: queue.Queue[tuple[int, Response]] = queue.Queue()
        future = asyncio.run_coroutine_threadsafe(self._drive(requests, results),
                                                  self._ensure_loop())
        try:
            for _ in requests:
                while True:
                    try:
                        item = results.get(timeout=0.2)
                        break
                    except queue.Empty:
                        if future.done():
                            future.result()  # re-raises a crash of the worker
                            if results.empty():
                                raise RuntimeError("the request worker stopped early") from None
                yield item
        finally:
            if not future.done():
                future.cancel()

    async def _drive(self, requests: list[Request], out: queue.Queue[tuple[int, Response]]) -> None:
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                api_key=self._key.get(), base_url=self.config.base_url or OFFICIAL_BASE_URL,
                timeout=openai.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s),
                max_retries=0,
            )
        client = self._client

        async def one(i: int, r: Request) -> None:
            out.put((i, await self._attempts(client, r)))

        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))

    async def _until_open(self, aw: Awaitable[_T]) -> _T:
        """``await aw`` unless the circuit breaker opens first: then ``aw`` is cancelled (an
        HTTP request in flight is closed, so the server can stop working on it) and
        ``CircuitOpen`` is raised. A result that is ready is returned even if both happen."""
        task = asyncio.ensure_future(aw)
        opened = asyncio.ensure_future(self.breaker.opened.wait())
        try:
            await asyncio.wait({task, opened}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            raise CircuitOpen
        return task.result()

    def _breaker_error(self) -> Response:
        where = self._base_url() or OFFICIAL_BASE_URL
        return Response(error=self._scrub(
            f"not answered: the circuit breaker stopped the run because {self.breaker.reason} — "
            f"is the server at {where} up? Rerun to resume", ERROR_CHARS), attempts=0)

    async def _attempts(self, client: openai.AsyncOpenAI, r: Request) -> Response:
        """Send ``r`` until it succeeds, the retry policy gives up or the circuit breaker
        opens. The answer carries how many times it was sent and the time from the first send
        (after the concurrency wait) to the answer, back-off included."""
        sent = timeouts = 0
        first_send: float | None = None

        def done(resp: Response) -> Response:
            total = None if first_send is None else time.perf_counter() - first_send
            return resp.model_copy(update={"attempts": sent, "latency_total_s": total})

        verdict: Verdict | None = None
        for attempt in range(self.policy.max_retries + 1):
            start = time.perf_counter()
            first_send = start if first_send is None else first_send
            was_sent, outcome = await self._attempt(client, r)
            sent += was_sent
            if outcome is None:
                return done(self._breaker_error())
            if isinstance(outcome, Response):
                return done(outcome.model_copy(update={
                    "latency_s": time.perf_counter() - start,
                    "cost_usd": cost_usd(outcome.usage, self._price)}))
            verdict = outcome
            timeouts += verdict.timeout
            if not verdict.retry:
                return done(Response(error=self._scrub(verdict.error, verdict.limit)))
            if self.policy.gives_up(attempt, timeouts):
                break
            delay = self.policy.delay(attempt, verdict)
            log.debug("%s: retrying in %.2f s after %s (attempt %d)", self.name, delay,
                      self._scrub(verdict.error), attempt + 1)
            try:
                await self._until_open(asyncio.sleep(delay))
            except CircuitOpen:
                return done(self._breaker_error())
        if self.breaker.is_open:
            return done(self._breaker_error())
        last = self._scrub(verdict.error, DETAIL_CHARS) if verdict else "no attempt"
        return done(Response(error=self._scrub(f"failed after {sent} attempts; last error: {last}",
                                               ERROR_CHARS)))

    async def _attempt(self, client: openai.AsyncOpenAI,
                       r: Request) -> tuple[bool, Response | Verdict | None]:
        """One send under a concurrency slot: whether it was sent, and the answer, the
        policy's verdict on the failure, or ``None`` when the circuit breaker is open (before
        the send, or while it was in flight: then it was cancelled)."""
        # Not raced against the breaker: an acquired slot must always be released. When the
        # breaker opens, requests in flight are cancelled, so their slots free up at once.
        epoch = await self.limiter.acquire()
        outcome: Outcome = "failed"
        try:
            if self.breaker.is_open:
                return False, None
            started = time.monotonic()
            try:
                resp = await self._until_open(asyncio.wait_for(self._call(client, r),
                                                               timeout=self.config.timeout_s))
            except CircuitOpen:
                return True, None
            except HANDLED as err:
                verdict = self.policy.classify(err)
                outcome = verdict.outcome
                if verdict.answered:
                    self.breaker.success()
                else:  # before the slot is released, so no waiter starts on a tripped breaker
                    self.breaker.failure(started, verdict.error, timed_out=verdict.timeout)
                return True, verdict
            outcome = "ok"
            self.breaker.success()
            return True, resp
        finally:
            await self.limiter.release(epoch, outcome)

    # ----------------------------------------------------------------- requests
    async def _create(self, endpoint: Any, **kwargs: Any) -> Any:
        try:
            out = await endpoint.create(model=self.config.model, **kwargs)
        except (json.JSONDecodeError, pydantic.ValidationError,
                openai.APIResponseValidationError) as err:
            raise MalformedResponse(type(err).__name__) from None
        if isinstance(out, str) or not getattr(out, "choices", None):
            raise MalformedResponse("no choices in the response")
        return out

    def _max_tokens(self, n: int) -> dict[str, int]:
        # The official chat API wants max_completion_tokens (o-series refuse max_tokens);
        # compatible servers widely understand only max_tokens.
        if self.api == "chat" and self.config.base_url is None:
            return {"max_completion_tokens": n}
        return {"max_tokens": n}

    def _top_n(self) -> int:
        n = self.config.top_logprobs
        return min(n, OFFICIAL_MAX_TOP_LOGPROBS[self.api]) if self.config.base_url is None else n

    @staticmethod
    def _messages(r: Request) -> list[dict[str, str]]:
        if isinstance(r.prompt, str):
            return [{"role": "user", "content": r.prompt}]
        return [{"role": m.role, "content": m.content} for m in r.prompt]

    async def _call(self, client: openai.AsyncOpenAI, r: Request) -> Response:
        try:
            if r.kind == "generate":
                return await self._generate(client, r)
            if r.kind == "classify":
                return await self._classify(client, r)
            return await self._loglikelihood(client, r)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as err:
            # A response that parsed as JSON but lacks what we asked for.
            raise MalformedResponse(f"{type(err).__name__}: {err}") from None

    async def _generate(self, client: openai.AsyncOpenAI, r: Request) -> Response:
        g = r.config
        common: dict[str, Any] = {"temperature": g.temperature, "top_p": g.top_p, "seed": g.seed,
                                  "n": 1, **self._max_tokens(g.max_new_tokens)}
        if g.stop:
            common["stop"] = list(g.stop[:4])
        if self.api == "chat":
            resp = await self._create(client.chat.completions, messages=self._messages(r),
                                      **common)
            text = resp.choices[0].message.content or ""
        else:
            resp = await self._create(client.completions, prompt=r.prompt, **common)
            text = resp.choices[0].text or ""
        finish = self._finish(resp.choices[0].finish_reason)
        if finish == "content_filter" and not text:
            # Withheld, not answered: scoring "" as a wrong answer would blame the model.
            return Response(error="content_filter", finish_reason=finish,
                            usage=to_usage(resp.usage))
        return Response(text=self._clean(cut_at_stop(text, g.stop)), usage=to_usage(resp.usage),
                        finish_reason=finish)

    async def _classify(self, client: openai.AsyncOpenAI, r: Request) -> Response:
        labels = r.continuations or ()
        common: dict[str, Any] = {"temperature": 0.0, **self._max_tokens(1)}
        if self.api == "chat":
            resp = await self._create(client.chat.completions, messages=self._messages(r),
                                      logprobs=True, top_logprobs=self._top_n(), **common)
            content = resp.choices[0].logprobs.content
            if not content:
                raise FatalResponse("the server returned no log-probabilities for the first token")
            first = content[0]
            tops = [(t.token, t.logprob) for t in first.top_logprobs] or [(first.token,
                                                                           first.logprob)]
            token = first.token
        else:
            resp = await self._create(client.completions, prompt=r.prompt,
                                      logprobs=self._top_n(), **common)
            lp = resp.choices[0].logprobs
            if lp is None or not lp.top_logprobs or lp.top_logprobs[0] is None:
                raise FatalResponse("the server returned no log-probabilities for the first token")
            tops = list(lp.top_logprobs[0].items())
            token = lp.tokens[0] if lp.tokens else ""
        return Response(text=self._clean(token), label_scores=score_labels(labels, tops),
                        usage=to_usage(resp.usage))

    async def _loglikelihood(self, client: openai.AsyncOpenAI, r: Request) -> Response:
        prompt = r.prompt
        assert isinstance(prompt, str) and r.continuations
        resp = await self._create(client.completions,
                                  prompt=[prompt + c for c in r.continuations],
                                  echo=True, logprobs=1, max_tokens=0, temperature=0.0)
        choices = sorted(resp.choices, key=lambda c: c.index)
        if len(choices) != len(r.continuations):
            raise MalformedResponse(f"{len(choices)} choices for {len(r.continuations)} prompts")
        scored = [echo_logprob(prompt, cont, choice.logprobs)
                  for cont, choice in zip(r.continuations, choices, strict=True)]
        greedy = tuple(g for _, g in scored if g is not None)
        return Response(
            logprobs=tuple(lp for lp, _ in scored),
            greedy_match=greedy if len(greedy) == len(scored) else None,
            usage=to_usage(resp.usage),
        )

    # ------------------------------------------------------------------ cleanup
    def close(self) -> None:
        """Close the HTTP client and stop the worker loop; safe to call twice."""
        self._log_filter.remove()
        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._client is not None:
            client, self._client = self._client, None
            try:
                asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout=5)
            except Exception:  # closing is best effort; the loop goes away next
                log.debug("closing the HTTP client failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        loop.close()
