"""Metrics computed by the field's reference libraries, with seeded bootstrap CIs.

Each metric turns one sample into JSON-serialisable statistics (``sample_stats``) and
reduces many of them to corpus values (``score``), optionally under bootstrap resample
weights; ``aggregate`` returns ``MetricValue`` objects with percentile CIs.

Scales follow each reference tool: accuracy, f1 and rouge in [0, 1]; bleu, chrf and the
SQuAD values (exact_match, f1) in [0, 100].
"""

from llmbench.metrics.base import Metric, MetricError
from llmbench.metrics.bootstrap import mcnemar, paired_bootstrap
from llmbench.metrics.registry import get_metric, metric_names

__all__ = ["Metric", "MetricError", "get_metric", "mcnemar", "metric_names", "paired_bootstrap"]
