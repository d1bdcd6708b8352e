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
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from llmbench.errors import UserError
from llmbench.types import GenerationConfig, Prompt, Request, RequestKind, Response, Sample


class ModelError(UserError):
    """A user-facing problem with a model spec (missing path, unsupported kind, bad option)."""


def answer_options(config: BaseModel, *, in_identity: frozenset[str], neutral: frozenset[str]) -> dict[str, Any]:
    """The options of ``config`` that can change an answer and ``identity`` does not already
    say, for an adapter to add to its identity (and so to the response-cache key).

    Every field of the options model is classified once, beside the model: ``in_identity``
    (identity records it, usually resolved: ``dtype=auto`` as ``float32``), ``neutral`` (it
    cannot change an answer: batch sizes, timeouts, retries) or, by default, answer-changing.
    So a new option enters the cache key unless someone declares it neutral on purpose; a
    cache that silently answered ``max_length=64`` with full-window scores is the failure
    this prevents. Only values that differ from the field's default are returned, so the keys
    of runs made before an option existed (at its default) stay what they were.
    """
    fields = type(config).model_fields
    unknown = sorted((in_identity | neutral) - set(fields))
    if unknown:
        raise TypeError(f"{type(config).__name__} has no option(s) {unknown} to classify")
    out: dict[str, Any] = {}
    for name, info in fields.items():
        if name in in_identity or name in neutral:
            continue
        value = getattr(config, name)
        if value != info.get_default(call_default_factory=True):
            out[name] = config.model_dump(mode="json", include={name})[name]
    return out


class ModelAdapter(ABC):
    """A model that answers requests.

    Class or instance attributes:

    * ``name`` — how the model is shown (``hf:path``, ``openai:gpt-4o-mini``);
    * ``supports`` — the request kinds it serves. The runner picks the task's first
      scoring mode in this set, or refuses before any call is made;
    * ``streams_answers`` — ``run`` yields each answer as soon as it exists (a pool of
      remote replicas; a local model that yields batch by batch, or row by row as its
      generations end), so the runner hands it whole chunks (``run_chunks``): each answer
      is cached as it arrives (the cache commits at least every second), while small pieces
      would leave replicas idle and a local model's batches could not stay full (each piece
      would drain alone). Default False: an adapter that may answer a whole request list at
      once gets checkpoint-sized pieces instead.
    """

    name: str
    supports: frozenset[RequestKind]
    streams_answers: bool = False

    # -- what the model is -----------------------------------------------------------------
    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that determines the model's answers (id, revision or weights hash,
        backend, dtype, ...). Stored with every run; must never contain secrets."""

    def describe(self) -> dict[str, Any]:
        """What a report shows about the model, beyond ``identity``: e.g. ``finetuned_from``,
        ``finetuned_on``, ``arch``, ``dtype``, ``quantization``. Captured by the runner and
        stored with every run, because a report is built from the store alone, long after the
        model folder may have moved or been deleted. Default: nothing to add. Never secrets."""
        return {}

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

    def take_scoring_notes(self) -> list[str]:
        """What a reader of the results should know about how this adapter actually computed
        the answers of its ``run`` calls since the last call of this method, and forget it.

        Short human sentences, one per distinct event, each saying what ran instead and why,
        e.g. ``"generation: this model's KV cache cannot be shared row-wise (...);
        transformers' generate ran instead — no continuous batching, no shared prefixes;
        answers are unaffected"``. Never secrets, never per-request detail. The runner takes
        them before and after a run and stores the second set with the run (``RunInfo.notes``),
        so a note belongs to the run whose answers took the fallback, even when one adapter
        answers a whole suite. Default: nothing to note.
        """
        return []

    def run_chunks(self, chunks: Iterator[Sequence[Request]]) -> Iterator[tuple[int, int, Response]]:
        """``run`` over a stream of request lists, yielding ``(chunk number, index in that
        chunk, Response)``; the runner uses it for an adapter that ``streams_answers``. An
        adapter may take chunk k+1 before chunk k's last answer is back, to keep a pool of
        replicas busy across the chunks (``RayModel``); answers of different chunks may then
        interleave. Default: each chunk's ``run`` in turn."""
        for c, requests in enumerate(chunks):
            if requests:
                for j, response in self.run(requests):
                    yield c, j, response

    # -- optional capabilities -------------------------------------------------------------
    def token_scorer(self) -> TokenScorer | None:
        """Token-level access (token-id prompts, generated ids, per-token log-probabilities),
        which ``llmbench serve`` needs for ``echo`` + ``logprobs``. ``None`` (the default) when
        the model has none (an API, a classifier head, an encoder-decoder's input); the server
        then answers such requests 400."""
        return None


# -- token-level access (the server's token-id prompts, echo and logprobs) -------------------


@dataclass(frozen=True)
class Encoded:
    """A prompt as the model reads it: ``ids`` (the lead special tokens included), the prompt
    as ``text`` (rendered chat template, or the decoded ids), and ``n_lead``, how many ids
    in front the model added itself (BOS before plain text) that ``text`` does not show."""

    ids: tuple[int, ...]
    text: str
    n_lead: int = 0


@dataclass(frozen=True)
class TopToken:
    """An alternative at one position. ``token`` spells the token on its own: its text, or
    ``bytes:\\xe4`` (OpenAI's notation) when its bytes are not whole UTF-8 characters."""

    token_id: int
    token: str
    raw: bytes
    logprob: float


@dataclass(frozen=True)
class TokenLogprob:
    """One position of a scored sequence.

    ``text`` is the characters this token completes, so the texts of consecutive tokens
    concatenate to the decoded sequence: a token that ends inside a multi-byte character has
    ``""`` and the token completing it carries the whole character. ``raw`` holds the token's
    own bytes. ``logprob`` is log P(token | everything before it), ``None`` for the very
    first token of a sequence; ``top`` the best alternatives there, best first.
    """

    token_id: int
    text: str
    raw: bytes
    logprob: float | None
    top: tuple[TopToken, ...] = ()
    special: bool = False


@dataclass(frozen=True)
class ScoreJob:
    """Score ``completion_ids`` after ``prompt_ids`` (both exactly as the model saw or made
    them). ``echo``: return the prompt's positions too. ``top_n``: alternatives per position."""

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...] = ()
    top_n: int = 0
    echo: bool = False


@dataclass(frozen=True)
class GenerateJob:
    """Generate after ``prompt`` (already encoded) under ``config``."""

    prompt: Encoded
    config: GenerationConfig


class TokenScorer(ABC):
    """Token-level access to a model, as an adapter's ``token_scorer`` returns: encoding,
    generation from token ids and teacher-forced per-token log-probabilities.

    Why a second interface next to ``ModelAdapter.run``: an OpenAI-compatible server must
    accept token-id prompts and report the log-probabilities of the very tokens the model
    produced (a byte-piece token re-encoded from text would become several tokens), which
    text-level requests cannot express. ``max_length`` is the model's window (``None``:
    unbounded).
    """

    max_length: int | None = None

    @abstractmethod
    def encode(self, prompt: Prompt | Sequence[int]) -> Encoded:
        """The model's input for a text or chat prompt (as ``ModelAdapter.run`` would feed
        it, BOS included) or for token ids (taken as they are). Raises ``ValueError`` for ids
        outside the vocabulary."""

    @abstractmethod
    def generate(self, jobs: Sequence[GenerateJob]) -> list[Response]:
        """One ``Response`` per job, in order, with ``text``, ``usage``, ``finish_reason`` and
        ``token_ids``: the ids behind ``text`` (cut after a stop string) plus a final EOS."""

    @abstractmethod
    def score(self, jobs: Sequence[ScoreJob]) -> list[list[TokenLogprob]]:
        """Per-position log-probabilities of every job, in order."""

    @abstractmethod
    def pieces(self, ids: Sequence[int]) -> list[TokenLogprob]:
        """The tokens of ``ids`` with ``text`` and ``raw`` set and no log-probabilities
        (for streaming a generated answer token by token)."""
