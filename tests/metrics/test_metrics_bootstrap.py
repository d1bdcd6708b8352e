"""Bootstrap CIs, paired bootstrap and McNemar."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binomtest

from llmbench.metrics import bootstrap, get_metric, mcnemar, paired_bootstrap
from llmbench.metrics.bootstrap import group_sums, percentile_ci, resample_weights, weight_chunks


def _accuracy_stats(n: int, p: float, seed: int) -> list[dict]:
    metric = get_metric("accuracy")
    rng = np.random.default_rng(seed)
    return [
        metric.sample_stats(prediction="a" if hit else "b", references=["a"])
        for hit in rng.random(n) < p
    ]


def _all_metric_stats(parallel):  # type: ignore[no-untyped-def]
    hyps, refs = parallel
    labels = ["no", "yes"]
    rng = np.random.default_rng(0)
    gold = [labels[i] for i in rng.integers(2, size=len(hyps))]
    pred = [g if rng.random() < 0.7 else labels[1 - labels.index(g)] for g in gold]
    cases = {
        "accuracy": (pred, [[g] for g in gold]),
        "f1": (pred, [[g] for g in gold]),
        "bleu": (hyps, refs),
        "chrf": (hyps, refs),
        "rouge": (hyps, refs),
        "squad": (hyps, refs),
    }
    for name, (ps, rs) in cases.items():
        metric = get_metric(name, labels=labels)
        stats = [metric.sample_stats(prediction=p, references=r) for p, r in zip(ps, rs, strict=True)]
        yield metric, stats


def test_ci_contains_point_and_is_deterministic(parallel) -> None:  # type: ignore[no-untyped-def]
    for metric, stats in _all_metric_stats(parallel):
        first = metric.aggregate(stats, n_resamples=300, seed=7)
        again = metric.aggregate(json.loads(json.dumps(stats)), n_resamples=300, seed=7)
        other = metric.aggregate(stats, n_resamples=300, seed=8)
        assert first == again, metric.name
        assert first != other, metric.name
        assert first[0].name == metric.primary()
        for value in first:
            assert value.ci_low is not None and value.ci_high is not None
            assert value.ci_low <= value.value <= value.ci_high, (metric.name, value)
            assert value.n == len(stats)
            assert value.signature.endswith("|ci:percentile-0.95|boot:300|seed:7")


def test_ci_narrows_with_more_samples() -> None:
    metric = get_metric("accuracy")
    small = metric.aggregate(_accuracy_stats(100, 0.7, seed=0))[0]
    large = metric.aggregate(_accuracy_stats(10_000, 0.7, seed=0))[0]
    width = lambda v: v.ci_high - v.ci_low  # noqa: E731
    assert width(large) < width(small) / 5
    # ~ normal approximation 2 * 1.96 * sqrt(p (1 - p) / n)
    assert width(large) == pytest.approx(2 * 1.96 * np.sqrt(0.21 / 10_000), rel=0.15)


def test_wider_confidence_gives_wider_interval() -> None:
    stats = _accuracy_stats(500, 0.6, seed=3)
    metric = get_metric("accuracy")
    (v90,) = metric.aggregate(stats, confidence=0.90)
    (v99,) = metric.aggregate(stats, confidence=0.99)
    assert v99.ci_low < v90.ci_low and v99.ci_high > v90.ci_high  # type: ignore[operator]


def test_no_resamples_means_no_ci_and_empty_gives_no_values() -> None:
    metric = get_metric("accuracy")
    (value,) = metric.aggregate(_accuracy_stats(10, 0.5, seed=0), n_resamples=0)
    assert value.ci_low is None and value.ci_high is None and "boot" not in value.signature
    assert metric.aggregate([]) == []


def test_resample_weights_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    weights = resample_weights(50, 20, np.random.default_rng(0))
    assert weights.shape == (20, 50)
    assert (weights.sum(axis=1) == 50).all()
    monkeypatch.setattr(bootstrap, "MAX_CHUNK_CELLS", 100)
    chunks = list(weight_chunks(30, 7, seed=0))  # 3 rows of 30 fit in 100 cells
    assert [c.shape for c in chunks] == [(3, 30), (3, 30), (1, 30)]
    assert [c.shape for c in weight_chunks(500, 2, seed=0)] == [(1, 500), (1, 500)]
    a = np.concatenate(list(weight_chunks(40, 30, seed=3)))
    b = np.concatenate(list(weight_chunks(40, 30, seed=3)))
    assert (a == b).all()


def test_group_sums_matches_naive() -> None:
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 4, size=(6, 40)).astype(float)
    keys = rng.integers(-1, 5, size=40)
    got = group_sums(weights, keys, 6)
    want = np.stack([[w[keys == g].sum() for g in range(6)] for w in weights])
    np.testing.assert_array_equal(got, want)
    assert group_sums(weights, np.full(40, -1), 3).sum() == 0


def test_percentile_ci_ignores_nan() -> None:
    assert percentile_ci(np.array([np.nan, 1.0, 1.0])) == (1.0, 1.0)
    with pytest.raises(ValueError):
        percentile_ci(np.array([1.0]), confidence=1.0)


def test_paired_bootstrap_identical_runs(parallel) -> None:  # type: ignore[no-untyped-def]
    for metric, stats in _all_metric_stats(parallel):
        delta, low, high, p = paired_bootstrap(metric, stats, list(stats), metric.primary())
        assert (delta, low, high, p) == (0.0, 0.0, 0.0, 1.0), metric.name


def test_paired_bootstrap_detects_a_real_difference() -> None:
    metric = get_metric("accuracy")
    rng = np.random.default_rng(0)
    a_hits = rng.random(2000) < 0.6
    b_hits = a_hits | (rng.random(2000) < 0.2)  # b fixes some of a's errors
    as_stats = lambda hits: [  # noqa: E731
        metric.sample_stats(prediction="a" if h else "b", references=["a"]) for h in hits
    ]
    delta, low, high, p = paired_bootstrap(metric, as_stats(a_hits), as_stats(b_hits), "accuracy")
    assert delta == pytest.approx(b_hits.mean() - a_hits.mean())
    assert 0 < low < delta < high and p < 0.01
    back = paired_bootstrap(metric, as_stats(b_hits), as_stats(a_hits), "accuracy")
    assert back[0] == -delta and back[3] == p
    with pytest.raises(ValueError, match="same samples"):
        paired_bootstrap(metric, as_stats(a_hits), as_stats(b_hits[:10]), "accuracy")
    with pytest.raises(KeyError):
        paired_bootstrap(metric, as_stats(a_hits), as_stats(b_hits), "f1_macro")


def test_mcnemar() -> None:
    a = np.array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 1], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1], dtype=bool)
    # discordant: a-only = 6, b-only = 1
    assert mcnemar(a, b) == binomtest(6, 7, 0.5).pvalue
    assert mcnemar(a, b) == mcnemar(b, a)
    assert mcnemar(a, a) == 1.0
    with pytest.raises(ValueError):
        mcnemar(a, b[:3])


def test_resample_cap_is_one_rule_for_intervals_and_paired_tests() -> None:
    """``capped_resamples`` is what ``aggregate`` records and what ``paired_bootstrap`` draws."""
    from llmbench.metrics.bootstrap import capped_resamples

    capped, free = get_metric("accuracy"), get_metric("accuracy")
    capped.max_resamples = 50
    assert [capped_resamples(capped, 1000), capped_resamples(capped, 20)] == [50, 20]
    assert capped_resamples(free, 1000) == 1000
    a, b = _accuracy_stats(200, 0.6, 1), _accuracy_stats(200, 0.7, 2)
    assert "|boot:50|" in capped.aggregate(a, n_resamples=1000)[0].signature
    assert paired_bootstrap(capped, a, b, "accuracy", n_resamples=1000) == \
        paired_bootstrap(free, a, b, "accuracy", n_resamples=50)
    assert paired_bootstrap(free, a, b, "accuracy", n_resamples=1000) != \
        paired_bootstrap(free, a, b, "accuracy", n_resamples=50)
