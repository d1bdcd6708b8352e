"""A model that only waits: fixed latency per batch, no CPU work, deterministic answers.

It stands in for a remote GPU when measuring orchestration (``bench/scale.py``: 64
replicas on a 2-core machine) and for a slow model in the executor tests (a replica or
the driver killed mid-run). Not a registered backend: a benchmark or test registers it
(``registry.models.register("latency", "llmbench.executors.simulate:factory")``) and the
Ray executor ships the factory to its replicas.

Options: ``latency`` (seconds per batch), ``batch`` (requests per batch), ``log`` (a
file that gets one line per request answered, ``sample_id pid``: what tests count to
prove no request was sent twice), ``fail`` (a message: ``run`` raises it as a
``ModelError``, as a model that cannot serve would).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from llmbench.models.base import ModelAdapter, ModelError
from llmbench.types import Request, RequestKind, Response


class LatencyAdapter(ModelAdapter):
    """Answers every kind; a loglikelihood answer is seeded by the sample id, a generation
    echoes the input, so results depend on nothing but the requests."""

    supports: frozenset[RequestKind] = frozenset({"loglikelihood", "generate"})

    def __init__(self, name: str, *, latency: float, batch: int, log: str | None, fail: str | None = None) -> None:
        self.name = f"latency:{name}"
        self.latency, self.batch, self.log, self.fail = latency, batch, log, fail

    def identity(self) -> dict[str, Any]:
        return {"backend": "latency", "name": self.name}

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        if self.fail:
            raise ModelError(self.fail)
        return self._run(requests)

    def _run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for start in range(0, len(requests), self.batch):
            part = requests[start:start + self.batch]
            if self.latency:
                time.sleep(self.latency)
            if self.log:
                with open(self.log, "a", encoding="utf-8") as out:  # one write per batch: atomic append
                    out.write("".join(f"{r.sample_id} {os.getpid()}\n" for r in part))
            for j, req in enumerate(part):
                yield start + j, self._answer(req)

    @staticmethod
    def _answer(req: Request) -> Response:
        if req.kind == "loglikelihood":
            conts = req.continuations or ()
            digest = hashlib.sha256(req.sample_id.encode()).digest()
            return Response(logprobs=tuple(-((digest[i % 32] + 1) / 64) for i in range(len(conts))))
        return Response(text=req.input or "", finish_reason="stop")


def factory(name: str, options: dict[str, Any]) -> LatencyAdapter:
    unknown = sorted(set(options) - {"latency", "batch", "log", "fail"})
    if unknown:
        raise ModelError(f"model 'latency:{name}': unknown option(s) {', '.join(unknown)} — it takes latency, "
                         "batch, log, fail")
    return LatencyAdapter(name, latency=float(options.get("latency", 0.0)), batch=int(options.get("batch", 1)),
                          log=options.get("log"), fail=options.get("fail"))
