"""The one model-adapter contract every backend implements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from llmbench.types import Request, RequestKind, Response


class ModelError(Exception):
    """A user-facing problem with a model spec (missing path, unsupported kind, ...).

    The CLI prints ``str(err)`` as one line and exits with code 2.
    """


@runtime_checkable
class ModelAdapter(Protocol):
    """A model that can answer requests.

    ``run`` yields ``(index, response)`` pairs, one per request, in any order, so that
    concurrent backends can report as results arrive and the runner can cache each
    one at once (which is what makes an interrupted run resumable). Batching, sorting
    and concurrency live inside the adapter.
    """

    name: str
    supports: frozenset[RequestKind]

    def identity(self) -> dict[str, Any]:
        """Everything that determines the model's answers (id, revision or weights
        hash, backend, dtype, ...). Goes into the cache key and the run record; must
        never contain secrets."""
        ...

    # Optional: ``cache_identity() -> dict`` — the part of ``identity`` the response cache
    # keys on, when some of it (a local folder path) says where a model is, not what it is.

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]: ...

    def close(self) -> None: ...
