"""Sanity baselines as ordinary adapters, so every leaderboard has its floor rows.

* ``baseline:majority`` — the most frequent training label (``fit`` is given the
  task's training samples; without them, the first label).
* ``baseline:random`` — a uniformly random label, seeded per sample id so the answer
  does not depend on batch order or ``--limit``.
* ``baseline:copy`` — the source text as its own translation.
* ``baseline:lead`` — the first sentence of the input (summarization).
* ``baseline:first-sentence`` — the first sentence of the context (QA).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from llmbench.models.base import ModelAdapter, ModelError
from llmbench.types import Request, RequestKind, Response, Sample

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
NAMES = ("majority", "random", "copy", "lead", "first-sentence")


def first_sentence(text: str) -> str:
    text = text.strip()
    return _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""


class BaselineAdapter(ModelAdapter):
    def __init__(self, kind: str, *, seed: int = 0) -> None:
        if kind not in NAMES:
            raise ModelError(f"unknown baseline '{kind}' — use one of: {', '.join(NAMES)}")
        self.kind = kind
        self.seed = seed
        self.name = f"baseline:{kind}"
        self.supports: frozenset[RequestKind] = (
            frozenset({"loglikelihood"}) if kind in {"majority", "random"} else frozenset({"generate"})
        )
        self._majority: str | None = None
        self._majority_index = 0

    def fit(self, train: Sequence[Sample]) -> None:
        """Learn the majority label from training samples (the only baseline that learns)."""
        counts = Counter(s.references[0] for s in train)
        if counts:
            self._majority = max(sorted(counts), key=lambda lab: counts[lab])
            choices = train[0].choices or ()
            self._majority_index = choices.index(self._majority) if self._majority in choices else 0

    def scoring_method(self, kind: RequestKind) -> str:
        return f"baseline-{self.kind}"

    def identity(self) -> dict[str, Any]:
        return {"backend": "baseline", "kind": self.kind, "seed": self.seed, "majority": self._majority}

    def _answer(self, req: Request) -> Response:
        if req.kind == "loglikelihood":
            conts = req.continuations or ()
            if self.kind == "majority":
                pick = self._majority_index
            else:
                digest = hashlib.sha256(f"{self.seed}:{req.sample_id}".encode()).digest()
                pick = int.from_bytes(digest[:8], "big") % max(len(conts), 1)
            return Response(logprobs=tuple(0.0 if i == pick else -1.0 for i in range(len(conts))))
        if self.kind == "copy":
            return Response(text=req.input or "")
        if self.kind == "lead":
            return Response(text=first_sentence(req.input or ""))
        return Response(text=first_sentence(req.context or req.input or ""))

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for i, req in enumerate(requests):
            t = time.perf_counter()
            resp = self._answer(req)
            yield i, resp.model_copy(update={"latency_s": time.perf_counter() - t})


def from_spec(name: str, options: dict[str, Any]) -> BaselineAdapter:
    return BaselineAdapter(name, seed=int(options.get("seed", 0)))
