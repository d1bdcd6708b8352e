"""Accuracy and F1 for label predictions (F1's point values from scikit-learn; accuracy is a
mean of 0/1 correctness and needs no library).

Predictions are label strings (the task maps model output to a label name first; an
answer it cannot map is ``""``). Every answer counts: a prediction that is not a valid
label is wrong in accuracy and in every F1 value, including the precision denominators
(see ``F1``), and ``f1`` reports the ``invalid_rate`` as its own value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from llmbench.metrics.base import Declaration, Metric, MetricError, Stats, column, require_references
from llmbench.metrics.bootstrap import group_sums, weighted_mean

#: The ``pred`` index of an answer that names none of the task's labels.
INVALID = -1
#: What the macro averages of ``f1`` run over (see ``F1``).
AVERAGE_OVER = ("task", "present")


def _sklearn_metrics() -> Any:
    """``sklearn.metrics``, imported on first use (see ``Metric.warm_up``)."""
    import sklearn.metrics

    return sklearn.metrics


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


class Accuracy(Metric):
    """Fraction of samples whose prediction equals a reference (any of them).

    The point value is the plain mean of the 0/1 ``correct`` column, computed here rather
    than by scikit-learn: it is the same number as ``sklearn.metrics.accuracy_score`` (a
    test checks it on random data), and importing scikit-learn for a mean cost a short run
    about 0.9 s of its ~5 s (GIL-bound, so the background warm-up overlapped nothing). The
    bootstrap re-weights the same column.
    """

    declaration = Declaration(values=("accuracy",), scale="unit", direction="higher",
                              indicators={"accuracy": "correct"}, stats_version=1)

    def __init__(self, *, labels: Sequence[str] | None = None) -> None:
        self.name = "accuracy"

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        require_references(self.name, references)
        gold = prediction if prediction in references else references[0]
        return {"prediction": prediction, "gold": gold, "correct": int(prediction == gold)}

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        correct = column(stats, "correct")
        if weights is None:
            # an exact count over an exact length: the same float as sklearn's np.average
            return {"accuracy": np.array([correct.sum() / len(correct)], dtype=np.float64)}
        return {"accuracy": weighted_mean(correct, weights)}

    def primary(self) -> str:
        return "accuracy"

    def signature(self, stats: Stats) -> str:
        return "mean-correct(=sklearn.accuracy_score)|invalid:wrong"


class F1(Metric):
    """Precision, recall and F1 (macro, micro, weighted, per class) over a fixed label set,
    with every answer counted.

    An answer that names no label of the task (stats ``pred`` = -1, the *invalid bucket*)
    is a wrong prediction everywhere, never a skipped one:

    * recall: a false negative of its gold class;
    * precision: a false positive of the wrong classes, spread evenly over them (weight
      ``1/(k-1)`` each; with two labels it is exactly "the other label"). Without this, an
      unanswered sample would leave every precision denominator, and a model that answers
      2 of 1,000 samples (both right) would get precision_macro 1.0;
    * ``f1_micro`` is therefore accuracy, as it must be for single-label classification;
    * ``invalid_rate`` (lower is better) reports how many answers were unparseable.

    Why spread rather than an extra "invalid" class in the macro average (what sklearn
    does with an unknown predicted value): that class has no gold samples, so its
    precision and recall are 0 and a single invalid answer in 1,000 would cut a binary
    task's macro-F1 by a third. Spreading keeps the metric continuous in the number of
    invalid answers while still charging each one as wrong.

    ``average_over`` states what the macro averages run over: ``"task"`` (default: every
    label of the task, so the set does not change with ``--limit``) or ``"present"`` (the
    labels that occur as gold or as a valid prediction, sklearn's ``labels=None``). It is
    recorded in the signature. Stats are label indices, so the bootstrap is a weighted
    confusion count per resample (vectorised group sums), not a Python loop.
    """

    # v2: an answer that names no label is ``pred = -1`` and counted wrong everywhere.
    declaration = Declaration(
        values=("f1_macro", "f1_micro", "f1_weighted", "precision_macro", "recall_macro", "invalid_rate"),
        scale="unit", direction="higher", directions={"invalid_rate": "lower"},
        indicators={"f1_micro": "correct"}, browse_indicator="correct", stats_version=2,
    )

    @classmethod
    def value_names(cls, args: Mapping[str, Any], labels: Sequence[str] | None) -> frozenset[str]:
        """The declared values plus ``f1/<label>`` for each of the task's labels."""
        return frozenset(cls.declaration.values) | {f"f1/{label}" for label in labels or ()}

    def __init__(
        self, *, labels: Sequence[str] | None = None, average_over: str = "task"
    ) -> None:
        if not labels:
            raise MetricError(
                "metric 'f1' needs the label set: pass labels=[...] (the task's label names)"
            )
        if len(set(labels)) != len(labels):
            raise MetricError(f"metric 'f1': labels must be unique, got {list(labels)}")
        if average_over not in AVERAGE_OVER:
            raise MetricError(
                f"metric 'f1': average_over={average_over!r}; use one of {', '.join(AVERAGE_OVER)}"
            )
        self.name = "f1"
        self.labels = tuple(labels)
        self.average_over = average_over
        self._index = {label: i for i, label in enumerate(self.labels)}

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        require_references(self.name, references)
        gold = self._index.get(references[0])
        if gold is None:
            raise ValueError(
                f"metric 'f1': gold label {references[0]!r} is not in labels {list(self.labels)}"
            )
        pred = self._index.get(prediction, INVALID)
        return {"pred": pred, "gold": gold, "correct": int(pred == gold)}

    def _sklearn_rows(
        self, stats: Stats
    ) -> tuple[list[int], list[int], list[float], list[int]]:
        """(y_true, y_pred, sample_weight, present labels) for sklearn: an invalid answer
        becomes one row per wrong label with weight ``1/(k-1)`` (the spread above)."""
        k = len(self.labels)
        y_true: list[int] = []
        y_pred: list[int] = []
        weight: list[float] = []
        present: set[int] = set()
        for s in stats:
            gold, pred = int(s["gold"]), int(s["pred"])
            present.add(gold)
            if pred != INVALID:
                present.add(pred)
                wrong = [pred]
            else:
                wrong = [c for c in range(k) if c != gold] or [INVALID]
            for c in wrong:
                y_true.append(gold)
                y_pred.append(c)
                weight.append(1.0 / len(wrong))
        return y_true, y_pred, weight, sorted(present)

    def _point(self, stats: Stats) -> dict[str, np.ndarray]:
        y_true, y_pred, weight, present = self._sklearn_rows(stats)
        every = list(range(len(self.labels)))
        averaged = every if self.average_over == "task" else present

        def prfs(labels: list[int], average: str | None) -> tuple[Any, Any, Any, Any]:
            result: tuple[Any, Any, Any, Any] = _sklearn_metrics().precision_recall_fscore_support(
                y_true, y_pred, labels=labels, average=average, sample_weight=weight,
                zero_division=0,
            )
            return result

        p_macro, r_macro, f_macro, _ = prfs(averaged, "macro")
        _, _, f_micro, _ = prfs(every, "micro")
        _, _, f_weighted, _ = prfs(every, "weighted")
        _, _, f_class, _ = prfs(every, None)
        invalid = sum(1 for s in stats if int(s["pred"]) == INVALID)
        out = {
            "precision_macro": p_macro,
            "recall_macro": r_macro,
            "f1_macro": f_macro,
            "f1_micro": f_micro,
            "f1_weighted": f_weighted,
            "invalid_rate": invalid / len(stats),
        }
        out |= {f"f1/{label}": f_class[i] for i, label in enumerate(self.labels)}
        return {name: np.array([value], dtype=np.float64) for name, value in out.items()}

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if weights is None:
            return self._point(stats)
        k = len(self.labels)
        gold = column(stats, "gold", np.int64)
        pred = column(stats, "pred", np.int64)
        tp = group_sums(weights, np.where(pred == gold, gold, INVALID), k)
        predicted_valid = group_sums(weights, pred, k)  # INVALID (-1) is dropped
        actual = group_sums(weights, gold, k)
        invalid_by_gold = group_sums(weights, np.where(pred == INVALID, gold, INVALID), k)
        invalid = invalid_by_gold.sum(axis=1, keepdims=True)
        spread = (invalid - invalid_by_gold) / (k - 1) if k > 1 else np.zeros_like(actual)
        predicted = predicted_valid + spread
        if self.average_over == "task":
            averaged = np.ones_like(actual, dtype=bool)
        else:
            averaged = (actual > 0) | (predicted_valid > 0)
        n_averaged = averaged.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(predicted > 0, tp / predicted, 0.0)
            recall = np.where(actual > 0, tp / actual, 0.0)
            f1 = np.where(predicted + actual > 0, 2.0 * tp / (predicted + actual), 0.0)
            tp_all, pred_all, act_all = tp.sum(1), predicted.sum(1), actual.sum(1)
            f1_micro = np.where(pred_all + act_all > 0, 2.0 * tp_all / (pred_all + act_all), 0.0)
            f1_weighted = np.where(act_all > 0, (f1 * actual).sum(1) / act_all, 0.0)
            out = {
                "precision_macro": (precision * averaged).sum(1) / n_averaged,
                "recall_macro": (recall * averaged).sum(1) / n_averaged,
                "f1_macro": (f1 * averaged).sum(1) / n_averaged,
                "f1_micro": f1_micro,
                "f1_weighted": f1_weighted,
                "invalid_rate": invalid[:, 0] / weights.sum(axis=1),
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
            f"|zero_division:0|labels:{len(self.labels)}|macro-over:{self.average_over}"
            "|invalid:wrong(fp-spread)"
        )
