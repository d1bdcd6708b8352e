"""Test helpers for the API adapter: a uvicorn server in a thread, a fault-injecting
ASGI middleware, a deterministic fake OpenAI-compatible app (no model), a server that
accepts connections and never answers (``hang_app``, which notes every client that gives
up) and an address where nothing listens (``refused_url``).

The fake app answers from a hash of the request, so two runs of the same requests
must give byte-identical results — which is what lets a fault-injected run be
compared with a clean one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class ServerThread:
    """``with ServerThread(app) as s: s.url`` — uvicorn on a free 127.0.0.1 port."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        # log_config=None: uvicorn's default dictConfig would close every existing logging
        # handler — including absl's (imported with rouge_score), whose stream is pytest's
        # capture file, which then breaks every later test in the session.
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1,
                                lifespan="on", timeout_keep_alive=5, log_config=None)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()


def _h(*parts: object) -> int:
    return int(hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12], 16)


class FaultInjector:
    """ASGI middleware failing a fixed share of distinct POST bodies.

    A body is chosen with probability ``rate`` (by its hash, so the same requests are
    chosen in every run) and given one fault kind, round-robin over ``kinds``:
    ``429`` (with ``Retry-After``), ``500``, ``timeout`` (hangs ``hang_s``) or
    ``malformed`` (200 with truncated JSON). A chosen body fails its first
    ``failures`` attempts, or every attempt when ``persistent``.
    """

    def __init__(self, app: Any, *, rate: float = 0.3, failures: int = 2,
                 persistent: bool = False, kinds: Sequence[str] = ("429", "500", "timeout",
                                                                   "malformed"),
                 retry_after: str = "0.05", hang_s: float = 3.0) -> None:
        self.app, self.rate, self.failures, self.persistent = app, rate, failures, persistent
        self.kinds, self.retry_after, self.hang_s = tuple(kinds), retry_after, hang_s
        self.attempts: Counter[str] = Counter()
        self.assigned: dict[str, str | None] = {}
        self.injected: Counter[str] = Counter()

    def _fault_for(self, body: bytes) -> str | None:
        key = hashlib.sha256(body).hexdigest()
        if key not in self.assigned:
            chosen = int(key[:8], 16) / 16**8 < self.rate
            n_chosen = sum(v is not None for v in self.assigned.values())
            self.assigned[key] = self.kinds[n_chosen % len(self.kinds)] if chosen else None
        n = self.attempts[key]
        self.attempts[key] += 1
        kind = self.assigned[key]
        if kind is None or (not self.persistent and n >= self.failures):
            return None
        self.injected[kind] += 1
        return kind

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        fault = self._fault_for(body)
        if fault is None:
            sent = False

            async def replay() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return await receive()
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        if fault == "timeout":
            await asyncio.sleep(self.hang_s)
        status, headers, payload = {
            "429": (429, [(b"retry-after", self.retry_after.encode())],
                    b'{"error": {"message": "Rate limit reached", "type": "requests"}}'),
            "500": (500, [], b'{"error": {"message": "boom", "type": "server_error"}}'),
            "timeout": (504, [], b'{"error": {"message": "late", "type": "server_error"}}'),
            "malformed": (200, [], b'{"id": "cmpl-1", "object": "text_completion", "choices": [{'),
        }[fault]
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), *headers]})
        await send({"type": "http.response.body", "body": payload})


def refused_url() -> str:
    """A 127.0.0.1 URL on a port that was free a moment ago and has no listener now, so a
    connection is refused at once: the "server is down" case."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class HangApp:
    """ASGI app that reads each POST and never answers: the "server accepts connections and
    hangs" case. It waits for the client to go away and counts that (``disconnects``), which
    is how a real server learns it can stop working on a request. With ``inner``, only
    bodies that contain ``marker`` hang; the others go to ``inner``."""

    def __init__(self, inner: Any | None = None, marker: bytes = b"") -> None:
        self.inner, self.marker = inner, marker
        self.received = 0  # requests that hung
        self.disconnects = 0  # of those, how many the client closed
        self.first_request_at: float | None = None  # time.time() of the first POST

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        if self.first_request_at is None:
            self.first_request_at = time.time()
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if self.inner is not None and self.marker not in body:
            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            await self.inner(scope, replay, send)
            return
        self.received += 1
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnects += 1


def wait_for(cond: Any, timeout: float = 10.0) -> bool:
    """Poll ``cond()`` until true or ``timeout``; returns the last value."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(cond())


def fake_openai_app(*, latency_s: float = 0.0, cached_tokens: int = 0) -> FastAPI:
    """Deterministic OpenAI-shaped answers: one "token" per character, values from hashes.

    Chat generations end with ``finish_reason: "stop"`` unless the prompt holds a marker:
    ``[long]`` gives ``length``, ``[filtered]`` ``content_filter`` with no content,
    ``[part-filtered]`` ``content_filter`` with some. ``cached_tokens`` > 0 reports that
    many prompt tokens as served from the prompt cache (``prompt_tokens_details``).
    """
    app = FastAPI()
    app.state.in_flight = 0
    app.state.max_in_flight = 0

    def lp(*parts: object) -> float:
        return -round((_h(*parts) % 10_000) / 1000.0, 3) - 0.001

    def completion_logprobs(text: str, first_none: bool) -> dict[str, Any]:
        tokens = list(text)
        vals = [None if (first_none and i == 0) else lp(text[:i], t) for i, t in enumerate(tokens)]
        tops = [None if v is None else {t: v, "#": v - 0.5} for t, v in zip(tokens, vals,
                                                                             strict=True)]
        return {"tokens": tokens, "token_logprobs": vals, "text_offset": list(range(len(text))),
                "top_logprobs": tops}

    async def pause() -> None:
        app.state.in_flight += 1
        app.state.max_in_flight = max(app.state.max_in_flight, app.state.in_flight)
        try:
            await asyncio.sleep(latency_s)
        finally:
            app.state.in_flight -= 1

    @app.post("/v1/completions")
    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        await pause()
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices = []
        for i, prompt in enumerate(prompts):
            n = body.get("max_tokens", 16)
            text = "".join("abcdefgh"[_h(prompt, k) % 8] for k in range(min(n, 6)))
            full = prompt + text if body.get("echo") else text
            logprobs = None
            if body.get("logprobs") is not None:
                logprobs = completion_logprobs(full, bool(body.get("echo")))
            choices.append({"index": i, "text": full, "logprobs": logprobs,
                            "finish_reason": "length"})
        usage = {"prompt_tokens": sum(len(p) for p in prompts), "completion_tokens": 6,
                 "total_tokens": 0}
        return JSONResponse({"id": "cmpl-1", "object": "text_completion", "created": 0,
                             "model": body["model"], "choices": choices, "usage": usage})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        await pause()
        key = [m["content"] for m in body["messages"]]
        text: str | None = " ".join(["positive", "negative", "yes", "no"][_h(key, k) % 4]
                                    for k in range(3))
        joined = " ".join(key)
        finish = "stop"
        if "[long]" in joined:
            finish = "length"
        elif "[filtered]" in joined:
            text, finish = None, "content_filter"
        elif "[part-filtered]" in joined:
            finish = "content_filter"
        logprobs = None
        if body.get("logprobs"):
            words = ["Pos", " negative", "neutral", "maybe"]
            tops = [{"token": w, "logprob": lp(key, w), "bytes": None} for w in words]
            tops.sort(key=lambda t: -t["logprob"])
            logprobs = {"content": [{"token": tops[0]["token"], "logprob": tops[0]["logprob"],
                                     "bytes": None, "top_logprobs": tops}]}
            text = tops[0]["token"]
        return JSONResponse({
            "id": "chat-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": finish, "logprobs": logprobs,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": sum(len(k) for k in key), "completion_tokens": 3,
                      "total_tokens": 0,
                      **({"prompt_tokens_details": {"cached_tokens": cached_tokens}}
                         if cached_tokens else {})},
        })

    return app
