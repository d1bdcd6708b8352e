"""Perplexity values against sums computed by hand (lm-eval's weighted_perplexity and
bits_per_byte: ratios of sums), word/byte counting, and direction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmbench.metrics import get_metric
from llmbench.metrics.base import MetricError
from llmbench.types import Response, Sample


def _stats(text: str, ll: float, tokens: int) -> dict:
    return get_metric("perplexity").answer_stats(
        prediction="", sample=Sample(id="d", input=text, references=(text,)),
        response=Response(logprobs=(ll,), n_scored=tokens))


def test_counts_as_lm_eval() -> None:
    s = _stats("  Two  spaces\tand é\n", -10.0, 7)
    # re.split(r"\s+") of this text: ['', 'Two', 'spaces', 'and', 'é', ''] -> 6 words; é is 2 bytes
    assert (s["words"], s["bytes"], s["tokens"]) == (6, 21, 7)


def test_values_are_ratios_of_sums() -> None:
    docs = [("one two three", -12.0, 5), ("four five", -7.5, 3), ("ça va", -4.25, 4)]
    stats = [_stats(*d) for d in docs]
    values = {v.name: v for v in get_metric("perplexity").aggregate(stats, n_resamples=50)}
    ll = -12.0 - 7.5 - 4.25
    words, n_bytes, tokens = 3 + 2 + 2, 13 + 9 + 6, 12
    assert values["word_perplexity"].value == pytest.approx(math.exp(-ll / words), rel=1e-15)
    assert values["byte_perplexity"].value == pytest.approx(math.exp(-ll / n_bytes), rel=1e-15)
    assert values["bits_per_byte"].value == pytest.approx(-ll / n_bytes / math.log(2), rel=1e-15)
    assert values["token_perplexity"].value == pytest.approx(math.exp(-ll / tokens), rel=1e-15)
    assert not values["word_perplexity"].higher_is_better
    ci = values["bits_per_byte"]
    assert ci.ci_low is not None and ci.ci_high is not None and ci.ci_low <= ci.value <= ci.ci_high


def test_bootstrap_reweights_the_sums() -> None:
    stats = [_stats("a b", -4.0, 2), _stats("c", -1.0, 1)]
    out = get_metric("perplexity").score(stats, np.array([[2.0, 0.0], [1.0, 1.0]]))
    assert out["word_perplexity"].tolist() == pytest.approx([math.exp(8 / 4), math.exp(5 / 3)])


def test_needs_a_rolling_answer() -> None:
    with pytest.raises(MetricError, match="loglikelihood_rolling"):
        get_metric("perplexity").answer_stats(prediction="x", sample=Sample(id="d", input="x", references=("x",)),
                                              response=Response(text="x"))
