"""Named registries for pluggable components, with lazy targets and entry points.

A target is either the object itself or a lazy ``"module:attr"`` string that is imported
only when looked up — so listing tasks or parsing a CLI never imports torch. Third parties
add components through the entry-point group ``llmbench.<kind>s`` (``llmbench.tasks``,
``llmbench.models``, ``llmbench.metrics``), read on first lookup. A plugin that cannot be
loaded, or that is not what its registry holds, is a one-line ``RegistryError`` naming the
plugin's distribution, not a traceback from inside it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from llmbench.errors import UserError, one_line

T = TypeVar("T")


class RegistryError(UserError, LookupError):
    """An unknown name, or a plugin that cannot be loaded; the message says which and the fix."""


class Registry(Generic[T]):
    def __init__(self, kind: str, *, protocol: type | None = None) -> None:
        """``protocol``: a ``runtime_checkable`` protocol every loaded target must satisfy."""
        self.kind = kind
        self._protocol = protocol
        self._items: dict[str, T | str] = {}
        self._origin: dict[str, str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, target: T | str, *, origin: str = "builtin") -> None:
        """Register ``target`` (the object, or a lazy ``"module:attr"`` string) under ``name``.

        No decorator form: a decorator typed by this registry's ``T`` would turn a decorated
        class into ``T`` for the type checker; ``tasks.register_task`` is the typed decorator.
        An object target is checked against the registry's protocol now; a lazy one when loaded.
        """
        if not isinstance(target, str):
            self._check(name, target, origin)
        self._items[name] = target
        self._origin[name] = origin

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=f"llmbench.{self.kind}s"):
            if ep.name not in self._items:
                self._items[ep.name] = ep.value
                self._origin[ep.name] = f"plugin:{ep.dist.name if ep.dist else '?'}"

    def _check(self, name: str, obj: object, origin: str) -> None:
        if self._protocol is not None and not isinstance(obj, self._protocol):
            raise RegistryError(f"{self.kind} '{name}' ({origin}) is {obj!r}, not a {self.kind} "
                                f"({self._protocol.__name__}) — fix or uninstall the plugin")

    def _import(self, name: str, target: str) -> object:
        module, _, attr = target.partition(":")
        origin = self._origin.get(name, "?")
        try:
            obj: object = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except UserError:
            raise
        except Exception as exc:
            if not origin.startswith("plugin:"):
                raise  # a built-in that fails to import is a bug of ours: keep its traceback
            raise RegistryError(f"{self.kind} '{name}' ({origin}) could not be loaded from {target}: "
                                f"{type(exc).__name__}: {one_line(exc, 300)} — fix or uninstall the plugin") from exc
        self._check(name, obj, origin)
        return obj

    def get(self, name: str) -> T:
        self._load_entry_points()
        if name not in self._items:
            known = ", ".join(sorted(self._items)) or "none"
            raise RegistryError(f"unknown {self.kind} '{name}' (known: {known})")
        target = self._items[name]
        if isinstance(target, str) and ":" in target:
            obj = self._import(name, target)
            self._items[name] = obj  # type: ignore[assignment]
            return obj  # type: ignore[return-value]
        return target  # type: ignore[return-value]

    def origin(self, name: str) -> str:
        self._load_entry_points()
        return self._origin.get(name, "?")

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


@runtime_checkable
class MetricClass(Protocol):
    """What the layers beside ``llmbench.metrics`` may ask of a registered metric class: the
    value names it reports (``llmbench.metrics.base.Metric.value_names``; None when known only
    once it runs) and that it carries a ``declaration``. Tasks check a task file's
    ``primary_metric`` through this without importing the metrics package."""

    declaration: Any

    def __call__(self, *, labels: Sequence[str] | None = ..., **args: Any) -> Any: ...

    def value_names(self, args: Mapping[str, Any], labels: Sequence[str] | None) -> frozenset[str] | None: ...


#: A metric name of this form loads a Hugging Face ``evaluate`` module by Hub name or local
#: path (``llmbench.metrics.hf_evaluate``); every other metric name is looked up in ``metrics``.
EVALUATE_PREFIX = "evaluate:"

# The registries. Built-in entries are lazy strings so that importing this is free.
tasks: Registry[Callable[..., object]] = Registry("task")
models: Registry[Callable[..., object]] = Registry("model")
metrics: Registry[MetricClass] = Registry("metric", protocol=MetricClass)

#: Where each built-in metric class lives; what a metric *is* (values, scale, direction,
#: indicators, stats version) it declares itself (``llmbench.metrics.base.Declaration``).
_BUILTIN_METRICS = {
    "accuracy": "llmbench.metrics.classification:Accuracy",
    "f1": "llmbench.metrics.classification:F1",
    "exact_match": "llmbench.metrics.qa:ExactMatch",
    "lmeval_exact_match": "llmbench.metrics.lmeval:LmEvalExactMatch",
    "squad_f1": "llmbench.metrics.qa:SquadF1",
    "squad": "llmbench.metrics.qa:SquadV1",
    "squad_v2": "llmbench.metrics.qa:SquadV2",
    "bleu": "llmbench.metrics.translation:Bleu",
    "chrf": "llmbench.metrics.translation:Chrf",
    "ter": "llmbench.metrics.translation:Ter",
    "rouge": "llmbench.metrics.summarization:Rouge",
    "acc": "llmbench.metrics.multiple_choice:ChoiceAccuracy",
    "perplexity": "llmbench.metrics.perplexity:Perplexity",
    "continuation": "llmbench.metrics.continuation:ContinuationLikelihood",
    "calibration": "llmbench.metrics.calibration:Calibration",
    # written by `llmbench judge` from a judge model's verdicts (never computed from a task's
    # answers); registered so that reports, compare and the gate rebuild them from the store
    "judge_score": "llmbench.metrics.judged:JudgeScore",
    "judge_pairwise": "llmbench.metrics.judged:JudgePairwise",
}
for _name, _target in _BUILTIN_METRICS.items():
    metrics.register(_name, _target)

#: Metrics a command writes (``llmbench judge``), never computed from a task's answers: a task
#: file may not name them, so the names offered to task files leave them out.
COMMAND_METRICS = frozenset({"judge_score", "judge_pairwise"})


def task_metric_names() -> list[str]:
    """Registered metric names a task file may use (built-in and plugin)."""
    return [name for name in metrics.names() if name not in COMMAND_METRICS]
