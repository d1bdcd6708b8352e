"""ROUGE F-measures from Google's ``rouge_score``, max over references, mean over corpus.

This matches HF ``evaluate``'s rouge with ``use_aggregator=False`` followed by a mean
(its default aggregator reports the median of its own bootstrap, not the plain mean).

ROUGE-Lsum is summary-level LCS over *newline-separated* sentences. HF recipes split
with ``nltk.sent_tokenize``, whose punkt data cannot be downloaded here, so both texts
are split with a small documented regex (``split_sentences``) before scoring. ROUGE-1/2/L
are unaffected: the rouge_score tokenizer treats newlines as any other separator.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from rouge_score import rouge_scorer

from llmbench.metrics.base import Metric, MetricError, Stats, column, require_references
from llmbench.metrics.bootstrap import weighted_mean

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

# A sentence ends at ., ! or ? (optionally followed by closing quotes/brackets) followed
# by whitespace. Known limits: abbreviations ("Dr. Smith") and decimals followed by a
# space split too; both sides are split the same way, so the effect on Lsum is small.
_SENTENCE_END = re.compile(r"([.!?][\"'”’)\]]*)\s+")


def split_sentences(text: str) -> str:
    """Put each sentence on its own line (existing newlines are kept)."""
    return _SENTENCE_END.sub(r"\1\n", text.strip())


class Rouge(Metric):
    """rouge1, rouge2, rougeL, rougeLsum F-measures (0-1), Porter stemming on by default."""

    def __init__(
        self,
        *,
        labels: Sequence[str] | None = None,
        use_stemmer: bool = True,
        rouge_types: Sequence[str] = ROUGE_TYPES,
    ) -> None:
        unknown = [t for t in rouge_types if not re.fullmatch(r"rouge[1-9]|rougeL|rougeLsum", t)]
        if unknown or not rouge_types:
            raise MetricError(
                f"metric 'rouge': bad rouge_types {list(rouge_types)}; use rouge1..rouge9, "
                "rougeL, rougeLsum"
            )
        self.name = "rouge"
        self.use_stemmer = use_stemmer
        self.rouge_types = tuple(rouge_types)
        self._scorer = rouge_scorer.RougeScorer(list(self.rouge_types), use_stemmer=use_stemmer)

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        require_references(self.name, references)
        scores = self._scorer.score_multi(
            [split_sentences(r) for r in references], split_sentences(prediction)
        )
        return {t: float(scores[t].fmeasure) for t in self.rouge_types}

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if weights is None:
            return {t: np.array([np.mean(column(stats, t))]) for t in self.rouge_types}
        return {t: weighted_mean(column(stats, t), weights) for t in self.rouge_types}

    def primary(self) -> str:
        return "rougeL" if "rougeL" in self.rouge_types else self.rouge_types[0]

    def signature(self, stats: Stats) -> str:
        from importlib.metadata import version

        stem = "yes" if self.use_stemmer else "no"
        return (
            f"rouge_score:{version('rouge-score')}|fmeasure|stem:{stem}"
            "|multi:max|lsum-split:regex"
        )
