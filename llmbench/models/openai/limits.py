"""Flow control for API clients: an AIMD concurrency limit and retry back-off.

Why AIMD rather than a fixed sleep on 429: a rate limit is a shared, moving
capacity. Halving the number of requests in flight on each throttle and adding
one slot per window of successes (TCP's congestion control) converges on what the
server will take and recovers by itself when the pressure goes away, whereas a
fixed sleep either wastes time or keeps hammering a saturated server.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import deque
from collections.abc import Mapping
from typing import Literal

Outcome = Literal["ok", "throttled", "failed"]

# A server that asks for a longer pause than this is treated as asking for this much,
# so that one odd header cannot stall a run for hours.
RETRY_AFTER_CAP_S = 120.0
TRACE_LEN = 4096


class AdaptiveLimiter:
    """A concurrency limit between 1 and ``max_limit`` that adapts to throttling.

    * each ``throttled`` outcome halves the limit (minimum 1) — but only once per
      "generation": requests that were already in flight when the limit was cut
      carry the old epoch, and their 429s are the same congestion event, so a
      burst of 32 concurrent 429s halves once, not 32 times;
    * each ``ok`` outcome adds ``1 / limit``, i.e. one slot per window of successes.

    Must be used from one event loop (the adapter's worker loop).
    """

    def __init__(self, max_limit: int) -> None:
        if max_limit < 1:
            raise ValueError("max_limit must be >= 1")
        self.max_limit = max_limit
        self.limit = float(max_limit)
        self.in_flight = 0
        self._epoch = 0
        self._cond: asyncio.Condition | None = None
        # (monotonic time, new limit) on the last TRACE_LEN changes, for tests and benchmarks;
        # bounded, as the adapter lives for a whole plan.
        self.trace: deque[tuple[float, float]] = deque([(time.monotonic(), self.limit)],
                                                       maxlen=TRACE_LEN)

    @property
    def slots(self) -> int:
        return max(1, int(self.limit))

    async def acquire(self) -> int:
        """Wait for a free slot; returns the epoch to hand back to ``release``."""
        if self._cond is None:
            self._cond = asyncio.Condition()
        async with self._cond:
            try:
                await self._cond.wait_for(lambda: self.in_flight < self.slots)
            except asyncio.CancelledError:
                # A waiter cancelled right after being notified would swallow the
                # wake-up (Python < 3.13); pass it on so no other waiter is stranded.
                if (free := self.slots - self.in_flight) > 0:
                    self._cond.notify(free)
                raise
            self.in_flight += 1
            return self._epoch

    async def release(self, epoch: int, outcome: Outcome) -> None:
        assert self._cond is not None, "release() without acquire()"
        async with self._cond:
            self.in_flight -= 1
            old = self.limit
            if outcome == "ok":
                self.limit = min(float(self.max_limit), self.limit + 1.0 / self.limit)
            elif outcome == "throttled" and epoch == self._epoch:
                self.limit = max(1.0, self.limit / 2.0)
                self._epoch += 1
            if self.limit != old:
                self.trace.append((time.monotonic(), self.limit))
            # Wake only as many waiters as there are free slots: with a thousand queued
            # requests, notify_all would wake all of them on every completion.
            if (free := self.slots - self.in_flight) > 0:
                self._cond.notify(free)


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential back-off with "equal jitter": half fixed, half random.

    The jitter spreads out clients that failed together so they do not retry in
    lockstep; keeping half of the delay fixed guarantees some pause.
    """
    ceiling = min(max_s, base_s * (2.0**attempt))
    return ceiling / 2.0 + rng.uniform(0.0, ceiling / 2.0)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI) or ``Retry-After`` (seconds or
    an HTTP date); ``None`` when absent or unreadable. Capped at ``RETRY_AFTER_CAP_S``."""
    if not headers:
        return None
    value: float | None = None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = None
    if value is None and (raw := headers.get("retry-after")) is not None:
        try:
            value = float(raw)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw)
                value = when.timestamp() - time.time()
            except (TypeError, ValueError):
                value = None
    if value is None or value != value:  # NaN
        return None
    return min(max(value, 0.0), RETRY_AFTER_CAP_S)


class CircuitOpen(Exception):
    """The breaker has tripped: the request is not sent (see ``CircuitBreaker``)."""


class CircuitBreaker:
    """Stops a run early when the server is down or never answers.

    Why: retries are right for a server that fails now and then, and ruinous for one that
    is gone — with 7 attempts of 60 s each a hung server cost 8 minutes for 8 samples and
    hours for a real task. The breaker counts *attempts* (across all requests of the run)
    that could not reach an answer at all: connection refused or reset, and timeouts. Any
    answer from the server, even an HTTP 500, resets the count: the server is there.

    It trips after ``threshold`` such failures in a row that together span at least
    ``min_span_s`` seconds (from the start of the first failed attempt): a single wave of
    concurrent refusals during a two-second restart does not stop a nightly run, while a
    dead server stops it after about ``min_span_s``. It also trips on a timed-out attempt
    during whose whole wait the server answered nothing at all (``failure(timed_out=True)``;
    when that wait spans ``min_span_s`` too, as the default 60 s timeout does 10 s):
    a hung server then stops the run after one timeout whatever the number of samples or the
    concurrency (counting alone needed ``threshold`` timeouts, i.e. two waves of them when
    fewer requests than that were in flight: 128 s for 4 samples against the 60 s promised).
    Once tripped it stays open for the adapter's lifetime; ``opened`` is set so that
    waiting requests and back-off sleeps end at once.

    Must be used from one event loop (the adapter's worker loop).
    """

    def __init__(self, threshold: int, min_span_s: float) -> None:
        self.threshold = threshold  # 0 disables the breaker
        self.min_span_s = min_span_s
        self.failures = 0
        self.reason: str | None = None  # why it tripped; None while closed
        self._streak_start: float | None = None
        self._last_answer: float | None = None  # time.monotonic() of the last answer
        self._opened: asyncio.Event | None = None

    @property
    def opened(self) -> asyncio.Event:
        if self._opened is None:
            self._opened = asyncio.Event()
        return self._opened

    @property
    def is_open(self) -> bool:
        return self.reason is not None

    def success(self) -> None:
        """The server answered (whatever the status): the streak is over."""
        self.failures = 0
        self._streak_start = None
        self._last_answer = time.monotonic()

    def failure(self, started: float, what: str, *, timed_out: bool = False) -> bool:
        """An attempt started at ``started`` (``time.monotonic()``) got no answer because of
        ``what`` (``timed_out``: it waited its whole timeout); returns whether the breaker is
        (now) open."""
        if self.is_open:
            return True
        self.failures += 1
        if self._streak_start is None or started < self._streak_start:
            self._streak_start = started
        span = time.monotonic() - self._streak_start
        silent = timed_out and (self._last_answer is None or self._last_answer < started)
        if self.threshold and silent and span >= self.min_span_s:
            self.reason = (f"the server answered nothing for {time.monotonic() - started:.0f} s "
                           f"(last: {what})")
        elif self.threshold and self.failures >= self.threshold and span >= self.min_span_s:
            self.reason = (f"{self.failures} attempts in a row over {span:.0f} s got no answer "
                           f"(last: {what})")
        if self.reason is not None:
            self.opened.set()
        return self.is_open
