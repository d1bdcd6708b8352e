"""ASGI middleware of ``llmbench serve``: a cap on the request body, the last-resort 500, and
cancelling the work of a client that went away.

The body cap comes first, before FastAPI reads anything: a body whose ``Content-Length`` is
over ``max_body_bytes`` is answered 413 at once, unread; a chunked body is counted as it
arrives and refused as soon as it passes the cap. Without it a 10 MB prompt was read, parsed
and tokenized (10 s of the model thread) only to be refused, and the server's memory grew by
gigabytes under such requests and never shrank (issue 28).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from fastapi import HTTPException, Request

from llmbench.errors import one_line
from llmbench.serve.auth import ASGIApp, Message, Receive, Scope, Send
from llmbench.serve.schemas import APIError, error_body

log = logging.getLogger(__name__)
T = TypeVar("T")

DISCONNECT_POLL_S = 0.25  # how often a waiting request checks that its client is still there
#: Default cap on a request body: a full 128k-token window as token ids is about 1 MB of JSON.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Seconds a refused body's upload is taken and dropped before the connection closes.
LINGER_S = 5.0


async def _send_json(send: Send, status: int, payload: dict[str, Any],
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


def too_large_message(limit: int) -> str:
    return (f"The request body is larger than this server's limit of {limit} bytes; send a "
            "shorter prompt or fewer prompts per request.")


class BodyLimit:
    """413 in OpenAI's error shape for a body over ``limit`` bytes (see the module docstring).

    A refusal by ``Content-Length`` is sent whole at once, then the connection lingers for at
    most ``LINGER_S`` while what the client still uploads is taken and dropped (never
    buffered, parsed or handed to the app), and is closed. Closing at once reset the
    connection under a client still uploading, and the reset discarded the 413 it had not
    read yet: httpx and the OpenAI SDK, which send the whole body before reading, got "peer
    closed connection". Lingering without a bound would let a client that never stops
    uploading hold the connection."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def _refuse_unread(self, receive: Receive, send: Send) -> None:
        body = json.dumps(error_body(too_large_message(self.limit), "invalid_request_error", None,
                                     "request_too_large")).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body, "more_body": True})  # the whole 413
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LINGER_S):
                while True:  # drop what is still uploaded, so the close resets nothing unread
                    message = await receive()
                    if message["type"] != "http.request" or not message.get("more_body"):
                        break
        await send({"type": "http.response.body", "body": b""})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"),
                        None)
        if declared is not None and declared.strip().isdigit() and int(declared) > self.limit:
            await self._refuse_unread(receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # FastAPI answers it through the app's HTTPException handler
                raise HTTPException(413, too_large_message(self.limit))
            return message

        await self.app(scope, counted, send)


class CatchAll:
    """ASGI middleware: an exception nothing else handled becomes OpenAI's 500 body here.

    Starlette's own last-resort handler sends the 500 and then re-raises, and uvicorn then
    closes the connection, so the next request a client pipelines on that keep-alive
    connection is reset. Answering here, without re-raising, keeps the connection usable.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as err:
            log.exception("request failed")
            if started:
                raise
            await _send_json(send, 500, error_body(
                f"internal error: {type(err).__name__}: {one_line(err, 300)}", "server_error"))


async def unless_gone(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Await ``work``, but cancel it when the client disconnects first (it timed out or gave
    up): its jobs that have not reached the model yet are then dropped, not computed
    (``ModelWorker``), so an abandoned request does not hold up the ones behind it. Counted in
    ``app.state.abandoned``."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            request.app.state.abandoned += 1
            raise APIError(499, "client closed the request")  # nobody is left to read it
