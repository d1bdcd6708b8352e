"""SQuAD v1.1 exact match / F1 against golden values from the official script.

Neither ``evaluate`` nor ``datasets`` ships the SQuAD scorer offline, so the expected
numbers below were produced by running the official v1.1 evaluation script
(huggingface/evaluate ``metrics/squad/compute_score.py``: ``metric_max_over_ground_truths``
with ``exact_match_score``/``f1_score`` per sample, ``compute_score`` for the corpus) on
exactly these inputs, and are compared with ``==`` (float repr, last digit).
"""

from __future__ import annotations

import pytest

from llmbench.metrics import get_metric
from llmbench.metrics.qa import normalize_answer

# (prediction, references, official exact match, official F1)
GOLDEN = [
    ("Denver Broncos", ["Denver Broncos", "The Denver Broncos"], 1, 1.0),
    ("the Denver Broncos!", ["Denver Broncos"], 1, 1.0),
    ("Carolina Panthers", ["Denver Broncos"], 0, 0.0),
    ("Santa Clara, California", ["Levi's Stadium", "Santa Clara, California", "Santa Clara"], 1, 1.0),
    ("in Santa Clara", ["Santa Clara, California"], 0, 0.6666666666666666),
    ("a banana and an apple", ["The banana, the apple"], 0, 0.8),
    ("  Multiple   spaces\tand\nnewlines ", ["multiple spaces and newlines"], 1, 1.0),
    ("the the the", ["the"], 1, 0.0),
    ("", [""], 1, 0.0),
    ("", ["something"], 0, 0.0),
    ("gold gold gold medal", ["gold medal", "medal"], 0, 0.6666666666666666),
    ("Café — naïve “quotes”", ["cafe naive quotes", "Café naïve quotes"], 0, 0.5714285714285715),
    ("1,000 people", ["1000 people"], 1, 1.0),
    ("Super Bowl L", ["Super Bowl L", "L"], 1, 1.0),
    ("February 7, 2016", ["February 7, 2016", "February 7", "2016"], 1, 1.0),
    ("It was played on February 7th", ["February 7, 2016"], 0, 0.2222222222222222),
]
# compute_score(dataset, predictions) of the official script on GOLDEN
OFFICIAL_CORPUS = {"exact_match": 56.25, "f1": 62.0436507936508}


def test_per_sample_matches_official() -> None:
    metric = get_metric("squad")
    for prediction, refs, em, f1 in GOLDEN:
        stats = metric.sample_stats(prediction=prediction, references=refs)
        assert stats == {"exact_match": em, "f1": f1}, prediction


def test_corpus_matches_official_to_the_last_digit() -> None:
    metric = get_metric("squad")
    stats = [metric.sample_stats(prediction=p, references=r) for p, r, _, _ in GOLDEN]
    values = {v.name: v.value for v in metric.aggregate(stats, n_resamples=200)}
    assert values == OFFICIAL_CORPUS
    assert metric.primary() == "f1"


@pytest.mark.parametrize(("name", "value_name"), [("exact_match", "exact_match"), ("squad_f1", "f1")])
def test_single_value_metrics(name: str, value_name: str) -> None:
    metric = get_metric(name)
    stats = [metric.sample_stats(prediction=p, references=r) for p, r, _, _ in GOLDEN]
    (value,) = metric.aggregate(stats, n_resamples=100)
    assert value.name == value_name == metric.primary()
    assert value.value == OFFICIAL_CORPUS[value_name]
    assert value.ci_low is not None and value.ci_high is not None
    assert value.ci_low <= value.value <= value.ci_high


def test_normalize_answer() -> None:
    assert normalize_answer("The  Quick, brown FOX!") == "quick brown fox"
    assert normalize_answer("an apple a day: theatre") == "apple day theatre"


def test_normalize_answer_equals_the_official_functions_on_every_character() -> None:
    """The official script's normalisation (its four nested functions, copied verbatim) on
    every character up to U+2FFF and on mixed strings: the fast version deletes exactly the
    ASCII punctuation it deletes."""
    import re
    import string

    def official(s: str) -> str:
        def remove_articles(text: str) -> str:
            return re.sub(r"\b(a|an|the)\b", " ", text)

        def white_space_fix(text: str) -> str:
            return " ".join(text.split())

        def remove_punc(text: str) -> str:
            exclude = set(string.punctuation)
            return "".join(ch for ch in text if ch not in exclude)

        def lower(text: str) -> str:
            return text.lower()

        return white_space_fix(remove_articles(remove_punc(lower(s))))

    texts = [f"x{chr(i)}y z{chr(i)}" for i in range(0x3000)]
    texts += ["The (quick) brown-fox's \"tale\", an épée; İstanbul!", "a.b,c the~end", GOLDEN[11][0]]
    assert [normalize_answer(t) for t in texts] == [official(t) for t in texts]
