"""rouge against rouge_score's scorer (max over references, mean over the corpus)."""

from __future__ import annotations

import numpy as np
from rouge_score import rouge_scorer

from llmbench.metrics import get_metric
from llmbench.metrics.summarization import ROUGE_TYPES, split_sentences


def test_rouge_equals_rouge_score_means(parallel_multi) -> None:  # type: ignore[no-untyped-def]
    hyps, refs = parallel_multi
    metric = get_metric("rouge")
    stats = [metric.sample_stats(prediction=h, references=r) for h, r in zip(hyps, refs, strict=True)]
    values = {v.name: v for v in metric.aggregate(stats, n_resamples=100)}
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    per_sample = [
        scorer.score_multi([split_sentences(r) for r in rs], split_sentences(h))
        for h, rs in zip(hyps, refs, strict=True)
    ]
    for t in ROUGE_TYPES:
        assert values[t].value == np.mean([s[t].fmeasure for s in per_sample])
        assert values[t].ci_low <= values[t].value <= values[t].ci_high  # type: ignore[operator]
    assert metric.primary() == "rougeL"
    assert next(iter(values)) == "rougeL"


def test_sentence_split_only_changes_lsum() -> None:
    pred = "The cat sat on the mat. It was happy! Then it slept."
    ref = "Then the cat slept. The cat sat on a mat and it was happy."
    metric = get_metric("rouge")
    stats = metric.sample_stats(prediction=pred, references=[ref])
    plain = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True).score(ref, pred)
    for t in ("rouge1", "rouge2", "rougeL"):
        assert stats[t] == plain[t].fmeasure  # newlines do not matter to these
    assert stats["rougeLsum"] != plain["rougeLsum"].fmeasure  # Lsum sees the sentences
    assert stats["rougeLsum"] > stats["rougeL"]


def test_split_sentences() -> None:
    text = 'He said "stop." Then left!  Why? (Nobody knew.) ok\nnext line'
    # NLTK punkt; a single newline inside a sentence is whitespace (wrapped text), not a break
    assert split_sentences(text) == 'He said "stop."\nThen left!\nWhy?\n(Nobody knew.)\nok next line'
    assert split_sentences("  3.5 apples ") == "3.5 apples"


def test_rouge_args() -> None:
    metric = get_metric("rouge", use_stemmer=False, rouge_types=["rouge1"])
    stats = metric.sample_stats(prediction="cats running", references=["cat runs"])
    assert stats == {"rouge1": 0.0}
    assert metric.primary() == "rouge1"
