"""Perplexity of documents: token, word and byte perplexity and bits per byte.

Per document the stats are its total log-likelihood (``Response.logprobs[0]`` of a
``loglikelihood_rolling`` answer; a masked LM's pseudo-log-likelihood), the number of tokens
that total covers (``Response.n_scored``), and the words and UTF-8 bytes of the scored text,
counted as lm-evaluation-harness 0.4.13 counts them (``len(re.split(r"\\s+", text))`` and
``len(text.encode("utf-8"))``). The corpus values are lm-eval's ``weighted_perplexity`` and
``bits_per_byte``: ratios of sums over documents, not means of per-document ratios, with
the sums taken in sample order as Python's ``sum`` does, so the point values are lm-eval's
to the last digit given the same log-likelihoods. Lower is better for all four.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmbench.metrics.base import Declaration, Metric, MetricError, Stats, column
from llmbench.types import Response, Sample

_WS = re.compile(r"\s+")


def count_words(text: str) -> int:
    """lm-eval's ``count_words``: pieces between runs of whitespace (an edge space counts one)."""
    return len(_WS.split(text))


def count_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


class Perplexity(Metric):
    """Values ``word_perplexity`` (primary), ``byte_perplexity``, ``bits_per_byte`` and
    ``token_perplexity`` (per the model's own tokens: not comparable across tokenizers)."""

    declaration = Declaration(values=("word_perplexity", "byte_perplexity", "bits_per_byte", "token_perplexity"),
                              scale="unit", direction="lower", indicators={}, stats_version=1)

    def __init__(self, *, labels: Sequence[str] | None = None) -> None:
        self.name = "perplexity"

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        raise MetricError("metric 'perplexity' scores a model's log-likelihood of a document, not a predicted "
                          "text — use it with a language_modeling task (scoring: loglikelihood_rolling)")

    def answer_stats(self, *, prediction: str, sample: Sample, response: Response) -> dict[str, Any]:
        if not response.logprobs or response.n_scored is None:
            raise MetricError("metric 'perplexity' needs a loglikelihood_rolling answer (a document's "
                              "log-likelihood and token count) — use it with a language_modeling task")
        text = sample.references[0]
        return {"loglikelihood": float(response.logprobs[0]), "tokens": int(response.n_scored),
                "words": count_words(text), "bytes": count_bytes(text)}

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if weights is None:
            # lm-eval's weighted_mean: Python sums in sample order, then one division
            ll = sum(float(s["loglikelihood"]) for s in stats)
            per = {k: ll / sum(int(s[k]) for s in stats) for k in ("tokens", "words", "bytes")}
            return {"word_perplexity": np.array([math.exp(-per["words"])]),
                    "byte_perplexity": np.array([math.exp(-per["bytes"])]),
                    "bits_per_byte": np.array([-per["bytes"] / math.log(2)]),
                    "token_perplexity": np.array([math.exp(-per["tokens"])])}
        w = np.asarray(weights, dtype=np.float64)
        ll_w = w @ column(stats, "loglikelihood")
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = {k: ll_w / (w @ column(stats, k)) for k in ("tokens", "words", "bytes")}
        return {"word_perplexity": np.exp(-mean["words"]), "byte_perplexity": np.exp(-mean["bytes"]),
                "bits_per_byte": -mean["bytes"] / math.log(2), "token_perplexity": np.exp(-mean["tokens"])}

    def primary(self) -> str:
        return "word_perplexity"

    def signature(self, stats: Stats) -> str:
        return "lm-eval-0.4.13-weighted_perplexity|words:re.split(\\s+)|bytes:utf-8"
