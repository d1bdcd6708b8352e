"""Calibration of label probabilities: expected calibration error, Brier score, log loss.

Why a metric of its own kind: accuracy asks *which* label a model picks; calibration asks
whether its confidence can be trusted (a classifier that is 80% right and always 99% sure
is a worse choice than one that knows when it is unsure). That needs the model's
probability for every label, not the predicted label, so these metrics read a normalised
label distribution (``ProbabilityMetric.probability_stats``) that the task derives from
the answer (classifier-head softmax, log-likelihoods normalised over the labels, or an API's
first-token top log-probabilities). A run scored by generation has no distribution; the
runner then skips the metric and records why.

Per-sample statistics keep the full distribution plus the few numbers the reduce step needs,
so every value (and its bootstrap) is a re-weighted sum:

* ``ece``: equal-width confidence bins (``n_bins``, recorded in the signature); a sample's
  confidence is its highest label probability, bin ``b`` holds ``(b/n, (b+1)/n]`` (0 goes to
  the first bin), ``ECE = sum_b |sum_{i in b} (correct_i - conf_i)| / N``;
* ``brier``: ``sum_k (p_k - y_k)^2`` per sample, halved for two labels (scikit-learn's
  ``brier_score_loss`` with ``scale_by_half="auto"``: [0, 1] for binary, [0, 2] otherwise);
* ``nll``: ``-log p(gold)`` with ``p`` clipped to ``[eps, 1 - eps]`` (float64 machine
  epsilon), scikit-learn's ``log_loss``.

All three are losses (lower is better).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmbench.metrics.base import Declaration, Metric, MetricError, Stats, column, require_references
from llmbench.metrics.bootstrap import group_sums, weighted_mean

#: Float64 machine epsilon: scikit-learn's ``log_loss`` clips probabilities to [eps, 1-eps].
EPS = float(np.finfo(np.float64).eps)
DEFAULT_BINS = 15  # torchmetrics' and most papers' default


class ProbabilityMetric(Metric, abstract=True):
    """A metric of the label distribution rather than of the predicted label.

    The runner calls ``probability_stats`` with the task's normalised label distribution;
    ``sample_stats`` (the prediction-only contract) cannot compute such a metric and says so.
    """

    labels: tuple[str, ...]

    @abstractmethod
    def probability_stats(self, *, prediction: str, probabilities: Mapping[str, float],
                          references: Sequence[str]) -> dict[str, Any]:
        """Per-sample statistics from P(label) over the task's labels (summing to 1)."""

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        raise MetricError(f"metric {self.name!r} needs label probabilities, which only "
                          "classify or loglikelihood scoring gives — score by one of them")


def bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin of each confidence: ``(b/n, (b+1)/n]`` -> ``b``; 0 -> bin 0."""
    idx = np.ceil(confidence * n_bins).astype(np.int64) - 1
    return np.asarray(np.clip(idx, 0, n_bins - 1))  # numpy types clip as Any


class Calibration(ProbabilityMetric):
    """ECE (primary), Brier score and negative log-likelihood of the label distribution."""

    declaration = Declaration(values=("ece", "brier", "nll"), scale="unit", direction="lower",
                              indicators={}, stats_version=1)

    def __init__(self, *, labels: Sequence[str] | None = None, n_bins: int = DEFAULT_BINS) -> None:
        if not labels or len(labels) < 2:
            raise MetricError("metric 'calibration' needs the task's label set (two labels or more)")
        if len(set(labels)) != len(labels):
            raise MetricError(f"metric 'calibration': labels must be unique, got {list(labels)}")
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
            raise MetricError(f"metric 'calibration': n_bins must be a positive integer, got {n_bins!r}")
        self.name = "calibration"
        self.labels = tuple(labels)
        self.n_bins = n_bins
        self._index = {label: i for i, label in enumerate(self.labels)}

    def probability_stats(self, *, prediction: str, probabilities: Mapping[str, float],
                          references: Sequence[str]) -> dict[str, Any]:
        require_references(self.name, references)
        gold = self._index.get(references[0])
        if gold is None:
            raise ValueError(f"metric 'calibration': gold label {references[0]!r} is not in "
                             f"labels {list(self.labels)}")
        probs = [float(probabilities.get(label, 0.0)) for label in self.labels]
        total = sum(probs)
        if not math.isfinite(total) or total <= 0.0:
            raise ValueError(f"metric 'calibration': label probabilities {probabilities} do not sum to 1")
        probs = [p / total for p in probs]  # exact renormalisation against float drift
        k = len(probs)
        sq = sum((p - (1.0 if i == gold else 0.0)) ** 2 for i, p in enumerate(probs))
        pred = self._index.get(prediction, -1)
        return {
            "probs": probs,
            "gold": gold,
            "pred": pred,
            "correct": int(pred == gold),
            "confidence": max(probs),
            "brier": sq / 2.0 if k == 2 else sq,
            "nll": -math.log(min(max(probs[gold], EPS), 1.0 - EPS)),
        }

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        w = np.ones((1, len(stats))) if weights is None else weights
        conf = column(stats, "confidence")
        gap = column(stats, "correct") - conf
        bins = bin_index(conf, self.n_bins)
        per_bin = group_sums(w * gap[None, :], bins, self.n_bins)
        return {
            "ece": np.abs(per_bin).sum(axis=1) / w.sum(axis=1),
            "brier": weighted_mean(column(stats, "brier"), w),
            "nll": weighted_mean(column(stats, "nll"), w),
        }

    def primary(self) -> str:
        return "ece"

    def sample_score(self, value_name: str, stats: Mapping[str, Any]) -> float | None:
        if value_name in ("brier", "nll"):
            return float(stats[value_name])
        return None  # one sample's ECE is |correct - confidence|: not what the value means

    def signature(self, stats: Stats) -> str:
        return (f"ece:equal-width|bins:{self.n_bins}|conf:max-prob"
                "|brier:=sklearn.brier_score_loss(scale_by_half=auto)"
                "|nll:=sklearn.log_loss(eps=float64)|labels:" + str(len(self.labels)))


@dataclass(frozen=True)
class ReliabilityBin:
    """One bar of a reliability diagram: samples whose confidence fell in ``(lo, hi]``."""

    lo: float
    hi: float
    count: int
    accuracy: float | None
    confidence: float | None


def reliability_bins(stats: Stats, n_bins: int = DEFAULT_BINS) -> list[ReliabilityBin]:
    """Per-bin count, accuracy and mean confidence of stored calibration stats (the diagram
    the ECE summarises); empty bins have no accuracy or confidence."""
    conf = column(stats, "confidence") if stats else np.zeros(0)
    correct = column(stats, "correct") if stats else np.zeros(0)
    bins = bin_index(conf, n_bins)
    out = []
    for b in range(n_bins):
        mask = bins == b
        n = int(mask.sum())
        out.append(ReliabilityBin(lo=b / n_bins, hi=(b + 1) / n_bins, count=n,
                                  accuracy=float(correct[mask].mean()) if n else None,
                                  confidence=float(conf[mask].mean()) if n else None))
    return out
