"""Metric names as task files write them -> metric objects.

Factories are imported on first use so listing names (``llmbench tasks``) does not pay
for importing scikit-learn, sacrebleu and rouge_score.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from llmbench.metrics.base import Metric, MetricError, Scale

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
    "acc": ("multiple_choice", "ChoiceAccuracy"),
    "perplexity": ("perplexity", "Perplexity"),
    "calibration": ("calibration", "Calibration"),
}


@dataclass(frozen=True)
class Declared:
    """What a built-in metric declares about its values and per-sample stats (see ``Metric``).

    Kept beside the factory table so there is one place that says which metrics are on the
    0-100 scale and which stats key is a right/wrong indicator; ``get_metric`` sets it on
    the metric it builds. Bump ``stats_version`` when the metric's ``sample_stats`` changes.
    """

    scale: Scale = "unit"
    stats_version: int = 1
    indicators: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    browse_indicator: str | None = None


_DECLARED: dict[str, Declared] = {
    "accuracy": Declared(indicators=MappingProxyType({"accuracy": "correct"})),
    # v2: an answer that names no label is ``pred = -1`` and counted wrong everywhere.
    "f1": Declared(stats_version=2, indicators=MappingProxyType({"f1_micro": "correct"}),
                   browse_indicator="correct"),
    "exact_match": Declared(scale="percent", indicators=MappingProxyType({"exact_match": "exact_match"})),
    "squad_f1": Declared(scale="percent"),
    "squad": Declared(scale="percent", indicators=MappingProxyType({"exact_match": "exact_match"})),
    "squad_v2": Declared(scale="percent", indicators=MappingProxyType({"exact_match": "exact_match"})),
    "bleu": Declared(scale="percent"),
    "chrf": Declared(scale="percent"),
    # v2: rougeLsum splits by the HF recipe by default (v1 unwrapped lines; now ``unwrap: true``).
    "rouge": Declared(stats_version=2),
    "acc": Declared(indicators=MappingProxyType({"acc": "acc", "acc_norm": "acc_norm",
                                                 "acc_bytes": "acc_bytes"})),
    "perplexity": Declared(),
}

#: ``evaluate:`` metrics this process may build because a task file or the command line named
#: them here (``get_metric``, ``trust_code_metric``). Rebuilding a stored run never adds to it:
#: a database must not be able to make llmbench import a module it names.
_TRUSTED_CODE: set[str] = set()


def _declare(name: str, metric: Metric) -> Metric:
    declared = _DECLARED.get(name)
    if declared is not None:
        metric.scale = declared.scale
        metric.stats_version = declared.stats_version
        metric.indicators = declared.indicators
        metric.browse_indicator = declared.browse_indicator
    return metric


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

        _TRUSTED_CODE.add(name)  # named by a task file or the command line in this process

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
        return _declare(name, factory(labels=labels, **args))
    except (TypeError, ValueError) as exc:
        raise MetricError(f"bad arguments for metric {name!r}: {exc}") from exc


def declared_scale(name: str) -> Scale:
    """The scale a metric's values are on (``Declared.scale``; ``unit`` for metrics that
    declare none, such as ``evaluate:`` modules). Reports format numbers by this."""
    declared = _DECLARED.get(name)
    return declared.scale if declared is not None else "unit"


def trust_code_metric(name: str) -> None:
    """Allow ``rebuild_metric`` to load ``evaluate:<path>`` in this process (``--allow-metric``)."""
    if not name.startswith(EVALUATE_PREFIX):
        raise MetricError(f"--allow-metric takes an evaluate:<path> metric name, got {name!r} — built-in "
                          "metrics need no --allow-metric; remove it or give evaluate:<path>")
    _TRUSTED_CODE.add(name)


def rebuild_metric(name: str, /, *, labels: Sequence[str] | None, args: Mapping[str, Any],
                   stats: Mapping[str, Any] | None) -> Metric:
    """The registered metric that reads a *stored* run's per-sample stats.

    ``stats`` is what the run stored about them (``Metric.describe_stats``; ``None`` for runs
    stored before it was recorded, which are taken as version 1). Raises ``MetricError``
    (a user error: the report cannot decide) for stats of another schema or version than
    today's code reads, and for an ``evaluate:`` module that neither a task file nor the
    command line named in this process — the name came from the database, and importing it
    would run whatever code sits at that path.
    """
    if name.startswith(EVALUATE_PREFIX) and name not in _TRUSTED_CODE:
        raise MetricError(
            f"metric {name!r} is code named by the results store; it is not imported — pass "
            f"--allow-metric {name} to rebuild it"
        )
    metric = get_metric(name, labels=labels, **dict(args))
    stored = dict(stats or {})
    schema = stored.get("stats_schema", metric.stats_schema)
    version = stored.get("stats_version", 1)
    if schema != metric.stats_schema or version != metric.stats_version:
        raise MetricError(
            f"metric {name!r}: the run stored stats {schema} v{version}, this llmbench reads "
            f"{metric.stats_schema} v{metric.stats_version} — rerun the run to compare it"
        )
    return metric
