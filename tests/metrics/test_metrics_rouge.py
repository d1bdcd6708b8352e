"""rouge against rouge_score's scorer (max over references, mean over the corpus)."""

from __future__ import annotations

import numpy as np
import pytest
from rouge_score import rouge_scorer

from llmbench.metrics import get_metric
from llmbench.metrics.summarization import ROUGE_TYPES, split_sentences

NO_SPLIT = ("rouge1", "rouge2", "rougeL")  # sentence breaks do not matter to these


def test_rouge_equals_rouge_score_means(parallel_multi) -> None:  # type: ignore[no-untyped-def]
    hyps, refs = parallel_multi
    metric = get_metric("rouge")
    stats = [metric.sample_stats(prediction=h, references=r) for h, r in zip(hyps, refs, strict=True)]
    values = {v.name: v for v in metric.aggregate(stats, n_resamples=100)}
    scorer = rouge_scorer.RougeScorer(list(NO_SPLIT), use_stemmer=True)
    per_sample = [scorer.score_multi(rs, h) for h, rs in zip(hyps, refs, strict=True)]
    for t in NO_SPLIT:  # rougeLsum: against hand-split sentences, below
        assert values[t].value == np.mean([s[t].fmeasure for s in per_sample])
    for t in ROUGE_TYPES:
        assert values[t].ci_low <= values[t].value <= values[t].ci_high  # type: ignore[operator]
    assert metric.primary() == "rougeL"
    assert next(iter(values)) == "rougeL"


# (prediction, the same split into sentences by hand, references, the same split by hand)
LSUM_CASES = [
    ("The cat sat on the mat. It was happy! Then it slept.",
     "The cat sat on the mat.\nIt was happy!\nThen it slept.",
     ["Then the cat slept. The cat sat on a mat and it was happy.",
      "A dog barked at night. Nobody woke up. The cat slept on."],
     ["Then the cat slept.\nThe cat sat on a mat and it was happy.",
      "A dog barked at night.\nNobody woke up.\nThe cat slept on."]),
    ("Rates rose again this year. Jobs grew slowly in the city",
     "Rates rose again this year.\nJobs grew slowly in the city",
     ["Jobs grew slowly. Rates rose this year, again?"],
     ["Jobs grew slowly.\nRates rose this year, again?"]),
    ("One long sentence with no break at all about the river bank",
     "One long sentence with no break at all about the river bank",
     ["The river bank moved. Money moved over the bridge. The night was green."],
     ["The river bank moved.\nMoney moved over the bridge.\nThe night was green."]),
]


def test_rouge_lsum_equals_rouge_score_on_sentences_split_by_hand() -> None:
    metric = get_metric("rouge")
    stats = [metric.sample_stats(prediction=p, references=rs) for p, _, rs, _ in LSUM_CASES]
    scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    want = [scorer.score_multi(rs_split, p_split)["rougeLsum"].fmeasure
            for _, p_split, _, rs_split in LSUM_CASES]
    assert [s["rougeLsum"] for s in stats] == pytest.approx(want, abs=1e-12)
    assert len(set(want)) == 3 and min(want) > 0 and max(want) < 1
    (value,) = [v for v in metric.aggregate(stats, n_resamples=0) if v.name == "rougeLsum"]
    assert value.value == pytest.approx(np.mean(want), abs=1e-12)


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
    # NLTK punkt, the HF recipe: a newline inside a sentence stays (rouge_score splits there)
    assert split_sentences(text) == 'He said "stop."\nThen left!\nWhy?\n(Nobody knew.)\nok\nnext line'
    # unwrap: a single newline inside a sentence is whitespace (wrapped text), not a break
    assert split_sentences(text, unwrap=True) == 'He said "stop."\nThen left!\nWhy?\n(Nobody knew.)\nok next line'
    assert split_sentences("  3.5 apples ") == "3.5 apples"


def test_rouge_args() -> None:
    metric = get_metric("rouge", use_stemmer=False, rouge_types=["rouge1"])
    stats = metric.sample_stats(prediction="cats running", references=["cat runs"])
    assert stats == {"rouge1": 0.0}
    assert metric.primary() == "rouge1"
