"""The request bodies ``llmbench serve`` accepts, and how a bad one is refused.

Everything here runs on the event loop while the body is parsed, before any job reaches the
model thread: a value that is wrong (``n: 0``, ``"stream": "yes"``, five stop strings, a lone
UTF-16 surrogate) or too big for the model (a prompt longer than the window could hold) is a
400 in OpenAI's error shape without tokenizing anything, so one bad or huge request cannot
stall the clients queued behind it (issue 28: a 10 MB prompt held the model thread for 9 s).
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from llmbench.types import ChatMessage, GenerationConfig

MAX_LOGPROBS = 20
MAX_STOP = 4  # OpenAI's limit on stop strings
DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /v1/completions
DEFAULT_CHAT_MAX_TOKENS = 256  # OpenAI's is "the rest of the context"; keep runs bounded
#: A prompt is refused before tokenizing when it has more characters than this many per token
#: of the window: no tokenizer we know of averages that many characters a token, so such a
#: prompt cannot fit, and counting its tokens would only cost the model thread time.
CHARS_PER_TOKEN_BOUND = 32
#: Prompt characters allowed for a model without a known window.
UNBOUNDED_PROMPT_CHARS = 1_000_000

# Parameters that change the answer and are not implemented, with the values that mean
# "off" (accepted). Anything else unknown is ignored, as other compatible servers do.
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
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
    """An answer in OpenAI's error shape (``error_body``) with an HTTP status."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status, message, type, param, code)


def error_body(message: str, type: str, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _encodable(text: str) -> str:
    """Refuse a string that is not valid Unicode text: a lone UTF-16 surrogate (``"\\ud800"``,
    which JSON can spell) made the tokenizer raise ``TypeError``, a 500."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"contains a lone UTF-16 surrogate at character {err.start}; send "
                         "valid Unicode text") from None
    return text


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: StrictBool = False


class Body(BaseModel):
    """What both endpoints share. Booleans are strict (``"stream": "yes"`` is refused, not
    read as true), ``n`` must be at least 1 (``0`` was read as 1) and there are at most
    ``MAX_STOP`` stop strings."""

    model_config = ConfigDict(extra="allow")  # checked against UNSUPPORTED

    model: str
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | Annotated[list[str], Field(max_length=MAX_STOP)] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1)
    best_of: int | None = Field(default=None, ge=1)
    stream: StrictBool | None = None
    stream_options: _StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stop_text(cls, v: str | list[str] | None) -> str | list[str] | None:
        for s in [v] if isinstance(v, str) else v or []:
            _encodable(s)
        return v

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return tuple(s for s in ((self.stop,) if isinstance(self.stop, str) else self.stop) if s)

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def generation(self, max_tokens: int) -> GenerationConfig:
        """Greedy decoding ignores the seed (one config, so requests batch together);
        sampling without a seed draws a fresh one: it must not be silently deterministic."""
        temperature = 1.0 if self.temperature is None else self.temperature
        seed = 0 if temperature == 0 else (self.seed if self.seed is not None
                                           else secrets.randbits(63))
        return GenerationConfig(max_new_tokens=max_tokens, temperature=temperature,
                                top_p=1.0 if self.top_p is None else self.top_p,
                                stop=self.stops(), seed=seed)

    def unsupported(self) -> tuple[str, str] | None:
        """The first parameter that would change the answer but is not implemented, with
        the message that refuses it."""
        for name, value in (self.model_extra or {}).items():
            if name in UNSUPPORTED and value not in UNSUPPORTED[name]:
                return name, (f"{name}={json.dumps(value)[:80]} is not supported by this server "
                              "(it would change the answer); leave it out")
        return None


PromptIn = str | list[int]


class CompletionBody(Body):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(default=None, ge=0)
    echo: StrictBool | None = None
    logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)

    @field_validator("prompt")
    @classmethod
    def _prompt_text(cls, v: Any) -> Any:
        for item in [v] if isinstance(v, str) else v:
            if isinstance(item, str):
                _encodable(item)
        return v

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


class Part(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None

    @field_validator("text")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return None if v is None else _encodable(v)


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list[Part] | None = None

    @field_validator("content")
    @classmethod
    def _content(cls, v: str | list[Part] | None) -> str | list[Part] | None:
        return _encodable(v) if isinstance(v, str) else v


class ChatBody(Body):
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: StrictBool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)


#: Field names, to tell them from pydantic's union-member names in an error's location.
FIELDS = set(CompletionBody.model_fields) | set(ChatBody.model_fields) | {"role", "content"}


def chat_prompt(messages: list[Message]) -> tuple[ChatMessage, ...]:
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


def prompt_chars_limit(window: int | None) -> int:
    return UNBOUNDED_PROMPT_CHARS if window is None else window * CHARS_PER_TOKEN_BOUND


def check_prompt_size(chars: int, window: int | None, param: str) -> None:
    """Refuse, before tokenizing, a prompt too long to fit the window whatever its tokens."""
    limit = prompt_chars_limit(window)
    if chars > limit:
        where = (f"this model's maximum context length is {window} tokens" if window is not None
                 else "this server's limit")
        raise APIError(400, f"The prompt has {chars} characters, more than {limit} ({where}, at "
                       f"most {CHARS_PER_TOKEN_BOUND} characters a token); it was not tokenized. "
                       "Please reduce the prompt.", param=param, code="context_length_exceeded")


def request_validation_error(errors: list[Any]) -> tuple[str, str | None]:
    """(message, param) for pydantic's first error. A body that is not JSON gets no ``param``
    (pydantic's location is then a character offset, not a parameter)."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        where = [str(p) for p in first.get("loc", ()) if p != "body"]
        at = f" (at character {where[0]})" if where else ""
        return f"the body is not valid JSON{at}: {first.get('msg', '')}", None
    # ("body", "prompt", "str") -> "prompt": drop pydantic's union-member names.
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(p for p in loc if not p.isidentifier() or p in FIELDS) or None
    msg = str(first.get("msg", "invalid request"))
    return (f"{param}: {msg}" if param else msg), param
