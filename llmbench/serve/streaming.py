"""Server-sent events for ``stream: true``: live, token by token, or from a finished answer.

**Live** (a causal model's generation without log-probabilities, one prompt): the model thread
reports each token as it is produced (``ModelWorker.generate(listener=...)``), ``TokenText``
turns the tokens so far into text that is safe to send — never past a stop string, never a
partial stop string that may yet complete, never half a character — and the event loop sends
it at once, so the first event leaves after the first token, not after the last (issue 28:
time to first byte equalled the total time). The finished answer settles the rest: what the
stop-string hold-back kept, the ``finish_reason`` and usage. An error after the first event
is sent as an ``{"error": ...}`` event, as OpenAI does.

**From a finished answer** (log-probabilities, several prompts, ``max_tokens: 0``, models
without token-level access): the chunks are built from the complete answer, one per token
where the tokens spell it, and an error is still an ordinary JSON error response.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

from fastapi.responses import StreamingResponse

from llmbench.models.base import TokenLogprob, TokenScorer
from llmbench.models.stop import cut_at_stop
from llmbench.serve.schemas import APIError, error_body
from llmbench.serve.wire import Answer, chat_entry, clip, completion_logprobs, usage


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


def _response(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"cache-control": "no-cache"})


def sse(chunks: list[dict[str, Any]]) -> StreamingResponse:
    """Server-sent events of precomputed chunks: the answer is complete before the first
    byte is sent, so an error is still an ordinary JSON error response."""

    async def events() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield _event(chunk)
        yield b"data: [DONE]\n\n"

    return _response(events())


def _stream_texts(a: Answer, *, keep_special: bool) -> list[tuple[str, list[TokenLogprob]]]:
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
        texts = clip(tokens, a.text)
        if "".join(texts) == a.text:
            return [(t, [e]) for t, e in zip(texts, tokens, strict=True)]
    return [(a.text, [])] if a.text else []


def completion_chunks(head: dict[str, Any], answers: Sequence[Answer], echo: bool,
                       logprobs: bool, usage: dict[str, int],
                       include_usage: bool) -> list[dict[str, Any]]:
    def chunk(index: int, text: str, lp: dict[str, Any] | None,
              finish: str | None) -> dict[str, Any]:
        return {**head, "choices": [{"index": index, "text": text, "logprobs": lp,
                                     "finish_reason": finish}]}

    out = []
    for i, a in enumerate(answers):
        whole = completion_logprobs(a, echo) if logprobs and a.entries is not None else None
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


def chat_chunks(head: dict[str, Any], a: Answer, usage: dict[str, int],
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
        lp = [chat_entry(e, text) for e in scored] if a.entries is not None else None
        if text or lp:  # a token ending inside a character adds no text by itself
            out.append(chunk({"content": text}, lp, None))
    out.append(chunk({}, None, a.finish_reason))
    if include_usage:
        out.append({**head, "choices": [], "usage": usage})
    return out


# ------------------------------------------------------------------------------------ live


class TokenText:
    """Called on the model thread with each generated token id; puts on ``queue`` (through
    ``loop``) the text that became safe to send. Safe: the answer so far cut at a stop string
    (then final), else less the last ``len(longest stop) - 1`` characters, which may be the
    start of a stop string still to complete; a token ending inside a character adds nothing
    until the character is complete. Re-reading the pieces of all
    tokens per step is quadratic in the answer's length, cheap next to a forward pass."""

    def __init__(self, scorer: TokenScorer, stops: Sequence[str], loop: asyncio.AbstractEventLoop,
                 queue: asyncio.Queue[str]) -> None:
        self.scorer, self.stops, self.loop, self.queue = scorer, tuple(stops), loop, queue
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.ids: list[int] = []
        self.sent = 0

    def __call__(self, token_id: int) -> None:
        self.ids.append(token_id)
        # a character whose last bytes are still to come reads as U+FFFD at the end: held back
        text = "".join(p.text for p in self.scorer.pieces(self.ids) if not p.special).rstrip("\ufffd")
        cut = cut_at_stop(text, self.stops)
        safe = cut if cut != text else text[: max(self.sent, len(text) - self.hold)]
        if len(safe) > self.sent:
            delta, self.sent = safe[self.sent:], len(safe)
            self.loop.call_soon_threadsafe(self.queue.put_nowait, delta)


async def _deltas(queue: asyncio.Queue[str], task: asyncio.Future[Answer]) -> AsyncIterator[str]:
    """Each text delta as it arrives, until the generation is done and the queue drained
    (the deltas were scheduled on the loop before the job's result, so none is missed)."""
    while not task.done():
        get = asyncio.ensure_future(queue.get())
        waiting: set[asyncio.Future[Any]] = {get, task}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if get.done():
            yield get.result()
        else:
            get.cancel()
    while not queue.empty():
        yield queue.get_nowait()


def live_sse(head: dict[str, Any], generation: Awaitable[Answer], queue: asyncio.Queue[str], *,
             chat: bool, echo: str | None, include_usage: bool) -> StreamingResponse:
    """Stream one generation as it runs (see the module docstring). ``generation`` is started
    with the response and cancelled if the client goes away (a job that has not reached the
    model is then dropped)."""
    if chat:
        head = {**head, "object": "chat.completion.chunk"}

    def chunk(text: str | None, finish: str | None = None, role: bool = False) -> dict[str, Any]:
        if chat:
            delta = {"role": "assistant", "content": ""} if role else (
                {} if text is None else {"content": text})
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None}
        return {**head, "choices": [{**choice, "finish_reason": finish}]}

    async def events() -> AsyncIterator[bytes]:
        task = asyncio.ensure_future(generation)
        try:
            if chat:
                yield _event(chunk(None, role=True))
            if echo:
                yield _event(chunk(echo))
            sent = ""
            async for delta in _deltas(queue, task):
                sent += delta
                yield _event(chunk(delta))
            try:
                answer = task.result()
            except APIError as err:
                yield _event(error_body(err.message, err.type, err.param, err.code))
                return
            rest = answer.text[len(sent):] if answer.text.startswith(sent) else ""
            if rest:
                yield _event(chunk(rest))
            yield _event(chunk(None, answer.finish_reason))
            if include_usage:
                yield _event({**head, "choices": [],
                              "usage": usage(answer.prompt_tokens, answer.completion_tokens)})
            yield b"data: [DONE]\n\n"
        finally:
            if not task.done():
                task.cancel()

    return _response(events())
