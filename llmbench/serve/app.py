"""``llmbench serve``: an OpenAI-compatible HTTP API over any local adapter.

Why: the same harness can then evaluate a local model through the exact code path an API
model takes (``OpenAIAdapter``), and other OpenAI-speaking tools (lm-evaluation-harness's
``local-completions`` and ``local-chat-completions``) can use a local model and get the
numbers they would get from the model itself. Endpoints: ``GET /v1/models``,
``GET /v1/models/{id}``, ``POST /v1/completions`` and ``POST /v1/chat/completions``
(``n=1``; ``stream=true`` sends server-sent events as the tokens are generated, see
``streaming``).

For a causal Hugging Face model everything works on token ids (``ModelAdapter.token_scorer``):
prompts may be text, chat messages, token ids (``[1, 2, 3]``) or a batch (``[[1, 2], [3]]``,
``["a", "b"]``); generation runs the adapter's own generator on those ids; and the
log-probabilities (``echo`` + ``logprobs`` on completions, ``logprobs``/``top_logprobs`` on
chat) are the model's log P(token_i | tokens_<i) of the very tokens it read and produced —
never of re-tokenised text. A generated EOS is kept in the completions token list (with
``finish_reason: "stop"``), so a client that drops the last echoed token drops the right
one. Chat ``logprobs`` entries spell the answer (a token ending inside a multi-byte
character has ``token: ""``, the next carries the character; ``bytes`` are the token's own);
alternatives that are not whole characters are written ``bytes:\\xe4`` as OpenAI does.
Other adapters (plugins, encoder-decoders) answer text prompts through ``adapter.run`` and
refuse token-level requests with a 400.

Semantics a client can rely on:

* **Seeds.** ``temperature=0`` is greedy and deterministic. With ``temperature>0`` and a
  ``seed``, the answer depends only on (seed, prompt, parameters) — not on which requests
  share a batch. Without a seed each request draws a fresh random seed, so repeated
  sampling differs, as with OpenAI.
* **Length.** A prompt whose tokens plus ``max_tokens`` exceed the model's window is a 400
  with ``code: "context_length_exceeded"``, on the generation and the echo paths alike (it
  is never cut silently). Chat without ``max_tokens`` gets up to 256 tokens, fewer when the
  window has less room.
* **Usage** counts the prompt's tokens (BOS included) even with ``max_tokens=0``, and the
  tokens generated (a final EOS included).
* **Errors** have OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``: a 400
  for bad input, an empty prompt, or a parameter that would change the answer but is not
  implemented (``logit_bias``, penalties, ``tools``, ``response_format``, ``suffix``, ...);
  unknown harmless ones (``user``, ``metadata``) are ignored. A failure inside the server is
  a 500 that leaves the keep-alive connection usable.
* **Abandoned requests.** When a client disconnects before its answer is ready, its work
  that has not reached the model yet is dropped (a batch already running finishes).
* **Limits.** A body over ``max_body_bytes`` (4 MiB) is a 413, unread; a prompt longer than
  the window could hold at 32 characters a token is a 400 before it is tokenized; a value
  OpenAI refuses (``n: 0``, ``"stream": "yes"``, a fifth stop string, a lone UTF-16 surrogate)
  is a 400 with its ``param`` (``schemas``).
* **Auth.** With an API key (``serve.auth``) every endpoint needs ``Authorization: Bearer``.

The package is split along its seams: ``schemas`` (request bodies and their validation),
``wire`` (OpenAI's logprobs objects), ``service`` (the handling), ``streaming`` (server-sent
events, live or from a finished answer), ``middleware`` (body cap, last-resort 500, abandoned
requests), ``batch`` (the model thread) and ``auth``; this module wires them into the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmbench.errors import UserError, one_line
from llmbench.models.base import ModelAdapter
from llmbench.serve.auth import BearerAuth
from llmbench.serve.batch import ModelWorker
from llmbench.serve.middleware import MAX_BODY_BYTES, BodyLimit, CatchAll, unless_gone
from llmbench.serve.schemas import (
    APIError,
    ChatBody,
    CompletionBody,
    error_body,
    request_validation_error,
)
from llmbench.serve.service import Service


def _model_card(model_name: str) -> dict[str, Any]:
    return {"id": model_name, "object": "model", "created": 0, "owned_by": "llmbench"}


def _handlers(app: FastAPI) -> None:
    """Every error in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, err: APIError) -> JSONResponse:
        return JSONResponse(error_body(err.message, err.type, err.param, err.code),
                            status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        message, param = request_validation_error(list(err.errors()))
        return JSONResponse(error_body(message, "invalid_request_error", param), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = "invalid_request_error" if err.status_code < 500 else "server_error"
        code = "request_too_large" if err.status_code == 413 else None
        return JSONResponse(error_body(str(err.detail), kind, None, code), err.status_code)

    @app.exception_handler(UserError)
    async def _user_error(_: Request, err: UserError) -> JSONResponse:
        return JSONResponse(error_body(one_line(err), "invalid_request_error"), 400)


def create_app(adapter: ModelAdapter, model_name: str, *, batch_wait_s: float = 0.005,
               max_batch: int = 32, api_key: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The app; the model worker thread starts with the first request (or the app's
    startup) and stops at shutdown. With ``api_key`` every endpoint needs it as a bearer
    token; a body over ``max_body_bytes`` is refused unread (413)."""
    scorer = adapter.token_scorer()
    worker = ModelWorker(adapter, scorer, wait_s=batch_wait_s, max_batch=max_batch)
    service = Service(adapter, model_name, worker, scorer)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.start()
        yield
        await asyncio.to_thread(worker.stop)

    app = FastAPI(title="llmbench serve", lifespan=lifespan)
    app.state.worker = worker
    app.state.scorer = scorer
    app.state.abandoned = 0  # requests cancelled because their client went away
    # Added last = outermost: the key is checked first, then the body's size, before FastAPI
    # reads the body; CatchAll answers what escapes the handlers.
    app.add_middleware(CatchAll)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    if api_key:
        app.add_middleware(BearerAuth, key=api_key)
    _handlers(app)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_card(model_name)]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        if model_id != model_name:
            raise APIError(404, f"The model `{model_id}` does not exist (this server has "
                           f"`{model_name}`).", param="model", code="model_not_found")
        return _model_card(model_name)

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionBody, request: Request) -> dict[str, Any] | StreamingResponse:
        return await unless_gone(request, service.completions(body))

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatBody, request: Request) -> dict[str, Any] | StreamingResponse:
        return await unless_gone(request, service.chat(body))

    return app


def serve(adapter: ModelAdapter, model_name: str, host: str = "127.0.0.1", port: int = 8000,
          log_level: Literal["critical", "error", "warning", "info", "debug"] = "info",
          api_key: str | None = None, max_body_bytes: int = MAX_BODY_BYTES) -> None:
    """Run the API with uvicorn until interrupted; closes the adapter afterwards. Refuses a
    non-loopback ``host`` without ``api_key`` (see ``serve.auth``)."""
    import uvicorn

    from llmbench.serve.auth import check_bind

    check_bind(host, api_key)
    adapter.prepare()  # load the weights before the port opens, not on the first request
    try:
        uvicorn.run(create_app(adapter, model_name, api_key=api_key,
                               max_body_bytes=max_body_bytes),
                    host=host, port=port, log_level=log_level)
    finally:
        adapter.close()
