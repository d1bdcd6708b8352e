"""What to do after a failed API attempt: the retry policy the OpenAI adapter consults.

Why an object of its own: retry, back-off and circuit breaking used to be one 80-line loop in
the adapter, where every new error kind meant reading all of it. Here each failure is first
*classified* (``RetryPolicy.classify``, inspect_ai's ``should_retry`` in spirit): whether to
try again, what to store if not, how the AIMD limiter should count it and whether the server
answered at all (which the circuit breaker needs). Then the policy alone decides when to stop
(``gives_up``) and how long to wait (``delay``). The adapter only sends, asks and obeys.

Nothing here stores text: ``Verdict.error`` may quote the server and the adapter scrubs it
before anything is kept (``scrub.Scrubber``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import openai
import pydantic

from llmbench.models.openai.limits import Outcome, backoff_delay, parse_retry_after
from llmbench.models.openai.parse import FatalResponse, MalformedResponse

RETRY_STATUS = frozenset({408, 409, 500, 502, 503, 504})
#: Longest server message kept in a stored error (after the key is scrubbed from it).
DETAIL_CHARS = 300
#: Longest stored error of a request that failed after its retries.
ERROR_CHARS = 500

#: The failures ``classify`` knows; anything else is a bug and propagates.
HANDLED: tuple[type[BaseException], ...] = (
    TimeoutError, openai.APIError, MalformedResponse, FatalResponse,
    json.JSONDecodeError, pydantic.ValidationError,
)


@dataclass(frozen=True)
class Verdict:
    """One failed attempt, classified.

    ``retry``: worth sending again. ``error``: what went wrong (unscrubbed), kept to ``limit``
    characters if it becomes the stored error. ``outcome``: how the concurrency limiter counts
    it. ``answered``: the server sent an HTTP answer (the circuit breaker's streak ends) rather
    than nothing at all (refused, reset, timed out). ``wait``: the server's ``Retry-After``.
    """

    retry: bool
    error: str
    outcome: Outcome = "failed"
    answered: bool = True
    wait: float | None = None
    limit: int = ERROR_CHARS
    timeout: bool = False


def detail(err: openai.APIStatusError) -> str:
    """The server's own message (OpenAI's ``error.message``, FastAPI's ``detail``), whole,
    rather than the client's "Error code: 400 - {...}" dump. Not cut here: it may quote
    the key, and only a scrubbed text may be cut."""
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        msg = inner.get("message") or inner.get("detail") if isinstance(inner, dict) else inner
        if msg:
            return str(msg)
    return str(err.message)


def connection_error(err: openai.APIConnectionError) -> str:
    """What went wrong on the wire, in words: the client says only "Connection error." and
    httpx "All connection attempts failed"; the errno at the bottom of the chain says which."""
    cause: BaseException | None = err
    for _ in range(10):  # the chain is short; never follow a cycle
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
        cause = cause.__cause__ or cause.__context__
    return f"connection error: {err.__cause__ or err}"


class RetryPolicy:
    """Classifies failures and decides how often and how long to wait (see the module
    docstring). ``max_retries`` bounds the retries of any failure, ``timeout_retries`` those of
    timeouts (each costs a whole ``timeout_s``)."""

    def __init__(self, *, max_retries: int, timeout_retries: int, timeout_s: float,
                 backoff_base_s: float, backoff_max_s: float,
                 rng: random.Random | None = None) -> None:
        self.max_retries, self.timeout_retries = max_retries, timeout_retries
        self.timeout_s = timeout_s
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self._rng = rng or random.Random()

    def classify(self, err: BaseException) -> Verdict:
        """The verdict on one failed attempt (``err`` is one of ``HANDLED``)."""
        if isinstance(err, TimeoutError | openai.APITimeoutError):
            return Verdict(True, f"timed out after {self.timeout_s:g} s", answered=False,
                           timeout=True)
        if isinstance(err, openai.APIConnectionError):
            return Verdict(True, connection_error(err), answered=False)
        if isinstance(err, openai.RateLimitError):
            if err.code == "insufficient_quota":
                return Verdict(False, f"HTTP 429 insufficient quota: {detail(err)}",
                               limit=DETAIL_CHARS)
            return Verdict(True, "HTTP 429 rate limited", outcome="throttled",
                           wait=parse_retry_after(err.response.headers))
        if isinstance(err, openai.APIStatusError):
            message = f"HTTP {err.status_code}: {detail(err)}"
            if err.status_code not in RETRY_STATUS:
                return Verdict(False, message, limit=DETAIL_CHARS)
            return Verdict(True, message, wait=parse_retry_after(err.response.headers),
                           limit=DETAIL_CHARS)
        if isinstance(err, FatalResponse):
            return Verdict(False, str(err))
        if isinstance(err, MalformedResponse | json.JSONDecodeError | pydantic.ValidationError
                      | openai.APIResponseValidationError):
            what = err if isinstance(err, MalformedResponse) else type(err).__name__
            return Verdict(True, f"malformed response: {what}")
        return Verdict(False, f"{type(err).__name__}: {err}")

    def gives_up(self, attempt: int, timeouts: int) -> bool:
        """After ``attempt`` (0-based) failed, ``timeouts`` of them by timing out."""
        return attempt >= self.max_retries or timeouts > self.timeout_retries

    def delay(self, attempt: int, verdict: Verdict) -> float:
        """Seconds before the next attempt: the server's ``Retry-After`` (plus up to 10% so
        clients told the same do not return together), else exponential back-off with jitter."""
        if verdict.wait is not None:
            return verdict.wait * self._rng.uniform(1.0, 1.1)
        return backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng)
