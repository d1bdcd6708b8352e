"""``llmbench serve``: an OpenAI-compatible HTTP API over any local adapter.

Why: the same harness can then evaluate a local model through the exact code path
an API model takes (``OpenAIAdapter``), and other OpenAI-speaking tools can use
a local model. Endpoints: ``GET /v1/models``, ``POST /v1/completions`` and
``POST /v1/chat/completions`` (no streaming, ``n=1``).

Text comes from ``adapter.run`` (batched across concurrent HTTP requests, see
``serve_batch``); token log-probabilities — ``echo`` + ``logprobs`` on
completions, ``logprobs``/``top_logprobs`` on chat — come from the Hugging Face
model itself (``ModelAdapter.token_scorer``), so they are available for causal HF models only
and are the model's own log P(token_i | tokens_<i). With ``echo=True,
logprobs=k, max_tokens=0`` the answer holds the prompt's tokens, their
log-probabilities (the first is ``None``, as OpenAI does), ``text_offset`` and
the top-``k`` alternatives. Errors have OpenAI's shape,
``{"error": {"message", "type", "param", "code"}}``; bad input is a 400.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmbench.models.base import ModelAdapter, ModelError, ScoreJob, TokenLogprob, TokenScorer
from llmbench.serve.batch import JobError, ModelWorker
from llmbench.types import ChatMessage, GenerationConfig, Prompt, Response, Usage
from llmbench.types import Request as LLMRequest

MAX_LOGPROBS = 20
DEFAULT_CHAT_MAX_TOKENS = 256  # OpenAI's is "the rest of the context"; keep runs bounded


class APIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status, message, type, param, code)


def _error_body(message: str, type: str, param: str | None = None,
                code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class _Body(BaseModel):
    # Unknown OpenAI parameters (user, metadata, ...) are accepted and ignored,
    # as other compatible servers do; the ones that change answers are checked.
    model_config = ConfigDict(extra="ignore")

    model: str
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    stream: bool = False
    best_of: int | None = None

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def generation(self, max_tokens: int) -> GenerationConfig:
        return GenerationConfig(max_new_tokens=max_tokens, temperature=self.temperature,
                                top_p=self.top_p, stop=self.stops(), seed=self.seed or 0)


class CompletionBody(_Body):
    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=0)
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list[_Part] | None = None


class ChatBody(_Body):
    messages: list[_Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)


_FIELDS = set(CompletionBody.model_fields) | set(ChatBody.model_fields) | {"role", "content"}


def _chat_prompt(messages: list[_Message]) -> tuple[ChatMessage, ...]:
    out = []
    for i, m in enumerate(messages):
        role = "system" if m.role == "developer" else m.role
        if role not in ("system", "user", "assistant"):
            raise APIError(400, f"messages[{i}]: role '{m.role}' is not supported",
                           param=f"messages[{i}].role")
        if isinstance(m.content, list):
            if any(p.type != "text" for p in m.content):
                raise APIError(400, f"messages[{i}]: only text content parts are supported",
                               param=f"messages[{i}].content")
            content = "".join(p.text or "" for p in m.content)
        else:
            content = m.content or ""
        out.append(ChatMessage(role=role, content=content))  # type: ignore[arg-type]
    return tuple(out)


def _usage_dict(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _completion_logprobs(entries: list[TokenLogprob]) -> dict[str, Any]:
    tops: list[dict[str, float] | None] = []
    for e in entries:
        if e.logprob is None:
            tops.append(None)
            continue
        top: dict[str, float] = {}
        for token, value in e.top:  # best first; distinct ids can decode alike ("�")
            top.setdefault(token, value)
        top.setdefault(e.token, e.logprob)  # OpenAI always includes the chosen token
        tops.append(top)
    return {"tokens": [e.token for e in entries], "token_logprobs": [e.logprob for e in entries],
            "text_offset": [e.offset for e in entries], "top_logprobs": tops}


def _chat_logprobs(entries: list[TokenLogprob]) -> dict[str, Any]:
    def item(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}

    return {"content": [{**item(e.token, e.logprob or 0.0),
                         "top_logprobs": [item(t, v) for t, v in e.top]} for e in entries],
            "refusal": None}


class _Service:
    """The request handling, apart from FastAPI's routing."""

    def __init__(self, adapter: ModelAdapter, model_name: str, worker: ModelWorker,
                 scorer: TokenScorer | None) -> None:
        self.adapter, self.model_name, self.worker, self.scorer = (
            adapter, model_name, worker, scorer)

    def check(self, body: _Body, wants_logprobs: bool) -> None:
        if body.model != self.model_name:
            raise APIError(404, f"The model `{body.model}` does not exist (this server has "
                           f"`{self.model_name}`).", param="model", code="model_not_found")
        if body.stream:
            raise APIError(400, "stream=true is not supported", param="stream")
        if body.n != 1 or (body.best_of or 1) != 1:
            raise APIError(400, "only n=1 (and best_of=1) is supported", param="n")
        if wants_logprobs and self.scorer is None:
            raise APIError(400, "log-probabilities are not available for this model (they need "
                           "a causal Hugging Face model)", param="logprobs")

    async def generate(self, prompt: Prompt, config: GenerationConfig) -> Response:
        resp = await self.worker.generate(
            LLMRequest(sample_id="serve", kind="generate", prompt=prompt, config=config))
        if resp.error:
            raise APIError(500, f"generation failed: {resp.error}", type="server_error")
        return resp

    async def score(self, job: ScoreJob) -> list[TokenLogprob]:
        try:
            return await self.worker.score(job)
        except JobError as err:
            raise APIError(400, str(err)) from None

    async def completion_choice(self, body: CompletionBody, index: int,
                                prompt: str) -> tuple[dict[str, Any], Usage]:
        max_tokens = 16 if body.max_tokens is None else body.max_tokens
        text, usage = "", None
        if max_tokens > 0:
            resp = await self.generate(prompt, body.generation(max_tokens))
            text, usage = resp.text or "", resp.usage
        logprobs = None
        n_prompt = n_completion = None
        if body.logprobs is not None:
            job = ScoreJob(prompt=prompt, completion=text, top_n=body.logprobs, echo=body.echo)
            entries = await self.score(job)
            n_prompt, n_completion = job.n_prompt, len(job.ids) - job.n_prompt
            logprobs = _completion_logprobs(entries)
        prompt_tokens = usage.prompt_tokens if usage else (n_prompt or 0)
        completion_tokens = usage.completion_tokens if usage else (n_completion or 0)
        finish = "length" if completion_tokens >= max_tokens else "stop"
        choice = {"index": index, "text": prompt + text if body.echo else text,
                  "logprobs": logprobs, "finish_reason": finish}
        return choice, Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    async def completions(self, body: CompletionBody) -> dict[str, Any]:
        self.check(body, body.logprobs is not None)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts:
            raise APIError(400, "prompt must not be empty", param="prompt")
        results = await asyncio.gather(*(self.completion_choice(body, i, p)
                                          for i, p in enumerate(prompts)))
        return {
            "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
            "created": int(time.time()), "model": self.model_name,
            "choices": [c for c, _ in results],
            "usage": _usage_dict(sum(u.prompt_tokens for _, u in results),
                                 sum(u.completion_tokens for _, u in results)),
        }

    async def chat(self, body: ChatBody) -> dict[str, Any]:
        self.check(body, body.logprobs)
        if body.top_logprobs and not body.logprobs:
            raise APIError(400, "top_logprobs needs logprobs=true", param="top_logprobs")
        prompt = _chat_prompt(body.messages)
        max_tokens = body.max_completion_tokens or body.max_tokens or DEFAULT_CHAT_MAX_TOKENS
        resp = await self.generate(prompt, body.generation(max_tokens))
        text = resp.text or ""
        logprobs = None
        if body.logprobs:
            job = ScoreJob(prompt=prompt, completion=text, top_n=body.top_logprobs or 0,
                           next_if_empty=True)
            logprobs = _chat_logprobs((await self.score(job))[:max_tokens])
        usage = resp.usage or Usage()
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": self.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": logprobs,
                         "finish_reason": ("length" if usage.completion_tokens >= max_tokens
                                           else "stop")}],
            "usage": _usage_dict(usage.prompt_tokens, usage.completion_tokens),
        }


def create_app(adapter: ModelAdapter, model_name: str, *, batch_wait_s: float = 0.005,
               max_batch: int = 32) -> FastAPI:
    """The app; the model worker thread starts with the first request (or the app's
    startup) and stops at shutdown."""
    scorer = adapter.token_scorer()
    worker = ModelWorker(adapter, scorer, wait_s=batch_wait_s, max_batch=max_batch)
    service = _Service(adapter, model_name, worker, scorer)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.start()
        yield
        await asyncio.to_thread(worker.stop)

    app = FastAPI(title="llmbench serve", lifespan=lifespan)
    app.state.worker = worker
    app.state.scorer = scorer

    @app.exception_handler(APIError)
    async def _api_error(_: Request, err: APIError) -> JSONResponse:
        return JSONResponse(_error_body(err.message, err.type, err.param, err.code),
                            status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        # ("body", "prompt", "str") -> "prompt": drop pydantic's union-member names.
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(p for p in loc if not p.isidentifier() or p in _FIELDS) or None
        message = f"{param}: {first['msg']}" if param else str(first["msg"])
        return JSONResponse(_error_body(message, "invalid_request_error", param), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = "invalid_request_error" if err.status_code < 500 else "server_error"
        return JSONResponse(_error_body(str(err.detail), kind), err.status_code)

    @app.exception_handler(ModelError)
    async def _model_error(_: Request, err: ModelError) -> JSONResponse:
        return JSONResponse(_error_body(str(err), "invalid_request_error"), 400)

    @app.exception_handler(Exception)
    async def _crash(_: Request, err: Exception) -> JSONResponse:
        return JSONResponse(_error_body(f"internal error: {type(err).__name__}: {err}",
                                        "server_error"), 500)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0,
                                            "owned_by": "llmbench"}]}

    @app.post("/v1/completions")
    async def completions(body: CompletionBody) -> dict[str, Any]:
        return await service.completions(body)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatBody) -> dict[str, Any]:
        return await service.chat(body)

    return app


def serve(adapter: ModelAdapter, model_name: str, host: str = "127.0.0.1", port: int = 8000,
          log_level: Literal["critical", "error", "warning", "info", "debug"] = "info") -> None:
    """Run the API with uvicorn until interrupted; closes the adapter afterwards."""
    import uvicorn

    adapter.prepare()  # load the weights before the port opens, not on the first request
    try:
        uvicorn.run(create_app(adapter, model_name), host=host, port=port, log_level=log_level)
    finally:
        adapter.close()
