"""Where a plan's models answer: in this process (``local``, the default) or on Ray (``ray``).

An executor only decides *where* an adapter's ``run`` happens. It hands the runner a
``ModelAdapter`` either way, so ``runner.evaluate`` is the same code for both: the cache
lookups, cache writes and store writes stay in the driver process, which is what keeps one
writer per cache and store however many replicas answer.

Placement options (``replicas``, ``num_cpus``, ``num_gpus``, ``resources``, ``shard_size``)
sit in a model's ``options`` next to the adapter's own, so one suite file describes a model
once for both executors. They never reach the adapter (whose options are closed to unknown
keys) and are not stored with the run: where a model ran does not change its answers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Literal, get_args

from pydantic import Field, ValidationError

from llmbench.errors import UserError, require_extra, validation_problem
from llmbench.models.base import ModelAdapter
from llmbench.types import Frozen

#: The executors, named once: suites, ``--executor`` and ``llmbench.evaluate`` all check against this.
ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[ExecutorName, ...] = get_args(ExecutorName)


class ExecutorError(UserError):
    """An executor cannot start or lost its workers; one line, exit 2."""


class Placement(Frozen):
    """Where and how many copies of a model run (read by the ``ray`` executor only).

    ``num_cpus`` may be fractional, so several replicas of a tiny model pack onto one core;
    ``num_gpus: 1`` gives each replica its own GPU; ``resources`` names custom node
    resources (``{"node2": 1}``) to pin replicas to nodes that declare them.
    """

    replicas: int = Field(default=1, ge=1)
    num_cpus: float = Field(default=1.0, ge=0)
    num_gpus: float = Field(default=0.0, ge=0)
    resources: dict[str, float] = Field(default_factory=dict)
    # Requests per shard (the unit a replica answers and the driver caches); None: about
    # eight shards per replica per runner chunk, so a slow shard holds up little.
    shard_size: int | None = Field(default=None, ge=1)


PLACEMENT_KEYS = frozenset(Placement.model_fields)


def split_options(spec: str, options: dict[str, Any]) -> tuple[dict[str, Any], Placement]:
    """``(adapter options, placement)`` from a model's options."""
    adapter_options = {k: v for k, v in options.items() if k not in PLACEMENT_KEYS}
    raw = {k: v for k, v in options.items() if k in PLACEMENT_KEYS}
    try:
        placement = Placement.model_validate(raw)
    except ValidationError as err:
        loc, _, text = validation_problem(err)
        raise ExecutorError(f"model '{spec}': placement option '{loc}': {text} — fix it in the "
                            "suite's options: or --model-arg") from None
    return adapter_options, placement


def adapter_options(options: dict[str, Any]) -> dict[str, Any]:
    """A model's options without the placement keys: what is stored with a run."""
    return {k: v for k, v in options.items() if k not in PLACEMENT_KEYS}


class Executor(ABC):
    """Builds the adapters of a plan and owns whatever they run on."""

    name: ExecutorName

    @abstractmethod
    def adapter(self, spec: str, options: dict[str, Any]) -> ModelAdapter:
        """An adapter for ``spec``; cheap (weights and workers start on ``prepare``), so a
        bad spec in a grid fails before the first run."""

    def describe(self, adapter: ModelAdapter) -> str | None:
        """A few words for the progress line (``ray ×4``); None: nothing to add."""
        return None

    def chunk_samples(self, adapter: ModelAdapter, default: int) -> int:
        """How many samples the runner should hand over at once (more replicas need more
        work in flight to stay busy)."""
        return default

    def close(self) -> None:  # noqa: B027 - a deliberate no-op default
        """Release what the executor started (a local Ray instance)."""


def get_executor(name: str, address: str | None = None) -> Executor:
    """The executor called ``name``; Ray is imported only when asked for."""
    if name == "local":
        if address is not None:
            raise ExecutorError("a Ray address was given but the executor is local — add --executor ray "
                                "(or 'executor: ray' in the suite), or drop the address")
        from llmbench.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "ray":
        require_extra("ray", "--executor ray", "ray")
        from llmbench.executors.ray import RayExecutor

        return RayExecutor(address)
    raise ExecutorError(f"unknown executor '{name}' — use one of: {', '.join(EXECUTORS)}")
