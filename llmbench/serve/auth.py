"""Who may talk to ``llmbench serve``: a bearer key, and no open port without one.

A served model answers anyone who can reach the port, and generation costs compute. So the
server listens on loopback by default; binding any other address needs an API key (the
``--api-key`` option or ``LLMBENCH_SERVE_API_KEY``), and with a key every endpoint (the API,
the model list, the OpenAPI docs, unknown paths) answers 401 without
``Authorization: Bearer <key>``. This module imports no web framework, so the CLI can refuse
a bad bind before it loads a model.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from llmbench.errors import UserError

KEY_ENV = "LLMBENCH_SERVE_API_KEY"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """True when ``host`` (an address or a name) is reachable from this machine only."""
    host = host.strip().strip("[]")
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback
                               for i in infos)


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to serve a non-loopback address without a key (one line, exit 2 at the CLI)."""
    if api_key is not None and not api_key.strip():
        raise UserError(f"--api-key (or {KEY_ENV}) is empty — set a non-empty key")
    if not api_key and not is_loopback(host):
        raise UserError(
            f"refusing to serve on {host} without an API key: anyone who can reach it could use "
            f"the model — pass --api-key KEY (or set {KEY_ENV}), or bind 127.0.0.1")


def _error(message: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                 "param": None, "code": code}}).encode()


class BearerAuth:
    """ASGI middleware: HTTP requests without ``Authorization: Bearer <key>`` get OpenAI's
    401 error body. The comparison takes constant time, so the key cannot be guessed
    byte by byte from response times."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    def _allowed(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                scheme, _, token = bytes(value).partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        while (await receive()).get("more_body"):  # read the body: the connection stays usable
            pass
        has_header = any(n.lower() == b"authorization" for n, _ in scope.get("headers", ()))
        body = (_error("Incorrect API key provided.", "invalid_api_key") if has_header else
                _error("You didn't provide an API key: send it as 'Authorization: Bearer KEY'.",
                       "missing_api_key"))
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})
