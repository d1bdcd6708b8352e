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


#: The only option a baseline reads; anything else (``--model-arg foo=1``, a suite's
#: ``options:``) is a typo or meant for another backend, and used to be silently ignored.
OPTIONS = ("seed",)


def from_spec(name: str, options: dict[str, Any]) -> BaselineAdapter:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ModelError(f"model 'baseline:{name}': unknown option(s) {', '.join(unknown)} "
                         f"(from --model-arg or the suite's options:) — baselines take only: "
                         f"{', '.join(OPTIONS)}")
    seed = options.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ModelError(f"model 'baseline:{name}': option seed={seed!r} is not an integer — "
                         "use e.g. --model-arg seed=1")
    return BaselineAdapter(name, seed=seed)
