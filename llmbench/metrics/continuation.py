"""Perplexity and greedy accuracy of one target continuation, as lm-evaluation-harness
0.4.13 scores ``output_type: loglikelihood`` (LAMBADA).

Per sample the stats are the target's log-likelihood after the prompt (``Response.logprobs[0]``
of a one-continuation ``loglikelihood`` answer) and whether greedy decoding reproduces the
target (``Response.greedy_match[0]``). The corpus values are lm-eval's aggregations:
``perplexity`` = ``exp(-mean(ll))`` with the mean as lm-eval takes it (Python's ``sum`` in
sample order, then one division), so the point value is lm-eval's to the last digit given the
same log-likelihoods; ``acc`` = the mean of the greedy flags. A resample re-weights the same
two columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmbench.metrics.base import Declaration, Metric, MetricError, Stats, column
from llmbench.types import Response, Sample


class ContinuationLikelihood(Metric):
    """Values ``acc`` (primary; the target is the greedy continuation) and ``perplexity``
    (lower is better) of a ``continuation`` task."""

    declaration = Declaration(values=("acc", "perplexity"), scale="unit", direction="higher",
                              directions={"perplexity": "lower"}, indicators={"acc": "acc"}, stats_version=1)

    def __init__(self, *, labels: Sequence[str] | None = None) -> None:
        self.name = "continuation"

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        raise MetricError("metric 'continuation' scores a model's log-likelihood of a target continuation, not a "
                          "predicted text — use it with a continuation task (scoring: loglikelihood)")

    def answer_stats(self, *, prediction: str, sample: Sample, response: Response) -> dict[str, Any]:
        if response.logprobs is None or len(response.logprobs) != 1:
            raise MetricError("metric 'continuation' needs a loglikelihood answer for one continuation — use it "
                              "with a continuation task (scoring: loglikelihood)")
        greedy = response.greedy_match
        if greedy is None or len(greedy) != 1:
            raise MetricError("metric 'continuation' needs the adapter to say whether the target is the greedy "
                              "continuation (Response.greedy_match) — use a local model (hf:)")
        return {"loglikelihood": float(response.logprobs[0]), "acc": int(bool(greedy[0]))}

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if weights is None:  # lm-eval's perplexity aggregation: exp(-sum(ll) / n), the sum in order
            mean_ll = sum(float(s["loglikelihood"]) for s in stats) / len(stats)
            acc = sum(int(s["acc"]) for s in stats) / len(stats)
            return {"acc": np.array([acc]), "perplexity": np.array([math.exp(-mean_ll)])}
        w = np.asarray(weights, dtype=np.float64)
        total = w.sum(axis=-1)
        with np.errstate(over="ignore"):
            return {"acc": (w @ column(stats, "acc")) / total,
                    "perplexity": np.exp(-(w @ column(stats, "loglikelihood")) / total)}

    def primary(self) -> str:
        return "acc"

    def signature(self, stats: Stats) -> str:
        return "lm-eval-0.4.13-loglikelihood|perplexity:exp(-mean ll)|acc:is_greedy"
