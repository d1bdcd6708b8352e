"""Metrics computed by the field's reference libraries, with seeded bootstrap CIs.

Each metric turns one sample into JSON-serialisable statistics (``sample_stats``) and
reduces many of them to corpus values (``score``), optionally under bootstrap resample
weights; ``aggregate`` returns ``MetricValue`` objects with percentile CIs. Each metric class
declares its value names, scale, direction, right/wrong indicators and stats version
(``Declaration``) and is registered by name in ``llmbench.registry.metrics``; plugins add
classes through the entry-point group ``llmbench.metrics``.

Scales follow each reference tool: accuracy, f1 and rouge in [0, 1]; bleu, chrf and the
SQuAD values (exact_match, f1) in [0, 100].
"""

from llmbench.metrics.base import Declaration, Metric, MetricError
from llmbench.metrics.bootstrap import mcnemar, paired_bootstrap
from llmbench.metrics.registry import get_metric, metric_class, metric_names

__all__ = ["Declaration", "Metric", "MetricError", "get_metric", "mcnemar", "metric_class", "metric_names",
           "paired_bootstrap"]
