"""bleu and chrf against sacrebleu's corpus functions on the same inputs, exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

from llmbench.metrics import MetricError, get_metric


def _streams(refs: list[list[str]]) -> list[list[str | None]]:
    """sacrebleu's layout: one stream per reference index, padded with None."""
    width = max(len(r) for r in refs)
    return [[r[i] if i < len(r) else None for r in refs] for i in range(width)]


def _score(metric, hyps, refs, **kwargs):  # type: ignore[no-untyped-def]
    stats = [metric.sample_stats(prediction=h, references=r) for h, r in zip(hyps, refs, strict=True)]
    stats = json.loads(json.dumps(stats))  # as stored in and read back from the results DB
    return stats, {v.name: v for v in metric.aggregate(stats, **kwargs)}


def test_bleu_equals_corpus_bleu(parallel) -> None:  # type: ignore[no-untyped-def]
    hyps, refs = parallel
    _, values = _score(get_metric("bleu"), hyps, refs, n_resamples=100)
    ref = sacrebleu.corpus_bleu(hyps, _streams(refs))
    assert values["bleu"].value == ref.score
    assert 0 < ref.score < 100
    assert values["bleu"].signature.startswith(
        "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" + sacrebleu.__version__
    )
    assert "|boot:100|seed:0" in values["bleu"].signature


def test_bleu_multi_reference_variable_count(parallel_multi) -> None:  # type: ignore[no-untyped-def]
    hyps, refs = parallel_multi
    assert len({len(r) for r in refs}) > 1
    _, values = _score(get_metric("bleu"), hyps, refs, n_resamples=0)
    assert values["bleu"].value == sacrebleu.corpus_bleu(hyps, _streams(refs)).score
    assert values["bleu"].signature.startswith("nrefs:var|")


@pytest.mark.parametrize(
    "args",
    [
        {"tokenize": "none"},
        {"tokenize": "char", "lowercase": True},
        {"lowercase": True, "smooth_method": "add-k"},
        {"smooth_method": "floor", "smooth_value": 0.2, "max_ngram_order": 3},
    ],
)
def test_bleu_args_pass_through(parallel_multi, args) -> None:  # type: ignore[no-untyped-def]
    hyps, refs = parallel_multi
    metric = get_metric("bleu", **args)
    stats, values = _score(metric, hyps, refs, n_resamples=0)
    reference = BLEU(**args)
    assert values["bleu"].value == reference.corpus_score(hyps, _streams(refs)).score
    assert values["bleu"].signature == reference.get_signature().format()
    # the bootstrap path (re-summed stats) with all-ones weights is the point value
    ones = np.ones((1, len(stats)))
    assert metric.score(stats, ones)["bleu"][0] == values["bleu"].value


def test_chrf_equals_corpus_chrf(parallel, parallel_multi) -> None:  # type: ignore[no-untyped-def]
    for hyps, refs in (parallel, parallel_multi):
        _, values = _score(get_metric("chrf"), hyps, refs, n_resamples=50)
        assert values["chrf"].value == sacrebleu.corpus_chrf(hyps, _streams(refs)).score
        lo, hi = values["chrf"].ci_low, values["chrf"].ci_high
        assert lo is not None and hi is not None and lo <= values["chrf"].value <= hi


def test_chrf_plus_plus_and_args(parallel_multi) -> None:  # type: ignore[no-untyped-def]
    hyps, refs = parallel_multi
    args = {"word_order": 2, "lowercase": True, "eps_smoothing": True}
    metric = get_metric("chrf", **args)
    stats, values = _score(metric, hyps, refs, n_resamples=0)
    reference = CHRF(**args)
    assert values["chrf"].value == reference.corpus_score(hyps, _streams(refs)).score
    assert values["chrf"].signature == reference.get_signature().format()
    assert {"c6_match", "w2_hyp", "nrefs"} <= set(stats[0])
    assert metric.score(stats, np.ones((1, len(stats))))["chrf"][0] == values["chrf"].value


def test_bad_sacrebleu_args() -> None:
    with pytest.raises(MetricError, match=r"unknown tokenize='nope'.*13a"):
        get_metric("bleu", tokenize="nope")
    with pytest.raises(MetricError, match="bad arguments") as info:
        get_metric("chrf", colour="blue")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("args", [{}, {"case_sensitive": True, "no_punct": True}, {"normalized": True}])
def test_ter_equals_corpus_ter(parallel, parallel_multi, args) -> None:  # type: ignore[no-untyped-def]
    """TER (lower is better) against sacrebleu's own corpus TER, one and several references
    (their mean length is a float); the re-summed bootstrap path with all-ones weights too."""
    from sacrebleu.metrics import TER

    for hyps, refs in (parallel, parallel_multi):
        metric = get_metric("ter", **args)
        stats, values = _score(metric, hyps, refs, n_resamples=50)
        reference = TER(**args)
        assert values["ter"].value == reference.corpus_score(hyps, _streams(refs)).score
        assert 0 < values["ter"].value < 100 and not values["ter"].higher_is_better
        assert values["ter"].signature.startswith(reference.get_signature().format().split("|version")[0])
        assert metric.score(stats, np.ones((1, len(stats))))["ter"][0] == pytest.approx(values["ter"].value,
                                                                                       rel=1e-12)
