"""Per-slice values and the best-worst gap: point values equal the metric on the slice alone,
intervals come from the one seeded resample matrix (checked by explicit resampling)."""

from __future__ import annotations

import numpy as np
import pytest

from llmbench.metrics import get_metric
from llmbench.metrics.bootstrap import percentile_ci, weight_chunks
from llmbench.metrics.slices import slice_metric, slice_report

LABELS = ("negative", "positive")


def _run() -> tuple[list[dict], list[str]]:
    rng = np.random.default_rng(0)
    acc = get_metric("accuracy", labels=LABELS)
    keys, stats = [], []
    for i in range(90):
        topic = ("sports", "politics", "music")[i % 3]
        p_right = {"sports": 0.9, "politics": 0.5, "music": 0.7}[topic]
        gold = LABELS[i % 2]
        pred = gold if rng.random() < p_right else LABELS[1 - i % 2]
        stats.append(acc.sample_stats(prediction=pred, references=(gold,)))
        keys.append(topic)
    return stats, keys


def test_slice_values_are_the_metric_on_each_slice() -> None:
    stats, keys = _run()
    acc = get_metric("accuracy", labels=LABELS)
    out = slice_metric(acc, stats, keys, n_resamples=0)["accuracy"]
    for topic in ("sports", "politics", "music"):
        alone = [s for s, k in zip(stats, keys, strict=True) if k == topic]
        assert out["slices"][topic]["value"] == pytest.approx(np.mean([s["correct"] for s in alone]))
        assert out["slices"][topic]["n"] == 30
    values = {t: out["slices"][t]["value"] for t in out["slices"]}
    assert out["gap"]["best"] == max(values, key=values.__getitem__)
    assert out["gap"]["worst"] == min(values, key=values.__getitem__)
    assert out["gap"]["value"] == pytest.approx(max(values.values()) - min(values.values()))
    assert out["gap"]["ci_low"] is None  # no resamples: no interval


def test_gap_interval_from_one_resample_matrix() -> None:
    stats, keys = _run()
    acc = get_metric("accuracy", labels=LABELS)
    out = slice_metric(acc, stats, keys, n_resamples=300, seed=5)["accuracy"]
    correct = np.array([s["correct"] for s in stats], dtype=float)
    topics = np.array(keys)
    weights = np.concatenate(list(weight_chunks(len(stats), 300, 5)))
    per_topic = {t: (weights[:, topics == t] @ correct[topics == t]) / weights[:, topics == t].sum(1)
                 for t in ("music", "politics", "sports")}
    spread = np.max(np.stack(list(per_topic.values())), 0) - np.min(np.stack(list(per_topic.values())), 0)
    assert (out["gap"]["ci_low"], out["gap"]["ci_high"]) == pytest.approx(percentile_ci(spread))
    assert (out["slices"]["sports"]["ci_low"], out["slices"]["sports"]["ci_high"]) == pytest.approx(
        percentile_ci(per_topic["sports"]))
    assert out["gap"]["ci_low"] <= out["gap"]["value"] <= out["gap"]["ci_high"]


def test_lower_is_better_values_pick_best_as_the_smallest() -> None:
    cal = get_metric("calibration", labels=LABELS)
    probs = [0.99, 0.6, 0.99, 0.6]
    stats = [cal.probability_stats(prediction="positive", probabilities={"negative": 1 - p, "positive": p},  # type: ignore[attr-defined]
                                   references=("positive",)) for p in probs]
    out = slice_metric(cal, stats, ["sure", "unsure", "sure", "unsure"], n_resamples=0)["nll"]
    assert out["higher_is_better"] is False
    assert (out["gap"]["best"], out["gap"]["worst"]) == ("sure", "unsure")
    assert out["gap"]["value"] == pytest.approx(-np.log(0.6) + np.log(0.99))


def test_report_skips_a_metric_that_does_not_cover_every_sample() -> None:
    stats, keys = _run()
    acc = get_metric("accuracy", labels=LABELS)
    report = slice_report("topic", [(acc, stats), (get_metric("f1", labels=LABELS), stats[:10])], keys,
                          n_resamples=0)
    assert report["by"] == "topic"
    assert report["counts"] == {"music": 30, "politics": 30, "sports": 30}
    assert list(report["metrics"]) == ["accuracy"]
    with pytest.raises(ValueError, match="one key per scored sample"):
        slice_metric(acc, stats, keys[:-1])
