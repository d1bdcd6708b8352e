"""``llmbench serve``: an OpenAI-compatible HTTP API over any local adapter.

Why: the same harness can then evaluate a local model through the exact code path an API
model takes (``OpenAIAdapter``), and other OpenAI-speaking tools (lm-evaluation-harness's
``local-completions`` and ``local-chat-completions``) can use a local model and get the
numbers they would get from the model itself. Endpoints: ``GET /v1/models``,
``GET /v1/models/{id}``, ``POST /v1/completions`` and ``POST /v1/chat/completions``
(``n=1``; ``stream=true`` sends server-sent events once the answer is complete).

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
* **Auth.** With an API key (``serve.auth``) every endpoint needs ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmbench.errors import UserError, one_line
from llmbench.models.base import (
    Encoded,
    GenerateJob,
    ModelAdapter,
    ScoreJob,
    TokenLogprob,
    TokenScorer,
)
from llmbench.serve.auth import ASGIApp, BearerAuth, Receive, Scope, Send
from llmbench.serve.batch import ModelWorker
from llmbench.types import ChatMessage, GenerationConfig, Prompt, Response
from llmbench.types import Request as LLMRequest

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_LOGPROBS = 20
DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /v1/completions
DEFAULT_CHAT_MAX_TOKENS = 256  # OpenAI's is "the rest of the context"; keep runs bounded
DISCONNECT_POLL_S = 0.25  # how often a waiting request checks that its client is still there

# Parameters that change the answer and are not implemented, with the values that mean
# "off" (accepted). Anything else unknown is ignored, as other compatible servers do.
_UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "logit_bias": (None, {}),
    "presence_penalty": (None, 0),
    "frequency_penalty": (None, 0),
    "tools": (None, []),
    "tool_choice": (None, "none", "auto"),
    "functions": (None, []),
    "function_call": (None, "none", "auto"),
    "response_format": (None, {"type": "text"}),
    "suffix": (None, ""),
    "audio": (None,),
    "modalities": (None, ["text"]),
    # vLLM / TGI extensions some clients send
    "top_k": (None, -1, 0),
    "min_p": (None, 0),
    "repetition_penalty": (None, 1),
    "min_tokens": (None, 0),
    "ignore_eos": (None, False),
    "use_beam_search": (None, False),
    "length_penalty": (None, 1),
    "guided_json": (None,),
    "guided_regex": (None,),
    "guided_choice": (None,),
    "guided_grammar": (None,),
    "include_stop_str_in_output": (None, False),
    "skip_special_tokens": (None, True),
    "prompt_logprobs": (None,),
}


class APIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status, message, type, param, code)


def _error_body(message: str, type: str, param: str | None = None,
                code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


# ------------------------------------------------------------------------------ bodies


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")  # checked against _UNSUPPORTED

    model: str
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    best_of: int | None = None
    stream: bool | None = None
    stream_options: _StreamOptions | None = None

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return tuple(s for s in ((self.stop,) if isinstance(self.stop, str) else self.stop) if s)

    def generation(self, max_tokens: int) -> GenerationConfig:
        """Greedy decoding ignores the seed (one config, so requests batch together);
        sampling without a seed draws a fresh one: it must not be silently deterministic."""
        temperature = 1.0 if self.temperature is None else self.temperature
        seed = 0 if temperature == 0 else (self.seed if self.seed is not None
                                           else secrets.randbits(63))
        return GenerationConfig(max_new_tokens=max_tokens, temperature=temperature,
                                top_p=1.0 if self.top_p is None else self.top_p,
                                stop=self.stops(), seed=seed)


PromptIn = str | list[int]


class CompletionBody(_Body):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(default=None, ge=0)
    echo: bool | None = None
    logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)

    def prompts(self) -> list[PromptIn]:
        p = self.prompt
        items: list[PromptIn]
        if isinstance(p, str):
            items = [p]
        elif p and isinstance(p[0], int):
            items = [[int(t) for t in p if isinstance(t, int)]]
        else:
            items = [x for x in p if isinstance(x, str | list)]
        if not items or any(len(x) == 0 for x in items):
            raise APIError(400, "prompt must not be empty", param="prompt")
        return items


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
    logprobs: bool | None = None
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
        out.append(ChatMessage(role=role, content=content))
    return tuple(out)


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


# --------------------------------------------------------------------------- logprobs


def _spell(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in raw)


def _clip(entries: list[TokenLogprob], text: str) -> list[str]:
    """The text each entry adds, cut so they spell ``text`` exactly (the last token before
    a stop string may reach into it; a special token adds nothing to the answer)."""
    out, reach = [], 0
    for e in entries:
        piece = "" if e.special else e.text[: max(0, len(text) - reach)]
        reach += len(piece)
        out.append(piece)
    return out


@dataclass
class _Answer:
    """One prompt's result before it is written as JSON or as stream chunks."""

    prompt: Encoded | None  # None: a model without token-level access
    prompt_text: str
    text: str
    finish_reason: str
    completion_ids: tuple[int, ...]
    prompt_tokens: int
    completion_tokens: int
    entries: list[TokenLogprob] | None = None  # scored positions (echo: prompt's too)
    pieces: list[TokenLogprob] | None = None  # the completion's tokens, for streaming


def _completion_logprobs(answer: _Answer, echo: bool) -> dict[str, Any]:
    """The legacy completions ``logprobs`` object. Offsets index the returned text: the
    echoed prompt from 0 (BOS added by the server takes no room), else from the prompt's
    length, as OpenAI counts them."""
    entries = answer.entries or []
    assert answer.prompt is not None
    n_prompt, n_lead = len(answer.prompt.ids), answer.prompt.n_lead
    first = 0 if echo else n_prompt
    prompt_part, answer_part = entries[: max(0, n_prompt - first)], entries[max(0, n_prompt - first):]
    clipped = _clip(answer_part, answer.text)
    tokens = [e.text for e in prompt_part] + [e.text if e.special else t
                                              for e, t in zip(answer_part, clipped, strict=True)]
    widths = [0 if first + i < n_lead else len(e.text) for i, e in enumerate(prompt_part)]
    widths += [len(t) for t in clipped]
    offset = 0 if echo else len(answer.prompt_text)
    offsets: list[int] = []
    tops: list[dict[str, float] | None] = []
    for e, width in zip(entries, widths, strict=True):
        offsets.append(offset)
        offset += width
        if e.logprob is None:
            tops.append(None)
            continue
        top: dict[str, float] = {}
        for alt in e.top:  # best first; keep the first of two ids that spell alike
            top.setdefault(alt.token, alt.logprob)
        top.setdefault(_spell(e.raw), e.logprob)  # OpenAI always includes the chosen token
        tops.append(top)
    return {"tokens": tokens, "token_logprobs": [e.logprob for e in entries],
            "text_offset": offsets, "top_logprobs": tops}


def _chat_entry(e: TokenLogprob, token: str) -> dict[str, Any]:
    return {"token": token, "logprob": e.logprob if e.logprob is not None else 0.0,
            "bytes": list(e.raw),
            "top_logprobs": [{"token": a.token, "logprob": a.logprob, "bytes": list(a.raw)}
                             for a in e.top]}


def _chat_entries(answer: _Answer) -> list[dict[str, Any]]:
    """One entry per answer token: they spell the content. A final EOS is left out, unless
    it is the only token (then it is the one place the first-position distribution shows)."""
    entries = list(answer.entries or [])
    if len(entries) > 1 and entries[-1].special:
        entries = entries[:-1]
    texts = _clip(entries, answer.text)
    if len(entries) == 1 and entries[0].special:
        texts = [entries[0].text]
    return [_chat_entry(e, t) for e, t in zip(entries, texts, strict=True)]


# ---------------------------------------------------------------------------- service


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
        if (body.n or 1) != 1 or (body.best_of or 1) != 1:
            raise APIError(400, "only n=1 (and best_of=1) is supported", param="n")
        for name, value in (body.model_extra or {}).items():
            if name in _UNSUPPORTED and value not in _UNSUPPORTED[name]:
                raise APIError(400, f"{name}={json.dumps(value)[:80]} is not supported by this "
                               "server (it would change the answer); leave it out",
                               param=name, code="unsupported_parameter")
        if wants_logprobs and self.scorer is None:
            raise APIError(400, "log-probabilities are not available for this model (they need "
                           "a causal Hugging Face model)", param="logprobs")

    # -- token-level helpers (on the model thread: the tokenizer is not thread-safe)
    async def encode(self, prompt: Prompt | list[int], param: str) -> Encoded:
        scorer = self.scorer
        assert scorer is not None
        try:
            return await self.worker.call(lambda: scorer.encode(prompt))
        except ValueError as err:
            raise APIError(400, one_line(err), param=param) from None

    def fits(self, enc: Encoded, max_tokens: int, param: str) -> None:
        limit = self.scorer.max_length if self.scorer is not None else None
        if limit is not None and len(enc.ids) + max_tokens > limit:
            raise APIError(
                400, f"This model's maximum context length is {limit} tokens. However, you "
                f"requested {len(enc.ids) + max_tokens} tokens ({len(enc.ids)} in the prompt, "
                f"{max_tokens} for the completion). Please reduce the prompt or max_tokens.",
                param=param, code="context_length_exceeded")

    async def _generated(self, job: GenerateJob | LLMRequest) -> Response:
        resp = (await self.worker.generate(job) if isinstance(job, GenerateJob)
                else await self.worker.run(job))
        if resp.error:
            raise APIError(500, f"generation failed: {one_line(resp.error)}", type="server_error")
        return resp

    async def answer(self, prompt: Prompt | list[int], body: _Body, max_tokens: int | None,
                     *, param: str, top_n: int | None, echo: bool, stream: bool) -> _Answer:
        """Generate (and score) one prompt. ``max_tokens=None``: the chat default."""
        if self.scorer is None:
            return await self._answer_text(prompt, body, max_tokens, param=param)
        enc = await self.encode(prompt, param)
        if max_tokens is None:
            room = (self.scorer.max_length - len(enc.ids)) if self.scorer.max_length else None
            max_tokens = DEFAULT_CHAT_MAX_TOKENS if room is None else max(1, min(
                DEFAULT_CHAT_MAX_TOKENS, room))
        self.fits(enc, max_tokens, param)
        text, finish, n_generated = "", "length", 0
        ids: tuple[int, ...] = ()
        if max_tokens > 0:
            resp = await self._generated(GenerateJob(enc, body.generation(max_tokens)))
            text, ids = resp.text or "", resp.token_ids or ()
            finish = resp.finish_reason or "length"
            n_generated = resp.usage.completion_tokens if resp.usage else len(ids)
        answer = _Answer(enc, enc.text, text, finish, ids, len(enc.ids), n_generated)
        if top_n is not None:
            answer.entries = await self.worker.score(ScoreJob(enc.ids, ids, top_n=top_n,
                                                              echo=echo))
        elif stream and ids:
            scorer = self.scorer
            answer.pieces = (await self.worker.call(
                lambda: scorer.pieces(enc.ids + ids)))[len(enc.ids):]
        return answer

    async def _answer_text(self, prompt: Prompt | list[int], body: _Body, max_tokens: int | None,
                           *, param: str) -> _Answer:
        """A model without token-level access: text prompts through ``adapter.run``."""
        if isinstance(prompt, list):
            raise APIError(400, "token-id prompts need a model with token-level access (a causal "
                           "Hugging Face model); send text", param=param)
        max_tokens = DEFAULT_CHAT_MAX_TOKENS if max_tokens is None else max_tokens
        text, finish, n_prompt, n_completion = "", "length", 0, 0
        if max_tokens > 0:
            resp = await self._generated(LLMRequest(
                sample_id="serve", kind="generate", prompt=prompt,
                config=body.generation(max_tokens)))
            text = resp.text or ""
            if resp.usage is not None:
                n_prompt, n_completion = resp.usage.prompt_tokens, resp.usage.completion_tokens
            finish = resp.finish_reason or ("length" if n_completion >= max_tokens else "stop")
        prompt_text = prompt if isinstance(prompt, str) else ""
        return _Answer(None, prompt_text, text, finish, (), n_prompt, n_completion)

    # -- endpoints
    async def completions(self, body: CompletionBody) -> dict[str, Any] | StreamingResponse:
        self.check(body, body.logprobs is not None)
        prompts = body.prompts()
        max_tokens = DEFAULT_COMPLETION_MAX_TOKENS if body.max_tokens is None else body.max_tokens
        echo = bool(body.echo)
        answers = await asyncio.gather(*(
            self.answer(p, body, max_tokens, param="prompt", top_n=body.logprobs, echo=echo,
                        stream=bool(body.stream))
            for p in prompts))
        head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                "created": int(time.time()), "model": self.model_name}
        usage = _usage(sum(a.prompt_tokens for a in answers),
                       sum(a.completion_tokens for a in answers))
        if body.stream:
            return _sse(_completion_chunks(head, answers, echo, body.logprobs is not None, usage,
                                           _include_usage(body)))
        choices = []
        for i, a in enumerate(answers):
            logprobs = _completion_logprobs(a, echo) if a.entries is not None else None
            choices.append({"index": i, "text": a.prompt_text + a.text if echo else a.text,
                            "logprobs": logprobs, "finish_reason": a.finish_reason})
        return {**head, "choices": choices, "usage": usage}

    async def chat(self, body: ChatBody) -> dict[str, Any] | StreamingResponse:
        self.check(body, bool(body.logprobs))
        if body.top_logprobs and not body.logprobs:
            raise APIError(400, "top_logprobs needs logprobs=true", param="top_logprobs")
        prompt = _chat_prompt(body.messages)
        max_tokens = body.max_completion_tokens or body.max_tokens
        a = await self.answer(prompt, body, max_tokens, param="messages",
                              top_n=(body.top_logprobs or 0) if body.logprobs else None,
                              echo=False, stream=bool(body.stream))
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                "created": int(time.time()), "model": self.model_name}
        usage = _usage(a.prompt_tokens, a.completion_tokens)
        if body.stream:
            return _sse(_chat_chunks(head, a, usage, _include_usage(body)))
        logprobs = ({"content": _chat_entries(a), "refusal": None}
                    if a.entries is not None else None)
        return {**head, "choices": [{"index": 0, "message": {"role": "assistant",
                                                             "content": a.text},
                                     "logprobs": logprobs, "finish_reason": a.finish_reason}],
                "usage": usage}


# --------------------------------------------------------------------------- streaming


def _include_usage(body: _Body) -> bool:
    return bool(body.stream_options and body.stream_options.include_usage)


def _sse(chunks: list[dict[str, Any]]) -> StreamingResponse:
    """Server-sent events of precomputed chunks: the answer is complete before the first
    byte is sent, so an error is still an ordinary JSON error response."""

    async def events() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache"})


def _stream_texts(a: _Answer, *, keep_special: bool) -> list[tuple[str, list[TokenLogprob]]]:
    """The answer as (text, its scored token) pieces, one per token when the tokens are
    known and spell the answer, else the whole answer at once. Chat leaves a final EOS out
    (it adds no text); completions keep it, with its log-probability."""
    tokens = a.pieces
    if a.entries is not None and a.prompt is not None:
        tokens = a.entries[len(a.entries) - len(a.completion_ids):]
    tokens = list(tokens or [])
    while tokens and tokens[-1].special and not keep_special:
        tokens.pop()
    if tokens:
        texts = _clip(tokens, a.text)
        if "".join(texts) == a.text:
            return [(t, [e]) for t, e in zip(texts, tokens, strict=True)]
    return [(a.text, [])] if a.text else []


def _completion_chunks(head: dict[str, Any], answers: Sequence[_Answer], echo: bool,
                       logprobs: bool, usage: dict[str, int],
                       include_usage: bool) -> list[dict[str, Any]]:
    def chunk(index: int, text: str, lp: dict[str, Any] | None,
              finish: str | None) -> dict[str, Any]:
        return {**head, "choices": [{"index": index, "text": text, "logprobs": lp,
                                     "finish_reason": finish}]}

    out = []
    for i, a in enumerate(answers):
        whole = _completion_logprobs(a, echo) if logprobs and a.entries is not None else None
        n_echo = len(a.prompt.ids) if echo and a.prompt is not None else 0
        if echo:
            lp = {k: v[:n_echo] for k, v in whole.items()} if whole else None
            out.append(chunk(i, a.prompt_text, lp, None))
        at = n_echo
        for text, scored in _stream_texts(a, keep_special=True):
            lp = {k: v[at:at + len(scored)] for k, v in whole.items()} if whole else None
            at += len(scored)
            if text or lp:  # a token ending inside a character adds no text by itself
                out.append(chunk(i, text, lp, None))
        out.append(chunk(i, "", None, a.finish_reason))
    if include_usage:
        out.append({**head, "choices": [], "usage": usage})
    return out


def _chat_chunks(head: dict[str, Any], a: _Answer, usage: dict[str, int],
                 include_usage: bool) -> list[dict[str, Any]]:
    head = {**head, "object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], lp: list[dict[str, Any]] | None,
              finish: str | None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta,
                                     "logprobs": None if lp is None else {"content": lp,
                                                                          "refusal": None},
                                     "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""}, None, None)]
    for text, scored in _stream_texts(a, keep_special=False):
        lp = [_chat_entry(e, text) for e in scored] if a.entries is not None else None
        if text or lp:  # a token ending inside a character adds no text by itself
            out.append(chunk({"content": text}, lp, None))
    out.append(chunk({}, None, a.finish_reason))
    if include_usage:
        out.append({**head, "choices": [], "usage": usage})
    return out


# -------------------------------------------------------------------------------- app


class _CatchAll:
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
            body = json.dumps(_error_body(f"internal error: {type(err).__name__}: "
                                          f"{one_line(err, 300)}", "server_error")).encode()
            await send({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


async def _unless_gone(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Await ``work``, but cancel it when the client disconnects first (it timed out or gave
    up): its jobs that have not reached the model yet are then dropped, not computed
    (``ModelWorker``), so an abandoned request does not hold up the ones behind it."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise APIError(499, "client closed the request")  # nobody is left to read it


def _model_card(model_name: str) -> dict[str, Any]:
    return {"id": model_name, "object": "model", "created": 0, "owned_by": "llmbench"}


def create_app(adapter: ModelAdapter, model_name: str, *, batch_wait_s: float = 0.005,
               max_batch: int = 32, api_key: str | None = None) -> FastAPI:
    """The app; the model worker thread starts with the first request (or the app's
    startup) and stops at shutdown. With ``api_key`` every endpoint needs it as a bearer
    token."""
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
    app.add_middleware(_CatchAll)
    if api_key:
        app.add_middleware(BearerAuth, key=api_key)

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

    @app.exception_handler(UserError)
    async def _user_error(_: Request, err: UserError) -> JSONResponse:
        return JSONResponse(_error_body(one_line(err), "invalid_request_error"), 400)

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
        return await _unless_gone(request, service.completions(body))

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatBody, request: Request) -> dict[str, Any] | StreamingResponse:
        return await _unless_gone(request, service.chat(body))

    return app


def serve(adapter: ModelAdapter, model_name: str, host: str = "127.0.0.1", port: int = 8000,
          log_level: Literal["critical", "error", "warning", "info", "debug"] = "info",
          api_key: str | None = None) -> None:
    """Run the API with uvicorn until interrupted; closes the adapter afterwards. Refuses a
    non-loopback ``host`` without ``api_key`` (see ``serve.auth``)."""
    import uvicorn

    from llmbench.serve.auth import check_bind

    check_bind(host, api_key)
    adapter.prepare()  # load the weights before the port opens, not on the first request
    try:
        uvicorn.run(create_app(adapter, model_name, api_key=api_key), host=host, port=port,
                    log_level=log_level)
    finally:
        adapter.close()

