"""Classification from the first answer token's top log-probabilities.

A chat API gives no way to score an arbitrary continuation, but it does give the
top-N log-probabilities of the first generated token. We read each label's score
from that list. We do not know the remote tokenizer, so the rule works on text:

* normalise a string as ``s.strip().casefold()``;
* a top token *matches* a label when its normalised text is non-empty and a
  prefix of the normalised label (" Positive", "pos" and "positive" all match
  "positive"; "positively" does not);
* a token that matches two or more labels says nothing about which one the model
  meant, so it is skipped;
* a label's score is the log-probability of its highest-ranked matching token;
  a label with no match among the top N scores ``MISSING_LOGPROB`` — below any
  value an API returns (OpenAI floors at -9999), finite so results stay valid JSON.

Labels that the first token cannot tell apart are refused before anything is
sent (``check_labels``): duplicates after normalisation, or labels where the first
word of one is a prefix of the first word of another ("pos" / "positive",
"very good" / "very bad", "1" / "10"), since the first token of such labels can be
identical and the scores would then be a coin toss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from llmbench.models.base import ModelError

MISSING_LOGPROB = -1e4


def _norm(text: str) -> str:
    return text.strip().casefold()


def _first_word(text: str) -> str:
    return _norm(text).split(maxsplit=1)[0] if _norm(text) else ""


def check_labels(labels: Sequence[str]) -> None:
    """Raise ``ModelError`` if the first answer token cannot separate ``labels``."""
    if not labels:
        raise ModelError("classify requests need the label names in request.continuations")
    seen: dict[str, str] = {}
    for label in labels:
        n = _norm(label)
        if not n:
            raise ModelError("classify by first-token log-probabilities: a label is empty")
        if n in seen:
            raise ModelError(
                f"classify by first-token log-probabilities: labels '{seen[n]}' and '{label}' "
                "are the same after case-folding"
            )
        seen[n] = label
    words = [(label, _first_word(label)) for label in labels]
    for i, (a, wa) in enumerate(words):
        for b, wb in words[i + 1:]:
            if wa.startswith(wb) or wb.startswith(wa):
                raise ModelError(
                    f"classify by first-token log-probabilities cannot tell labels '{a}' and "
                    f"'{b}' apart by their first token — rename the labels or use "
                    "loglikelihood / generate scoring for this task"
                )


def score_labels(
    labels: Sequence[str], top: Iterable[tuple[str, float]]
) -> dict[str, float]:
    """Scores per label from ``(token, logprob)`` pairs, best first (see module doc)."""
    normed = [(label, _norm(label)) for label in labels]
    scores = dict.fromkeys(labels, MISSING_LOGPROB)
    found: set[str] = set()
    for token, logprob in sorted(top, key=lambda t: -t[1]):
        t = _norm(token)
        if not t:
            continue
        matches = [label for label, n in normed if n.startswith(t)]
        if len(matches) != 1 or matches[0] in found:
            continue
        found.add(matches[0])
        scores[matches[0]] = float(logprob)
    return scores
