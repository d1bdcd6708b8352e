"""Metric names as task files write them -> metric objects.

Factories are imported on first use so listing names (``llmbench tasks``) does not pay
for importing scikit-learn, sacrebleu and rouge_score.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from llmbench.metrics.base import Metric, MetricError

EVALUATE_PREFIX = "evaluate:"

# name -> (module under llmbench.metrics, factory attribute)
_REGISTRY: dict[str, tuple[str, str]] = {
    "accuracy": ("classification", "Accuracy"),
    "f1": ("classification", "F1"),
    "exact_match": ("qa", "exact_match"),
    "squad_f1": ("qa", "squad_f1_metric"),
    "squad": ("qa", "squad"),
    "squad_v2": ("qa", "squad_v2"),
    "bleu": ("translation", "Bleu"),
    "chrf": ("translation", "Chrf"),
    "rouge": ("summarization", "Rouge"),
    "calibration": ("calibration", "Calibration"),
}


def _factory(name: str) -> Callable[..., Metric]:
    module, attr = _REGISTRY[name]
    factory: Callable[..., Metric] = getattr(
        importlib.import_module(f"llmbench.metrics.{module}"), attr
    )
    return factory


def metric_names() -> list[str]:
    """Built-in metric names (plus any ``evaluate:<hub name or local path>``)."""
    return sorted(_REGISTRY)


def _check_args(name: str, factory: Callable[..., Metric], args: dict[str, Any]) -> None:
    """Reject unknown keyword arguments with the list of valid ones (one line)."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # passes through to the library, which validates
    valid = sorted(p for p in params if p != "labels")
    unknown = sorted(set(args) - set(valid))
    if unknown:
        raise MetricError(
            f"metric {name!r} got unknown argument(s) {', '.join(unknown)}; "
            f"valid: {', '.join(valid) or 'none'}"
        )


def get_metric(name: str, /, *, labels: Sequence[str] | None = None, **args: Any) -> Metric:
    """Build the metric a task names; ``labels`` is the task's label set (needed by f1)."""
    if name.startswith(EVALUATE_PREFIX):
        from llmbench.metrics.hf_evaluate import EvaluateMetric

        try:
            return EvaluateMetric(name[len(EVALUATE_PREFIX) :], labels=labels, **args)
        except TypeError as exc:
            raise MetricError(f"bad arguments for metric {name!r}: {exc}") from exc
    if name not in _REGISTRY:
        raise MetricError(
            f"unknown metric {name!r}; known metrics: {', '.join(metric_names())}, "
            "or evaluate:<hub name or local path to an evaluate metric module>"
        )
    factory = _factory(name)
    _check_args(name, factory, args)
    try:
        return factory(labels=labels, **args)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"bad arguments for metric {name!r}: {exc}") from exc
