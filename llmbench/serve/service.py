"""The request handling of ``llmbench serve``, apart from FastAPI's routing: check a parsed
body, encode its prompt (size checked first), generate and score through the model worker,
and write the answer as JSON or as a stream."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.responses import StreamingResponse

from llmbench.errors import one_line
from llmbench.models.base import Encoded, GenerateJob, ModelAdapter, ScoreJob, TokenScorer
from llmbench.serve.batch import ModelWorker
from llmbench.serve.schemas import (
    DEFAULT_CHAT_MAX_TOKENS,
    DEFAULT_COMPLETION_MAX_TOKENS,
    APIError,
    Body,
    ChatBody,
    CompletionBody,
    PromptIn,
    chat_prompt,
    check_prompt_size,
)
from llmbench.serve.streaming import TokenText, chat_chunks, completion_chunks, live_sse, sse
from llmbench.serve.wire import Answer, chat_entries, completion_logprobs, usage
from llmbench.types import Prompt, Response
from llmbench.types import Request as LLMRequest

Listener = Callable[[int], None]
#: Why a text prompt can have more tokens than the client counted (lm-eval's rolling
#: log-likelihood with ``tokenized_requests=False``): nothing is added by the server, but a
#: window of token ids cut inside a multi-byte character decodes to U+FFFD, and U+FFFD encodes
#: to three byte tokens, so the text no longer fits where the ids did.
_REPLACEMENT_HINT = (" The prompt holds U+FFFD: if it was decoded from token ids (lm-eval's "
                     "tokenized_requests=False), a character cut at the window's edge became "
                     "U+FFFD, which encodes to more tokens than were decoded; send the token ids.")


def _prompt_chars(prompt: Prompt | list[int]) -> int:
    if isinstance(prompt, str):
        return len(prompt)
    return sum(len(m.content) for m in prompt if not isinstance(m, int))


def _one_lead(enc: Encoded) -> Encoded:
    """A text prompt that already starts with the tokens the model puts in front (its BOS
    written out, as a client that decodes token ids to text sends it: lm-eval's rolling
    windows with ``tokenized_requests=False``) gets no second copy. Otherwise the server would
    add a token the client did not send, and a window that fits as ids would not fit as text."""
    n = enc.n_lead
    if n and enc.ids[n : 2 * n] == enc.ids[:n]:
        return Encoded(ids=enc.ids[n:], text=enc.text, n_lead=0)
    return enc


class Service:
    """One model behind the API (see the package docstring in ``app.py``)."""

    def __init__(self, adapter: ModelAdapter, model_name: str, worker: ModelWorker,
                 scorer: TokenScorer | None) -> None:
        self.adapter, self.model_name, self.worker, self.scorer = (
            adapter, model_name, worker, scorer)
        self.window = scorer.max_length if scorer is not None else None

    def check(self, body: Body, wants_logprobs: bool) -> None:
        if body.model != self.model_name:
            raise APIError(404, f"The model `{body.model}` does not exist (this server has "
                           f"`{self.model_name}`).", param="model", code="model_not_found")
        if (body.n or 1) != 1 or (body.best_of or 1) != 1:
            raise APIError(400, "only n=1 (and best_of=1) is supported", param="n")
        if (refused := body.unsupported()) is not None:
            raise APIError(400, refused[1], param=refused[0], code="unsupported_parameter")
        if wants_logprobs and self.scorer is None:
            raise APIError(400, "log-probabilities are not available for this model (they need "
                           "a causal Hugging Face model)", param="logprobs")

    # -- token-level helpers (on the model thread: the tokenizer is not thread-safe)
    async def encode(self, prompt: Prompt | list[int], param: str) -> Encoded:
        """The prompt as the model reads it. A prompt that cannot fit the window whatever its
        tokens is refused here, before it reaches the model thread."""
        scorer = self.scorer
        assert scorer is not None
        if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
            if self.window is not None and len(prompt) > self.window:
                self.fits(Encoded(ids=tuple(prompt), text=""), 0, param)
        else:
            check_prompt_size(_prompt_chars(prompt), self.window, param)
        try:
            return _one_lead(await self.worker.call(lambda: scorer.encode(prompt)))
        except (ValueError, TypeError) as err:  # ids outside the vocabulary, text it refuses
            raise APIError(400, one_line(err), param=param) from None

    def fits(self, enc: Encoded, max_tokens: int, param: str) -> None:
        limit = self.window
        if limit is not None and len(enc.ids) + max_tokens > limit:
            raise APIError(
                400, f"This model's maximum context length is {limit} tokens. However, you "
                f"requested {len(enc.ids) + max_tokens} tokens ({len(enc.ids)} in the prompt, "
                f"{max_tokens} for the completion). Please reduce the prompt or max_tokens."
                + (_REPLACEMENT_HINT if "\ufffd" in enc.text else ""),
                param=param, code="context_length_exceeded")

    async def _generated(self, job: GenerateJob | LLMRequest,
                         listener: Listener | None = None) -> Response:
        resp = (await self.worker.generate(job, listener) if isinstance(job, GenerateJob)
                else await self.worker.run(job))
        if resp.error:
            raise APIError(500, f"generation failed: {one_line(resp.error)}", type="server_error")
        return resp

    async def prepared(self, prompt: Prompt | list[int], max_tokens: int | None,
                       param: str) -> tuple[Encoded, int]:
        """The encoded prompt and the completion length (``None``: the chat default, less
        when the window has less room), checked against the window."""
        enc = await self.encode(prompt, param)
        if max_tokens is None:
            room = (self.window - len(enc.ids)) if self.window else None
            max_tokens = DEFAULT_CHAT_MAX_TOKENS if room is None else max(1, min(
                DEFAULT_CHAT_MAX_TOKENS, room))
        self.fits(enc, max_tokens, param)
        return enc, max_tokens

    async def generated(self, enc: Encoded, body: Body, max_tokens: int, *, top_n: int | None,
                        echo: bool, stream: bool, listener: Listener | None = None) -> Answer:
        """Generate (and score) one encoded prompt."""
        text, finish, n_generated = "", "length", 0
        ids: tuple[int, ...] = ()
        if max_tokens > 0:
            resp = await self._generated(GenerateJob(enc, body.generation(max_tokens)), listener)
            text, ids = resp.text or "", resp.token_ids or ()
            finish = resp.finish_reason or "length"
            n_generated = resp.usage.completion_tokens if resp.usage else len(ids)
        answer = Answer(enc, enc.text, text, finish, ids, len(enc.ids), n_generated)
        if top_n is not None:
            answer.entries = await self.worker.score(ScoreJob(enc.ids, ids, top_n=top_n,
                                                              echo=echo))
        elif stream and ids and listener is None:
            scorer = self.scorer
            assert scorer is not None
            answer.pieces = (await self.worker.call(
                lambda: scorer.pieces(enc.ids + ids)))[len(enc.ids):]
        return answer

    async def answer(self, prompt: Prompt | list[int], body: Body, max_tokens: int | None,
                     *, param: str, top_n: int | None, echo: bool, stream: bool) -> Answer:
        """Generate (and score) one prompt. ``max_tokens=None``: the chat default."""
        if self.scorer is None:
            return await self._answer_text(prompt, body, max_tokens, param=param)
        enc, max_tokens = await self.prepared(prompt, max_tokens, param)
        return await self.generated(enc, body, max_tokens, top_n=top_n, echo=echo, stream=stream)

    async def _answer_text(self, prompt: Prompt | list[int], body: Body, max_tokens: int | None,
                           *, param: str) -> Answer:
        """A model without token-level access: text prompts through ``adapter.run``."""
        if isinstance(prompt, list):
            raise APIError(400, "token-id prompts need a model with token-level access (a causal "
                           "Hugging Face model); send text", param=param)
        check_prompt_size(_prompt_chars(prompt), None, param)
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
        return Answer(None, prompt_text, text, finish, (), n_prompt, n_completion)

    async def live(self, head: dict[str, Any], prompt: PromptIn | Prompt, body: Body,
                   max_tokens: int | None, *, param: str, chat: bool,
                   echo: bool) -> StreamingResponse | None:
        """A live stream of one generation (``streaming.live_sse``), or ``None`` when this
        request is streamed from its finished answer instead. Errors in the prompt are still
        plain JSON errors: the prompt is encoded and checked before the first byte."""
        if self.scorer is None:
            return None
        enc, max_tokens = await self.prepared(prompt, max_tokens, param)
        if max_tokens == 0:
            return None
        queue: asyncio.Queue[str] = asyncio.Queue()
        listener = TokenText(self.scorer, body.stops(), asyncio.get_running_loop(), queue)
        work = self.generated(enc, body, max_tokens, top_n=None, echo=False, stream=True,
                              listener=listener)
        return live_sse(head, work, queue, chat=chat, echo=enc.text if echo else None,
                        include_usage=body.include_usage())

    # -- endpoints
    async def completions(self, body: CompletionBody) -> dict[str, Any] | StreamingResponse:
        self.check(body, body.logprobs is not None)
        prompts = body.prompts()
        max_tokens = DEFAULT_COMPLETION_MAX_TOKENS if body.max_tokens is None else body.max_tokens
        echo = bool(body.echo)
        head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                "created": int(time.time()), "model": self.model_name}
        if body.stream and len(prompts) == 1 and body.logprobs is None:
            live = await self.live(head, prompts[0], body, max_tokens, param="prompt",
                                   chat=False, echo=echo)
            if live is not None:
                return live
        answers = await asyncio.gather(*(
            self.answer(p, body, max_tokens, param="prompt", top_n=body.logprobs, echo=echo,
                        stream=bool(body.stream))
            for p in prompts))
        total = usage(sum(a.prompt_tokens for a in answers),
                      sum(a.completion_tokens for a in answers))
        if body.stream:
            return sse(completion_chunks(head, answers, echo, body.logprobs is not None, total,
                                         body.include_usage()))
        choices = []
        for i, a in enumerate(answers):
            logprobs = completion_logprobs(a, echo) if a.entries is not None else None
            choices.append({"index": i, "text": a.prompt_text + a.text if echo else a.text,
                            "logprobs": logprobs, "finish_reason": a.finish_reason})
        return {**head, "choices": choices, "usage": total}

    async def chat(self, body: ChatBody) -> dict[str, Any] | StreamingResponse:
        self.check(body, bool(body.logprobs))
        if body.top_logprobs and not body.logprobs:
            raise APIError(400, "top_logprobs needs logprobs=true", param="top_logprobs")
        prompt = chat_prompt(body.messages)
        max_tokens = body.max_completion_tokens or body.max_tokens
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                "created": int(time.time()), "model": self.model_name}
        if body.stream and not body.logprobs:
            live = await self.live(head, prompt, body, max_tokens, param="messages", chat=True,
                                   echo=False)
            if live is not None:
                return live
        a = await self.answer(prompt, body, max_tokens, param="messages",
                              top_n=(body.top_logprobs or 0) if body.logprobs else None,
                              echo=False, stream=bool(body.stream))
        total = usage(a.prompt_tokens, a.completion_tokens)
        if body.stream:
            return sse(chat_chunks(head, a, total, body.include_usage()))
        logprobs = ({"content": chat_entries(a), "refusal": None}
                    if a.entries is not None else None)
        return {**head, "choices": [{"index": 0, "message": {"role": "assistant",
                                                             "content": a.text},
                                     "logprobs": logprobs, "finish_reason": a.finish_reason}],
                "usage": total}
