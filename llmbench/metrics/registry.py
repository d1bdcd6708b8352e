"""Metric names as task files write them -> metric objects.

Every name is looked up in ``llmbench.registry.metrics`` (the built-in classes, then plugins
from the entry-point group ``llmbench.metrics``), except ``evaluate:<hub name or local path>``,
which wraps a Hugging Face ``evaluate`` module. The registry holds lazy ``"module:Class"``
targets, so listing names (``llmbench tasks``) imports no metric module; what a metric is
(values, scale, direction, indicators, stats version) its class declares
(``Metric.declaration``), and nothing here adds to it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from llmbench import registry
from llmbench.errors import UserError
from llmbench.metrics.base import Metric, MetricError, Scale
from llmbench.registry import EVALUATE_PREFIX

#: ``evaluate:`` metrics this process may build because a task file or the command line named
#: them here (``get_metric``, ``trust_code_metric``). Rebuilding a stored run never adds to it:
#: a database must not be able to make llmbench import a module it names.
_TRUSTED_CODE: set[str] = set()


def metric_names() -> list[str]:
    """Metric names a task file may use, built-in and plugin (plus any ``evaluate:<hub name or path>``)."""
    return registry.task_metric_names()


def metric_class(name: str) -> type[Metric]:
    """The registered class behind ``name``; ``MetricError`` for an unknown name or a plugin
    entry that is not a ``Metric`` subclass with its own declaration."""
    if name not in registry.metrics:
        raise MetricError(
            f"unknown metric {name!r}; known metrics: {', '.join(metric_names())}, "
            "or evaluate:<hub name or local path to an evaluate metric module>"
        )
    try:
        cls = registry.metrics.get(name)
    except UserError as err:
        raise MetricError(str(err)) from err
    if not (isinstance(cls, type) and issubclass(cls, Metric)) or inspect.isabstract(cls):
        raise MetricError(
            f"metric {name!r} ({registry.metrics.origin(name)}) is {cls!r}, not a concrete "
            "llmbench.metrics.Metric subclass — fix or uninstall the plugin"
        )
    return cls


def _check_args(name: str, cls: type[Metric], args: dict[str, Any]) -> None:
    """Reject unknown keyword arguments with the list of valid ones (one line)."""
    params = inspect.signature(cls).parameters
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
    cls = metric_class(name)
    _check_args(name, cls, args)
    try:
        metric = cls(labels=labels, **args)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"bad arguments for metric {name!r}: {exc}") from exc
    # The registered name is the one stored with the run and looked up again by the reports.
    if getattr(metric, "name", name) != name:
        raise MetricError(f"metric {name!r} ({registry.metrics.origin(name)}) calls itself "
                          f"{metric.name!r} — its name must be the one it is registered under")
    metric.name = name
    return metric


def declared_scale(name: str) -> Scale:
    """The scale a registered metric declares (``Declaration.scale``).

    ``unit`` for a name this process has no class for (``evaluate:`` modules, a plugin that
    is not installed here): the scale stored with the run (``metric_stats[name]["scale"]`` of
    the run config) is the authority for a stored number, and this only picks decimals.
    """
    if name.startswith(EVALUATE_PREFIX) or name not in registry.metrics:
        return "unit"
    try:
        return metric_class(name).declaration.scale
    except MetricError:
        return "unit"


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
    would run whatever code sits at that path. A registered plugin's name in the database
    loads only a class its installed distribution registered.
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
