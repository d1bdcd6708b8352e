"""SQuAD v1.1 exact match and token F1 (max over references), on the 0-100 scale.

Neither ``evaluate`` nor ``datasets`` ships the SQuAD scoring script offline (``evaluate``
fetches it from the Hub), so the official v1.1 logic is reproduced here, operation for
operation: "Official evaluation script for v1.1 of the SQuAD dataset",
https://rajpurkar.github.io/SQuAD-explorer/ (``evaluate-v1.1.py``; also
huggingface/evaluate ``metrics/squad/compute_score.py``). The corpus value is
``100.0 * sum(per_sample) / total`` summed in sample order, as the script does, so values
agree with it to the last digit (tests pin golden values produced by that script).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmbench.metrics.base import Declaration, Metric, Stats, column, require_references
from llmbench.metrics.bootstrap import weighted_mean

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)  # deletes each ASCII punctuation mark


def normalize_answer(text: str) -> str:
    """SQuAD v1.1: lowercase, drop ASCII punctuation, drop articles, collapse whitespace."""
    text = text.lower()
    text = text.translate(_PUNCTUATION)  # as SQuAD's ''.join(ch for ch in s if ch not in exclude), in C
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction_tokens: list[str], truth_tokens: list[str]) -> float:
    """SQuAD v1.1 token F1 between bags of normalised tokens (``normalize_answer(s).split()``)."""
    num_same = sum((Counter(prediction_tokens) & Counter(truth_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def token_f1_v2(prediction_tokens: list[str], truth_tokens: list[str]) -> float:
    """SQuAD v2.0 token F1: as v1.1, except that when either side is empty the score is
    1 if both are empty (a correct abstention on an unanswerable question) else 0."""
    if not prediction_tokens or not truth_tokens:
        return float(prediction_tokens == truth_tokens)
    return token_f1(prediction_tokens, truth_tokens)


#: The official v2.0 script's breakdown: (value name, per-sample stat, has an answer).
V2_BREAKDOWN = (
    ("HasAns_exact", "exact_match", 1),
    ("HasAns_f1", "f1", 1),
    ("NoAns_exact", "exact_match", 0),
    ("NoAns_f1", "f1", 0),
)


class Squad(Metric, abstract=True):
    """``exact_match`` and/or SQuAD ``f1`` (0-100), each the max over the references; the
    registered metrics below pick the values (``_values``) and the script version (``_v2``).

    ``_v2`` follows the official v2.0 script: references that normalise to nothing are
    dropped, an unanswerable question's references become ``[""]``, and F1 of two empty
    answers is 1. Like the script it also reports ``HasAns_exact``/``HasAns_f1`` (questions
    with an answer) and ``NoAns_exact``/``NoAns_f1`` (unanswerable ones, whose reference is
    the empty string), each on the same 0-100 scale, and leaves a group out when the run
    has no question of that kind. A question has an answer when any raw reference is
    non-empty (the script's ``bool(qa["answers"])``).
    """

    _values: tuple[str, ...]
    _v2: bool = False

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        require_references(self.name, references)
        # The script's max over references of exact_match / f1, with the prediction and each
        # reference normalised once (the driver scores thousands of answers a second).
        truths = [normalize_answer(r) for r in references]
        out: dict[str, Any] = {}
        if self._v2:
            out["has_answer"] = int(any(references))
            truths = [t for t in truths if t] or [""]
        guess = normalize_answer(prediction)
        if "exact_match" in self._values:
            out["exact_match"] = int(guess in truths)
        if "f1" in self._values:
            f1 = token_f1_v2 if self._v2 else token_f1
            tokens = guess.split()
            out["f1"] = max(f1(tokens, t.split()) for t in truths)
        return out

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if weights is None:
            # sum() adds in sample order like the script's ``+=`` loop; then 100.0 * s / n.
            out = {
                v: np.array([100.0 * sum(s[v] for s in stats) / len(stats)]) for v in self._values
            }
        else:
            out = {v: 100.0 * weighted_mean(column(stats, v), weights) for v in self._values}
        return out | self._breakdown(stats, weights)

    def _breakdown(self, stats: Stats, weights: np.ndarray | None) -> dict[str, np.ndarray]:
        """v2's HasAns/NoAns values; a group with no question in the run is left out (a
        resample that draws none of a present group gives NaN, ignored by the CI)."""
        if not self._v2 or any("has_answer" not in s for s in stats):
            return {}  # v1.1, or stats stored before the breakdown existed
        out: dict[str, np.ndarray] = {}
        has_answer = column(stats, "has_answer", np.int64)
        for name, value, group in V2_BREAKDOWN:
            if value not in self._values or not np.any(has_answer == group):
                continue
            if weights is None:
                picked = [s[value] for s in stats if s["has_answer"] == group]
                out[name] = np.array([100.0 * sum(picked) / len(picked)])
            else:
                mask = (has_answer == group).astype(np.float64)
                counts = weights @ mask
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[name] = np.where(
                        counts > 0, 100.0 * (weights @ (column(stats, value) * mask)) / counts, np.nan
                    )
        return out

    def primary(self) -> str:
        return "f1" if "f1" in self._values else "exact_match"

    def signature(self, stats: Stats) -> str:
        version = "v2.0" if self._v2 else "v1.1"
        return f"squad-{version}-official|max-over-refs|scale:100"


_EXACT = {"exact_match": "exact_match"}  # the per-sample 0/1 exact match is the value's indicator


class ExactMatch(Squad):
    """``exact_match``: SQuAD-normalised exact match only."""

    name = "exact_match"
    _values = ("exact_match",)
    declaration = Declaration(values=_values, scale="percent", direction="higher", indicators=_EXACT,
                              stats_version=1)


class SquadF1(Squad):
    """``squad_f1``: SQuAD token F1 only (value name ``f1``)."""

    name = "squad_f1"
    _values = ("f1",)
    declaration = Declaration(values=_values, scale="percent", direction="higher", indicators={},
                              stats_version=1)


class SquadV1(Squad):
    """``squad``: both SQuAD v1.1 values, as the official script reports them."""

    name = "squad"
    _values = ("exact_match", "f1")
    declaration = Declaration(values=_values, scale="percent", direction="higher", indicators=_EXACT,
                              stats_version=1)


class SquadV2(Squad):
    """``squad_v2``: SQuAD v2.0 exact match and F1 (unanswerable questions score 1 for an empty
    answer) and the script's HasAns/NoAns breakdown, each reported when the run has such questions."""

    name = "squad_v2"
    _values = ("exact_match", "f1")
    _v2 = True
    declaration = Declaration(values=(*_values, *(value for value, _, _ in V2_BREAKDOWN)), scale="percent",
                              direction="higher", indicators=_EXACT, stats_version=1)
