"""Calibration values against scikit-learn (Brier, log loss) and an independent ECE loop; the
bootstrap re-weighting against explicit resampling; the label distribution every scoring mode
feeds it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from llmbench.metrics import get_metric
from llmbench.metrics.base import MetricError
from llmbench.metrics.bootstrap import weight_chunks
from llmbench.metrics.calibration import Calibration, reliability_bins
from llmbench.tasks.kinds import label_distribution


def _random_run(n: int, k: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = [f"L{i}" for i in range(k)]
    logits = rng.normal(scale=2.0, size=(n, k))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    gold = rng.integers(0, k, size=n)
    return labels, probs, gold


def _stats(metric: Calibration, labels: list[str], probs: np.ndarray, gold: np.ndarray) -> list[dict]:
    return [metric.probability_stats(prediction=labels[int(np.argmax(p))],
                                     probabilities=dict(zip(labels, p.tolist(), strict=True)),
                                     references=(labels[g],)) for p, g in zip(probs, gold, strict=True)]


def _ece_loop(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    """ECE the textbook way (Guo et al. 2017): bins (lo, hi], weighted |acc - conf| gaps."""
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        mask = (conf > lo) & (conf <= hi) if b else (conf >= lo) & (conf <= hi)
        if mask.any():
            total += mask.sum() / len(conf) * abs(correct[mask].mean() - conf[mask].mean())
    return total


@pytest.mark.parametrize(("k", "n_bins"), [(2, 10), (4, 15), (3, 1)])
def test_values_match_sklearn_and_the_textbook_ece(k: int, n_bins: int) -> None:
    labels, probs, gold = _random_run(300, k, seed=k)
    metric = get_metric("calibration", labels=labels, n_bins=n_bins)
    assert isinstance(metric, Calibration)
    values = metric.score(_stats(metric, labels, probs, gold))
    y_true = [labels[g] for g in gold]
    # binary: sklearn takes P(positive class), the second label in sorted order
    ref_brier = (brier_score_loss(y_true, probs[:, 1], pos_label=labels[1]) if k == 2
                 else brier_score_loss(y_true, probs, labels=labels))
    assert values["brier"][0] == pytest.approx(ref_brier, rel=1e-12)
    assert values["nll"][0] == pytest.approx(log_loss(y_true, probs, labels=labels), rel=1e-12)
    conf, correct = probs.max(axis=1), (probs.argmax(axis=1) == gold).astype(float)
    assert values["ece"][0] == pytest.approx(_ece_loop(conf, correct, n_bins), abs=1e-12)
    assert metric.signature([]).startswith(f"ece:equal-width|bins:{n_bins}|")


def test_certain_wrong_answer_is_clipped_like_sklearn() -> None:
    metric = Calibration(labels=["a", "b", "c"])
    stats = [metric.probability_stats(prediction="a", probabilities={"a": 1.0, "b": 0.0, "c": 0.0},
                                      references=("b",)),
             metric.probability_stats(prediction="b", probabilities={"a": 0.2, "b": 0.5, "c": 0.3},
                                      references=("b",))]
    probs = np.array([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3]])
    assert metric.score(stats)["nll"][0] == pytest.approx(log_loss(["b", "b"], probs, labels=["a", "b", "c"]))
    assert math.isfinite(metric.score(stats)["nll"][0])


def test_bootstrap_equals_explicit_resampling() -> None:
    """Re-weighted sums == the point value of each explicitly resampled run."""
    labels, probs, gold = _random_run(50, 3, seed=7)
    metric = Calibration(labels=labels, n_bins=5)
    stats = _stats(metric, labels, probs, gold)
    weights = next(weight_chunks(len(stats), 20, seed=3))
    boot = metric.score(stats, weights)
    for b, row in enumerate(weights):
        resampled = [s for s, count in zip(stats, row, strict=True) for _ in range(int(count))]
        point = metric.score(resampled)
        for name in ("ece", "brier", "nll"):
            assert boot[name][b] == pytest.approx(point[name][0], abs=1e-12)


def test_aggregate_is_a_loss_with_ci() -> None:
    labels, probs, gold = _random_run(80, 2, seed=1)
    metric = Calibration(labels=labels)
    values = {v.name: v for v in metric.aggregate(_stats(metric, labels, probs, gold), n_resamples=200, seed=0)}
    assert next(iter(values)) == "ece"
    for v in values.values():
        assert v.higher_is_better is False
        assert v.ci_low is not None and v.ci_high is not None and v.ci_low <= v.value <= v.ci_high


def test_prediction_only_contract_is_refused() -> None:
    with pytest.raises(MetricError, match="needs label probabilities"):
        Calibration(labels=["a", "b"]).sample_stats(prediction="a", references=("a",))
    with pytest.raises(MetricError, match="n_bins"):
        get_metric("calibration", labels=["a", "b"], n_bins=0)


def test_reliability_bins_count_and_average() -> None:
    metric = Calibration(labels=["a", "b"], n_bins=2)
    stats = [metric.probability_stats(prediction=p, probabilities=d, references=(g,)) for p, d, g in [
        ("a", {"a": 0.9, "b": 0.1}, "a"), ("a", {"a": 0.7, "b": 0.3}, "b"), ("b", {"a": 0.4, "b": 0.6}, "b")]]
    low, high = reliability_bins(stats, n_bins=2)
    assert (low.count, low.accuracy) == (0, None)  # confidence >= 0.5 with two labels
    assert high.count == 3
    assert high.accuracy == pytest.approx(2 / 3)
    assert high.confidence == pytest.approx((0.9 + 0.7 + 0.6) / 3)


def test_label_distribution_is_a_softmax_over_the_labels() -> None:
    dist = label_distribution([math.log(0.2), math.log(0.6)], ["a", "b"])  # renormalised: 0.25 / 0.75
    assert dist == pytest.approx({"a": 0.25, "b": 0.75})
    assert label_distribution([-1e4, 0.0, -math.inf], ["a", "b", "c"])["b"] == pytest.approx(1.0)
    assert label_distribution([], ["a", "b"]) == {"a": 0.5, "b": 0.5}  # no scores: no information
    with pytest.raises(ValueError, match="one score per label"):
        label_distribution([0.0], ["a", "b"])
