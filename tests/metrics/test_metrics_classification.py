"""accuracy and f1: point values against numbers worked out by hand (the implementation calls
scikit-learn for them, so comparing with scikit-learn would only repeat it), the vectorised
bootstrap path against scikit-learn with sample weights, to the last digit."""

from __future__ import annotations

from fractions import Fraction as Fr

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from llmbench.metrics import MetricError, get_metric
from llmbench.metrics.bootstrap import resample_weights

LABELS = ["negative", "neutral", "positive", "mixed"]


def _labelled(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Gold labels and predictions that are right ~60% of the time, all valid labels.

    Unparseable answers are scored by a rule of their own (a wrong prediction in every
    denominator), checked in test_metrics_classification_invalid.py; here the values must
    be plain sklearn."""
    rng = np.random.default_rng(seed)
    gold = [LABELS[i] for i in rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])]
    preds = []
    for g in gold:
        r = rng.random()
        preds.append(g if r < 0.6 else LABELS[rng.integers(4)])
    return gold, preds


def _stats(metric, preds, refs):  # type: ignore[no-untyped-def]
    return [metric.sample_stats(prediction=p, references=r) for p, r in zip(preds, refs, strict=True)]


# Ten samples, every prediction a valid label: (gold, prediction).
CASE = [("negative", "negative"), ("negative", "negative"), ("negative", "neutral"),
        ("negative", "positive"), ("neutral", "neutral"), ("neutral", "negative"),
        ("positive", "positive"), ("positive", "positive"), ("positive", "neutral"),
        ("mixed", "positive")]
# By hand: 5 of 10 right.
#             tp  predicted  actual  precision  recall  f1 = 2tp/(predicted+actual)
#   negative   2      3         4       2/3       1/2     4/7
#   neutral    1      3         2       1/3       1/2     2/5
#   positive   2      4         3       1/2       2/3     4/7
#   mixed      0      0         1       0         0       0
HAND = {
    "precision_macro": (Fr(2, 3) + Fr(1, 3) + Fr(1, 2)) / 4,  # 3/8
    "recall_macro": (Fr(1, 2) + Fr(1, 2) + Fr(2, 3)) / 4,  # 5/12
    "f1_macro": (Fr(4, 7) + Fr(2, 5) + Fr(4, 7)) / 4,  # 27/70
    "f1_micro": Fr(5, 10),  # single-label: micro-F1 is accuracy
    "f1_weighted": (Fr(4, 7) * 4 + Fr(2, 5) * 2 + Fr(4, 7) * 3) / 10,  # 12/25
    "invalid_rate": Fr(0),
    "f1/negative": Fr(4, 7), "f1/neutral": Fr(2, 5), "f1/positive": Fr(4, 7), "f1/mixed": Fr(0),
}


def test_accuracy_equals_hand_count() -> None:
    metric = get_metric("accuracy")
    (value,) = metric.aggregate(_stats(metric, [p for _, p in CASE], [[g] for g, _ in CASE]),
                                n_resamples=0)
    assert value.name == "accuracy"
    assert value.value == 0.5
    assert value.n == 10 and value.ci_low is None


def test_accuracy_any_reference_counts() -> None:
    metric = get_metric("accuracy")
    stats = _stats(metric, ["b", "x", "a"], [["a", "b"], ["a", "b"], ["a"]])
    assert [s["correct"] for s in stats] == [1, 0, 1]
    assert metric.score(stats)["accuracy"][0] == pytest.approx(2 / 3)


def test_accuracy_weighted_path_equals_sklearn_sample_weight() -> None:
    gold, preds = _labelled(200, seed=1)
    metric = get_metric("accuracy")
    stats = _stats(metric, preds, [[g] for g in gold])
    weights = resample_weights(200, 5, np.random.default_rng(0))
    got = metric.score(stats, weights)["accuracy"]
    want = [accuracy_score(gold, preds, sample_weight=w) for w in weights]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_f1_equals_hand_computation() -> None:
    metric = get_metric("f1", labels=LABELS)
    values = {v.name: v.value for v in metric.aggregate(
        _stats(metric, [p for _, p in CASE], [[g] for g, _ in CASE]), n_resamples=0)}
    assert values == pytest.approx({name: float(v) for name, v in HAND.items()}, abs=1e-12)


def test_f1_weighted_path_equals_sklearn_sample_weight() -> None:
    """The vectorised bootstrap path is the same statistic as sklearn with multiplicities."""
    gold, preds = _labelled(300, seed=3)
    metric = get_metric("f1", labels=LABELS)
    stats = _stats(metric, preds, [[g] for g in gold])
    weights = resample_weights(300, 8, np.random.default_rng(1))
    weights[0, [i for i, g in enumerate(gold) if g == "mixed"]] = 0  # a class with no support
    got = metric.score(stats, weights)
    for b, w in enumerate(weights):
        for average, key in (("macro", "f1_macro"), ("micro", "f1_micro")):
            _, _, f, _ = precision_recall_fscore_support(
                gold, preds, labels=LABELS, average=average, zero_division=0, sample_weight=w
            )
            assert got[key][b] == pytest.approx(f, rel=1e-12, abs=1e-15)
        p, r, f, _ = precision_recall_fscore_support(
            gold, preds, labels=LABELS, average=None, zero_division=0, sample_weight=w
        )
        assert got["precision_macro"][b] == pytest.approx(p.mean(), rel=1e-12, abs=1e-15)
        assert got["recall_macro"][b] == pytest.approx(r.mean(), rel=1e-12, abs=1e-15)
        for i, label in enumerate(LABELS):
            assert got[f"f1/{label}"][b] == pytest.approx(f[i], rel=1e-12, abs=1e-15)


def test_f1_primary_and_value_names() -> None:
    metric = get_metric("f1", labels=["no", "yes"])
    stats = _stats(metric, ["yes", "no", "maybe"], [["yes"], ["yes"], ["no"]])
    values = metric.aggregate(stats, n_resamples=50)
    assert metric.primary() == "f1_macro"
    assert [v.name for v in values] == [
        "f1_macro", "precision_macro", "recall_macro", "f1_micro", "f1_weighted", "invalid_rate",
        "f1/no", "f1/yes",
    ]
    assert stats[2] == {"pred": -1, "gold": 0, "correct": 0}


def test_f1_needs_labels_and_known_gold() -> None:
    with pytest.raises(MetricError, match="labels"):
        get_metric("f1")
    metric = get_metric("f1", labels=["no", "yes"])
    with pytest.raises(ValueError, match="not in labels"):
        metric.sample_stats(prediction="no", references=["perhaps"])
