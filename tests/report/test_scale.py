"""One scale per metric, declared once (the metric's registration) and stored with every run."""

from __future__ import annotations

import pytest

from llmbench.metrics import get_metric, metric_names
from llmbench.metrics.registry import declared_scale
from llmbench.report import fmt

PERCENT = {"bleu", "chrf", "exact_match", "squad", "squad_f1", "squad_v2", "ter"}


@pytest.mark.parametrize("name", ["bleu", "chrf", "exact_match", "squad", "squad_f1", "squad_v2", "accuracy", "rouge"])
def test_reports_format_by_the_metrics_declaration(name: str) -> None:
    metric = get_metric(name)
    assert metric.scale == declared_scale(name) == ("percent" if name in PERCENT else "unit")
    assert metric.describe_stats()["scale"] == metric.scale  # what the runner stores with the run
    assert fmt.num(12.3456, name) == ("12.3" if name in PERCENT else "12.346")


def test_squad_v2_per_sample_scores_use_the_corpus_scale() -> None:
    """The sample browser showed 0.737 under a table of 20.3: one scale per metric everywhere."""
    metric = get_metric("squad_v2")
    stats = metric.sample_stats(prediction="the old town", references=["old town hall"])
    assert metric.sample_score("f1", stats) == pytest.approx(100 * stats["f1"])
    assert metric.sample_score("exact_match", stats) == 0.0


def test_every_registered_metric_has_a_declared_scale() -> None:
    assert {n for n in metric_names() if declared_scale(n) == "percent"} == PERCENT
