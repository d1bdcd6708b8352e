"""Accuracy and F1 for label predictions, point values from scikit-learn.

Predictions are label strings (the task maps model output to a label name first). A
prediction that is not a valid label counts as wrong: for F1 it is a false negative of
the gold class and a false positive of no class, which is what sklearn does with a
``labels=`` list that excludes the predicted value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from llmbench.metrics.base import Metric, MetricError, Stats, column, require_references
from llmbench.metrics.bootstrap import group_sums, weighted_mean


def _sklearn_metrics() -> Any:
    """``sklearn.metrics``, imported on first use (see ``Metric.warm_up``)."""
    import sklearn.metrics

    return sklearn.metrics


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


class Accuracy(Metric):
    """Fraction of samples whose prediction equals a reference (any of them).

    Stats keep the prediction and the matched (or first) reference so the point value is
    sklearn's ``accuracy_score`` on real labels, and the bootstrap re-weights ``correct``.
    """

    def __init__(self, *, labels: Sequence[str] | None = None) -> None:
        self.name = "accuracy"

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        require_references(self.name, references)
        gold = prediction if prediction in references else references[0]
        return {"prediction": prediction, "gold": gold, "correct": int(prediction == gold)}

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if weights is None:
            value = _sklearn_metrics().accuracy_score([s["gold"] for s in stats], [s["prediction"] for s in stats])
            return {"accuracy": np.array([value], dtype=np.float64)}
        return {"accuracy": weighted_mean(column(stats, "correct"), weights)}

    def warm_up(self) -> None:
        _sklearn_metrics()

    def primary(self) -> str:
        return "accuracy"

    def signature(self, stats: Stats) -> str:
        return f"sklearn:{_sklearn_version()}|accuracy_score"


class F1(Metric):
    """Macro/micro precision, recall and F1 plus per-class F1 over a fixed label set.

    Stats are label indices (``pred`` is -1 for an invalid label), so the bootstrap is a
    weighted confusion count per resample (vectorised group sums), not a Python loop.
    """

    def __init__(self, *, labels: Sequence[str] | None = None) -> None:
        if not labels:
            raise MetricError(
                "metric 'f1' needs the label set: pass labels=[...] (the task's label names)"
            )
        if len(set(labels)) != len(labels):
            raise MetricError(f"metric 'f1': labels must be unique, got {list(labels)}")
        self.name = "f1"
        self.labels = tuple(labels)
        self._index = {label: i for i, label in enumerate(self.labels)}

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        require_references(self.name, references)
        gold = self._index.get(references[0])
        if gold is None:
            raise ValueError(
                f"metric 'f1': gold label {references[0]!r} is not in labels {list(self.labels)}"
            )
        pred = self._index.get(prediction, -1)
        return {"pred": pred, "gold": gold, "correct": int(pred == gold)}

    def _point(self, stats: Stats) -> dict[str, np.ndarray]:
        y_true = column(stats, "gold", np.int64)
        y_pred = column(stats, "pred", np.int64)
        labels = list(range(len(self.labels)))

        def prfs(average: str | None) -> tuple[Any, Any, Any, Any]:
            return _sklearn_metrics().precision_recall_fscore_support(
                y_true, y_pred, labels=labels, average=average, zero_division=0
            )

        p_macro, r_macro, f_macro, _ = prfs("macro")
        _, _, f_micro, _ = prfs("micro")
        _, _, f_class, _ = prfs(None)
        out = {
            "precision_macro": p_macro,
            "recall_macro": r_macro,
            "f1_macro": f_macro,
            "f1_micro": f_micro,
        }
        out |= {f"f1/{label}": f_class[i] for i, label in enumerate(self.labels)}
        return {name: np.array([value], dtype=np.float64) for name, value in out.items()}

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if weights is None:
            return self._point(stats)
        n_labels = len(self.labels)
        gold = column(stats, "gold", np.int64)
        pred = column(stats, "pred", np.int64)
        tp = group_sums(weights, np.where(pred == gold, gold, -1), n_labels)
        predicted = group_sums(weights, pred, n_labels)  # -1 (invalid) is dropped
        actual = group_sums(weights, gold, n_labels)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(predicted > 0, tp / predicted, 0.0)
            recall = np.where(actual > 0, tp / actual, 0.0)
            f1 = np.where(predicted + actual > 0, 2.0 * tp / (predicted + actual), 0.0)
            tp_all, pred_all, act_all = tp.sum(1), predicted.sum(1), actual.sum(1)
            f1_micro = np.where(pred_all + act_all > 0, 2.0 * tp_all / (pred_all + act_all), 0.0)
        out = {
            "precision_macro": precision.mean(axis=1),
            "recall_macro": recall.mean(axis=1),
            "f1_macro": f1.mean(axis=1),
            "f1_micro": f1_micro,
        }
        out |= {f"f1/{label}": f1[:, i] for i, label in enumerate(self.labels)}
        return out

    def warm_up(self) -> None:
        _sklearn_metrics()

    def primary(self) -> str:
        return "f1_macro"

    def signature(self, stats: Stats) -> str:
        return (
            f"sklearn:{_sklearn_version()}|precision_recall_fscore_support"
            f"|zero_division:0|labels:{len(self.labels)}"
        )
