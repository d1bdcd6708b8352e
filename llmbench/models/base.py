"""The one model-adapter contract: everything the runner, the server and the CLI know about a model.

A backend (built in or a plugin registered under the ``llmbench.models`` entry-point group)
subclasses ``ModelAdapter`` and implements two methods, ``identity`` and ``run``; everything
else has a default that is right for a model that needs no training data, loads nothing
heavy and serves no token-level log-probabilities::

    class EchoAdapter(ModelAdapter):
        name = "echo"
        supports = frozenset({"generate"})

        def identity(self) -> dict[str, Any]:
            return {"backend": "echo"}

        def run(self, requests):
            for i, req in enumerate(requests):
                yield i, Response(text=req.input or "")

Nobody probes an adapter with ``getattr``: a capability is a method of this class, and one
an adapter lacks is a declared default (``supports``, ``token_scorer() -> None``), so the
runner refuses before the first request instead of failing half-way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmbench.errors import UserError
from llmbench.types import Prompt, Request, RequestKind, Response, Sample


class ModelError(UserError):
    """A user-facing problem with a model spec (missing path, unsupported kind, bad option)."""


class ModelAdapter(ABC):
    """A model that answers requests.

    Class or instance attributes:

    * ``name`` — how the model is shown (``hf:path``, ``openai:gpt-4o-mini``);
    * ``supports`` — the request kinds it serves. The runner picks the task's first
      scoring mode in this set, or refuses before any call is made.
    """

    name: str
    supports: frozenset[RequestKind]

    # -- what the model is -----------------------------------------------------------------
    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that determines the model's answers (id, revision or weights hash,
        backend, dtype, ...). Stored with every run; must never contain secrets."""

    def cache_identity(self) -> dict[str, Any]:
        """The part of ``identity`` the response cache keys on. Default: all of it. A local
        folder keys by its content hash, not its path, so another clone reuses the answers."""
        return self.identity()

    def scoring_method(self, kind: RequestKind) -> str:
        """How this adapter serves ``kind`` (e.g. ``head``, ``sum-token-logprobs``,
        ``first-token-logprobs``). Recorded with every result, so numbers made by different
        methods are never compared silently."""
        return f"{self.identity().get('backend', self.name)}-{kind}"

    def adapt_request(self, request: Request) -> Request:
        """The request as this adapter reads it; it is what gets cached, stored and sent.

        Default: unchanged. A classifier head reads the sample's raw input rather than the
        task's rendered prompt, and says so here, so the task never needs to know which
        kind of model will answer.
        """
        return request

    # -- life cycle ------------------------------------------------------------------------
    def fit(self, train: Sequence[Sample]) -> None:  # noqa: B027 - a deliberate no-op default
        """Learn from the task's training split before any request (baselines such as
        majority-class). Default: nothing to learn."""

    def prepare(self) -> None:  # noqa: B027 - a deliberate no-op default
        """Load weights or open connections. Called once, only when the response cache cannot
        answer everything, so a fully cached rerun never loads a model. ``run`` must also
        work without it (it prepares lazily)."""

    @abstractmethod
    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        """Yield ``(index into requests, Response)`` once per request, in any order.

        Any order lets concurrent backends report answers as they arrive and the runner cache
        each at once (which is what makes an interrupted run resumable). Batching, sorting and
        concurrency live inside the adapter. A request that fails after retries is a
        ``Response(error=...)``, never an exception.
        """

    def close(self) -> None:  # noqa: B027 - a deliberate no-op default
        """Release weights, threads and connections. Default: nothing held."""

    # -- optional capabilities -------------------------------------------------------------
    def token_scorer(self) -> TokenScorer | None:
        """Per-token log-probabilities over arbitrary text, which ``llmbench serve`` needs for
        ``echo`` + ``logprobs``. ``None`` (the default) when the model has none (an API, a
        classifier head, an encoder-decoder's input); the server then answers such requests 400."""
        return None


# -- token-level scoring (the server's echo / logprobs) --------------------------------------


@dataclass(frozen=True)
class TokenLogprob:
    """One position: the token, where it starts in the text, its log-probability given
    everything before it (``None`` for the very first token), and the top alternatives at
    that position (best first)."""

    token: str
    token_id: int
    offset: int
    logprob: float | None
    top: tuple[tuple[str, float], ...] = ()


@dataclass
class ScoreJob:
    """Score ``prompt`` (+ ``completion``, tokenised separately, as generated).

    ``echo``: return the prompt's tokens too. ``next_if_empty``: when the completion has no
    tokens, return the model's most likely next token instead, so a one-token logprobs
    request always gets the first-position distribution.
    """

    prompt: Prompt
    completion: str = ""
    top_n: int = 0
    echo: bool = False
    next_if_empty: bool = False
    # Filled in by ``TokenScorer.prepare``.
    text: str = ""
    ids: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    n_prompt: int = 0
    n_lead: int = 0


class TokenScorer(ABC):
    """Teacher-forced per-token log-probabilities, as an adapter's ``token_scorer`` returns."""

    @abstractmethod
    def render(self, prompt: Prompt) -> tuple[str, bool]:
        """The prompt as text, and whether it already carries its special tokens."""

    @abstractmethod
    def count(self, text: str) -> int:
        """Tokens in ``text``, without special tokens (for usage counts)."""

    @abstractmethod
    def prepare(self, job: ScoreJob) -> None:
        """Tokenise ``job`` in place; raises ``ValueError`` when it does not fit the model."""

    @abstractmethod
    def score(self, jobs: Sequence[ScoreJob]) -> list[list[TokenLogprob]]:
        """The log-probabilities of every prepared job, in order."""
