"""Every answer counts: an unparseable answer is a wrong prediction in every value of
``f1`` (and ``accuracy``), checked against expectations worked out by hand and against
scikit-learn given the same rows.

The hand computations are written out in the comments so a reader can check them without
trusting either implementation. The invalid answer's false positive is spread evenly over
the wrong labels (``1/(k-1)`` each), see ``llmbench.metrics.classification.F1``.
"""

from __future__ import annotations

from fractions import Fraction as Fr

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from llmbench.metrics import MetricError, get_metric
from llmbench.metrics.base import Metric
from llmbench.metrics.bootstrap import resample_weights

# Four labels, six samples: (gold, prediction). "??" names no label.
LABELS = ["a", "b", "c", "d"]
CASE = [("a", "a"), ("a", "b"), ("a", "??"), ("b", "b"), ("b", "??"), ("c", "a")]
# By hand, k = 4, so each invalid answer adds 1/3 of a prediction to each wrong label:
#   tp:        a=1, b=1, c=0, d=0        actual (support): a=3, b=2, c=1, d=0
#   predicted: a = 2 + 1/3 (from the "b??") = 7/3, b = 2 + 1/3 (from the "a??") = 7/3,
#              c = 1/3 + 1/3 = 2/3, d = 2/3                  (total 6 = number of samples)
#   precision: a = 3/7, b = 3/7, c = 0, d = 0
#   recall:    a = 1/3, b = 1/2, c = 0, d = 0 (no support)
#   f1 = 2tp/(predicted+actual): a = 2/(16/3) = 3/8, b = 2/(13/3) = 6/13, c = 0, d = 0
P = [Fr(3, 7), Fr(3, 7), Fr(0), Fr(0)]
R = [Fr(1, 3), Fr(1, 2), Fr(0), Fr(0)]
F = [Fr(3, 8), Fr(6, 13), Fr(0), Fr(0)]
SUPPORT = [3, 2, 1, 0]
HAND = {
    # macro over the task's 4 labels
    "task": {"precision_macro": sum(P) / 4, "recall_macro": sum(R) / 4, "f1_macro": sum(F) / 4},
    # macro over the labels present as gold or valid prediction: a, b, c (d never occurs)
    "present": {"precision_macro": sum(P[:3]) / 3, "recall_macro": sum(R[:3]) / 3,
                "f1_macro": sum(F[:3]) / 3},
}
COMMON = {
    "f1_micro": Fr(2, 6),  # 2 right out of 6: micro-F1 is accuracy
    "f1_weighted": sum(f * s for f, s in zip(F, SUPPORT, strict=True)) / 6,  # 71/208
    "invalid_rate": Fr(2, 6),
    "f1/a": F[0], "f1/b": F[1], "f1/c": F[2], "f1/d": F[3],
}


def _stats(metric: Metric, pairs: list[tuple[str, str]]) -> list[dict]:  # type: ignore[type-arg]
    return [metric.sample_stats(prediction=p, references=[g]) for g, p in pairs]


def _sklearn_rows(pairs: list[tuple[str, str]], labels: list[str]) -> tuple[list, list, list]:  # type: ignore[type-arg]
    """The same convention written independently: an invalid answer is one row per wrong
    label, each weighted 1/(k-1)."""
    y_true, y_pred, weight = [], [], []
    for gold, pred in pairs:
        wrong = [pred] if pred in labels else [lab for lab in labels if lab != gold]
        for lab in wrong:
            y_true.append(gold)
            y_pred.append(lab)
            weight.append(1 / len(wrong))
    return y_true, y_pred, weight


@pytest.mark.parametrize("average_over", ["task", "present"])
def test_hand_computed_values(average_over: str) -> None:
    metric = get_metric("f1", labels=LABELS, average_over=average_over)
    values = {v.name: v.value for v in metric.aggregate(_stats(metric, CASE), n_resamples=0)}
    want = HAND[average_over] | COMMON
    assert set(values) == set(want)
    for name, expected in want.items():
        assert values[name] == pytest.approx(float(expected), rel=1e-12, abs=1e-15), name
    assert values["f1_weighted"] == pytest.approx(71 / 208)
    assert HAND["task"]["f1_macro"] == Fr(87, 416) and HAND["present"]["f1_macro"] == Fr(29, 104)


@pytest.mark.parametrize("average_over", ["task", "present"])
def test_hand_values_equal_sklearn_on_the_same_rows(average_over: str) -> None:
    y_true, y_pred, w = _sklearn_rows(CASE, LABELS)
    averaged = LABELS if average_over == "task" else ["a", "b", "c"]
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=averaged, average="macro", sample_weight=w, zero_division=0
    )
    hand = HAND[average_over]
    assert (p, r, f) == pytest.approx(
        (float(hand["precision_macro"]), float(hand["recall_macro"]), float(hand["f1_macro"]))
    )
    for average, key in (("micro", "f1_micro"), ("weighted", "f1_weighted")):
        _, _, value, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=LABELS, average=average, sample_weight=w, zero_division=0
        )
        assert value == pytest.approx(float(COMMON[key]))


def test_the_issue_case_998_of_1000_unparseable() -> None:
    """Two answers (both right) and 998 unparseable ones must not score precision 1.0.

    By hand: 500 gold per class; per class tp = 1, and the 499 invalid answers of the
    other class are its false positives: precision = recall = f1 = 1/500 = 0.002."""
    gold = ["negative"] * 500 + ["positive"] * 500
    preds = ["??"] * 1000
    preds[0], preds[500] = "negative", "positive"
    metric = get_metric("f1", labels=["negative", "positive"])
    stats = [metric.sample_stats(prediction=p, references=[g]) for g, p in zip(gold, preds, strict=True)]
    values = {v.name: v.value for v in metric.aggregate(stats, n_resamples=0)}
    for name in ("precision_macro", "recall_macro", "f1_macro", "f1_micro", "f1_weighted"):
        assert values[name] == pytest.approx(0.002), name
    assert values["invalid_rate"] == pytest.approx(0.998)
    assert values["f1_micro"] == accuracy_score(gold, preds)


def test_one_invalid_answer_is_one_wrong_answer_not_a_cliff() -> None:
    """An extra "invalid" class in the macro average would cut a perfect binary run to
    about 0.667 for a single unparseable answer; counted as wrong it costs about 1/1000."""
    gold = ["negative", "positive"] * 500
    preds = list(gold)
    preds[7] = ""
    metric = get_metric("f1", labels=["negative", "positive"])
    stats = [metric.sample_stats(prediction=p, references=[g]) for g, p in zip(gold, preds, strict=True)]
    f1_macro = metric.score(stats)["f1_macro"][0]
    # By hand: positive has tp 499 of support 500 and predicted 499; negative has
    # tp 500 and predicted 500 + 1 (the invalid answer of a positive sample) = 501.
    # f1(neg) = 1000/1001, f1(pos) = 998/999.
    assert f1_macro == pytest.approx((1000 / 1001 + 998 / 999) / 2)


def test_micro_f1_is_accuracy_point_and_bootstrap() -> None:
    rng = np.random.default_rng(5)
    gold = [LABELS[i] for i in rng.integers(0, 4, size=400)]
    preds = [g if r < 0.5 else "" if r < 0.7 else LABELS[int(r * 100) % 4]
             for g, r in zip(gold, rng.random(400), strict=True)]
    f1 = get_metric("f1", labels=LABELS)
    acc = get_metric("accuracy")
    f1_stats = [f1.sample_stats(prediction=p, references=[g]) for g, p in zip(gold, preds, strict=True)]
    acc_stats = [acc.sample_stats(prediction=p, references=[g]) for g, p in zip(gold, preds, strict=True)]
    assert f1.score(f1_stats)["f1_micro"][0] == pytest.approx(acc.score(acc_stats)["accuracy"][0])
    weights = resample_weights(400, 20, np.random.default_rng(0))
    np.testing.assert_allclose(
        f1.score(f1_stats, weights)["f1_micro"], acc.score(acc_stats, weights)["accuracy"], rtol=1e-12
    )


@pytest.mark.parametrize("average_over", ["task", "present"])
def test_bootstrap_path_is_the_point_statistic_under_multiplicities(average_over: str) -> None:
    """The vectorised resample path equals sklearn on the same rows with multiplicities."""
    rng = np.random.default_rng(3)
    gold = [LABELS[i] for i in rng.choice(4, size=120, p=[0.5, 0.3, 0.2, 0.0])]
    preds = [g if r < 0.5 else "??" if r < 0.75 else LABELS[int(r * 1000) % 3]
             for g, r in zip(gold, rng.random(120), strict=True)]
    metric = get_metric("f1", labels=LABELS, average_over=average_over)
    stats = _stats(metric, list(zip(gold, preds, strict=True)))
    weights = resample_weights(120, 6, np.random.default_rng(1))
    weights[0, [i for i, g in enumerate(gold) if g == "c"]] = 0  # a class loses its support
    got = metric.score(stats, weights)
    for b, counts in enumerate(weights):
        pairs = [pair for pair, n in zip(zip(gold, preds, strict=True), counts, strict=True)
                 for _ in range(int(n))]
        y_true, y_pred, w = _sklearn_rows(pairs, LABELS)
        present = sorted({g for g, _ in pairs} | {p for _, p in pairs if p in LABELS})
        averaged = LABELS if average_over == "task" else present
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=averaged, average="macro", sample_weight=w, zero_division=0)
        assert (got["precision_macro"][b], got["recall_macro"][b], got["f1_macro"][b]) == pytest.approx((p, r, f))
        _, _, fw, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=LABELS, average="weighted", sample_weight=w, zero_division=0)
        assert got["f1_weighted"][b] == pytest.approx(fw)
        assert got["invalid_rate"][b] == pytest.approx(sum(p == "??" for _, p in pairs) / len(pairs))
    point = metric.score(stats)
    ones = metric.score(stats, np.ones((1, len(stats))))
    for name in point:
        assert ones[name][0] == pytest.approx(point[name][0], rel=1e-12, abs=1e-15), name


def test_without_invalid_answers_values_are_plain_sklearn() -> None:
    """No unparseable answer: the old values exactly (sklearn with the task's labels)."""
    gold = ["a", "a", "b", "c", "c", "a"]
    preds = ["a", "b", "b", "a", "c", "a"]
    metric = get_metric("f1", labels=LABELS)
    values = metric.score(_stats(metric, list(zip(gold, preds, strict=True))))
    p, r, f, _ = precision_recall_fscore_support(gold, preds, labels=LABELS, average="macro", zero_division=0)
    assert (values["precision_macro"][0], values["recall_macro"][0], values["f1_macro"][0]) == pytest.approx((p, r, f))
    assert values["invalid_rate"][0] == 0.0
    present = get_metric("f1", labels=LABELS, average_over="present")
    values = present.score(_stats(present, list(zip(gold, preds, strict=True))))
    p, r, f, _ = precision_recall_fscore_support(gold, preds, average="macro", zero_division=0)  # labels=None
    assert (values["precision_macro"][0], values["recall_macro"][0], values["f1_macro"][0]) == pytest.approx((p, r, f))


def test_setting_direction_and_signature() -> None:
    with pytest.raises(MetricError, match="average_over"):
        get_metric("f1", labels=LABELS, average_over="labels")
    metric = get_metric("f1", labels=["no", "yes"], average_over="present")
    stats = _stats(metric, [("yes", "yes"), ("yes", "no"), ("no", "maybe")])
    values = {v.name: v for v in metric.aggregate(stats, n_resamples=20)}
    assert values["invalid_rate"].higher_is_better is False
    assert values["f1_weighted"].higher_is_better is True
    assert "|macro-over:present|" in values["f1_macro"].signature
    assert "invalid:wrong" in values["f1_macro"].signature
    assert "macro-over:task" in get_metric("f1", labels=["no", "yes"]).signature(stats)
    accuracy = get_metric("accuracy")
    assert "invalid:wrong" in accuracy.signature(_stats(accuracy, [("yes", "maybe")]))
