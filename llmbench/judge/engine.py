"""Asking a judge: any model spec behind the one adapter contract, with the response cache.

The judge is loaded with ``models.load_adapter`` like any evaluated model (``hf:``, ``openai:``,
``smollm2``, a plugin), its requests are ordinary ``generate`` requests, and they go through
the same content-keyed ``ResponseCache`` the runner uses: the key covers the judge's cache
identity and the whole rendered request (prompt and decoding), so a rerun of the same
judgement is answered from the cache without loading the judge, and a reworded prompt or
another judge misses it. A request that fails after the adapter's retries comes back as an
error (that sample is not judged), never as a verdict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmbench.cache import ResponseCache, request_key
from llmbench.judge.prompts import JudgeError, JudgePrompt
from llmbench.models import ModelAdapter, load_adapter
from llmbench.types import Prompt, Request, Response

#: The "task" part of a judge request's cache key (with a version, bumped if the request
#: layout of judgements ever changes meaning).
CACHE_TASK = "llmbench-judge"
CACHE_VERSION = 1


@dataclass
class JudgeUsage:
    """What the judge cost: tokens, money (API judges), seconds, cache hits and misses."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_s: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    errors: int = 0

    def add(self, response: Response) -> None:
        if response.cached:
            self.cache_hits += 1
        else:
            self.cache_misses += 1
        if response.error is not None:
            self.errors += 1
            return
        if response.usage is not None:
            self.prompt_tokens += response.usage.prompt_tokens
            self.completion_tokens += response.usage.completion_tokens
        if response.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + response.cost_usd
        self.latency_s += response.latency_s or 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Judge:
    """A loaded judge: its spec, adapter, prompt, and the cache in front of it."""

    spec: str
    adapter: ModelAdapter
    prompt: JudgePrompt
    cache: ResponseCache | None
    usage: JudgeUsage = field(default_factory=JudgeUsage)
    _prepared: bool = False

    @classmethod
    def load(cls, spec: str, options: dict[str, Any], prompt: JudgePrompt,
             cache: ResponseCache | None) -> Judge:
        adapter = load_adapter(spec, options)
        if prompt.method not in adapter.supports:
            raise JudgeError(f"judge '{spec}' cannot answer by {prompt.method} (it serves "
                             f"{', '.join(sorted(adapter.supports)) or 'nothing'}) — pick another judge or "
                             "--verdict-by")
        return cls(spec, adapter, prompt, cache)

    def identity(self, **extra: Any) -> dict[str, Any]:
        """What the judged numbers depend on: the judge model, the prompt and decoding."""
        return {"spec": self.spec, "model": self.adapter.identity(), "chat": self.prompt.chat,
                "method": self.prompt.method,
                "config": self.prompt.config.model_dump(mode="json"),
                "prompt_fingerprint": self.prompt.fingerprint(**extra)}

    def fingerprint(self, **extra: Any) -> str:
        """16 hex of ``identity``: changes with the judge model, its prompt, decoding or scale."""
        blob = json.dumps(self.identity(**extra), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def ask(self, prompts: Sequence[tuple[str, Prompt]], options: Sequence[str]) -> list[Response]:
        """The judge's answers to ``(item id, prompt)`` pairs, in order; cached answers first,
        the rest from the adapter (loaded only when something is missing).

        ``options`` are the verdicts the scale allows. By ``loglikelihood`` the judge is asked
        for the log-probability of each, and its answer's text becomes the most likely one (a
        plain prompt gets them with a leading space, as a continuation of "Score:"); by
        ``generate`` they are not used (the written verdict is parsed by the caller).
        """
        by_ll = self.prompt.method == "loglikelihood"
        continuations = tuple(o if self.prompt.chat else f" {o}" for o in options) if by_ll else None
        requests = [self.adapter.adapt_request(Request(
            sample_id=item, kind=self.prompt.method, prompt=prompt, config=self.prompt.config,
            continuations=continuations)) for item, prompt in prompts]
        key_identity = self.adapter.cache_identity()
        keys = [request_key(key_identity, CACHE_TASK, CACHE_VERSION, r) for r in requests]
        found = self.cache.get_many(keys) if self.cache is not None else {}
        out: list[Response | None] = [found.get(k) for k in keys]
        todo = [i for i, r in enumerate(out) if r is None]
        if todo:
            if not self._prepared:
                self.adapter.prepare()
                self._prepared = True
            try:
                for j, response in self.adapter.run([requests[i] for i in todo]):
                    out[todo[j]] = response
                    if self.cache is not None:
                        self.cache.put(keys[todo[j]], response)
            finally:
                if self.cache is not None:
                    self.cache.flush()
        answers = [r if r is not None else Response(error="the judge returned no answer") for r in out]
        for r in answers:
            self.usage.add(r)
        return [_most_likely(r, options) for r in answers] if by_ll else answers

    def close(self) -> None:
        self.adapter.close()


def _most_likely(response: Response, options: Sequence[str]) -> Response:
    """A log-likelihood answer as the verdict text: the option with the highest log-probability
    (the first of equals)."""
    if response.error is not None:
        return response
    scores = response.logprobs or ()
    if len(scores) != len(options):
        return response.model_copy(update={"error": f"the judge scored {len(scores)} of {len(options)} options"})
    best = max(range(len(options)), key=lambda k: (scores[k], -k))
    return response.model_copy(update={"text": options[best]})


def prompt_text(prompt: Prompt) -> str:
    """A prompt as stored text (chat messages as JSON, as the runner stores them)."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps([m.model_dump() for m in prompt], ensure_ascii=False)
