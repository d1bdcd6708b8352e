"""The frozen data types that flow between the stages.

task -> ``Sample`` -> ``Request`` -> adapter -> ``Response`` -> scorer -> ``MetricValue``.
This module imports nothing from the package so that every stage can depend on it
without creating cycles.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

RequestKind = Literal["classify", "loglikelihood", "generate", "loglikelihood_rolling"]
REQUEST_KINDS: tuple[RequestKind, ...] = ("classify", "loglikelihood", "generate", "loglikelihood_rolling")


class Frozen(BaseModel):
    """Base for value types: immutable, hashable and closed to unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ChatMessage(Frozen):
    role: Literal["system", "user", "assistant"]
    content: str


Prompt = str | tuple[ChatMessage, ...]


class GenerationConfig(Frozen):
    """Decoding settings. Part of every cache key, so keep it small and explicit."""

    max_new_tokens: int = Field(default=64, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class Sample(Frozen):
    """One dataset row after field mapping.

    ``references`` always holds every acceptable answer (one label, one or more
    translations or answers); ``choices`` holds the label names or options of a
    classification / multiple-choice sample.
    """

    id: str
    input: str
    references: tuple[str, ...]
    choices: tuple[str, ...] | None = None
    context: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    # Multiple choice: the index of the right answer in ``choices``. Scoring goes by index, as
    # lm-evaluation-harness does, because two choices of a row may have the same text.
    gold: int | None = None


class Request(Frozen):
    """What a task asks of a model for one sample.

    * ``classify``: ``prompt`` is the text; the adapter returns ``label_scores``.
    * ``loglikelihood``: log P(c | prompt) for each ``c`` in ``continuations`` (all the
      choices of one sample travel together so an adapter can share the context).
    * ``generate``: free text under ``config``.
    * ``loglikelihood_rolling``: log P(prompt) of the whole ``prompt`` text (a document),
      scored in windows of the model's length (lm-evaluation-harness's rolling windows;
      masked LMs answer the pseudo-log-likelihood). The answer is ``logprobs=(total,)`` and
      ``n_scored``, the number of tokens the total covers.
    """

    sample_id: str
    kind: RequestKind
    prompt: Prompt
    continuations: tuple[str, ...] | None = None
    config: GenerationConfig = GenerationConfig()
    # The raw sample text (and QA context), for adapters that do not read prompts,
    # such as the baselines (copy-the-source, lead sentence). Real models ignore them.
    input: str | None = None
    context: str | None = None
    # loglikelihood_rolling: tokens predicted per window after the first (None: a whole
    # window, lm-evaluation-harness's disjoint windows); a smaller stride gives each window
    # more context. Left out of the serialised request when unset, so the cache keys of
    # every other request stay what they were before the field existed.
    stride: int | None = Field(default=None, ge=1)

    @model_serializer(mode="wrap")
    def _without_unset_stride(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.stride is None:
            data.pop("stride", None)
        return data


class Usage(Frozen):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Prompt tokens the API served from its prompt cache (OpenAI's
    # usage.prompt_tokens_details.cached_tokens): part of prompt_tokens, billed cheaper.
    cached_prompt_tokens: int = 0


class Response(Frozen):
    """What an adapter returns for one request. ``error`` is set instead of a value
    when the request failed after its retries; such a sample is never scored."""

    text: str | None = None
    logprobs: tuple[float, ...] | None = None
    greedy_match: tuple[bool, ...] | None = None
    label_scores: dict[str, float] | None = None
    usage: Usage | None = None
    latency_s: float | None = None
    cost_usd: float | None = None
    cached: bool = False
    error: str | None = None
    # Why generation ended: "stop" (EOS or a stop string), "length" (max_new_tokens), or an
    # API's own value ("content_filter", ...); None when unknown or not a generation.
    finish_reason: str | None = None
    # The generated token ids (a final EOS included) when the adapter knows them, so the
    # server can report log-probabilities of the tokens the model produced, not of the
    # re-tokenised text (a byte-piece token would re-encode as several "\ufffd" tokens).
    token_ids: tuple[int, ...] | None = None
    # loglikelihood_rolling: how many tokens ``logprobs[0]`` sums over (token perplexity).
    n_scored: int | None = None
    # How many times the request was sent (1 = no retry), and the time from the first send to
    # the answer including failed attempts and back-off; latency_s is the successful attempt's.
    # Not part of any cache key (keys are built from the request).
    attempts: int = 1
    latency_total_s: float | None = None


class MetricValue(Frozen):
    """A corpus-level score with its bootstrap confidence interval."""

    name: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    higher_is_better: bool = True
    signature: str = ""
