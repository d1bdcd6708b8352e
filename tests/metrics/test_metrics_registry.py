"""Metric lookup, error messages, and the HF ``evaluate`` wrapper with a local module."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmbench.metrics import Metric, MetricError, get_metric, metric_names, paired_bootstrap

MODULE = Path(__file__).parent / "evaluate_modules" / "string_accuracy.py"


def test_metric_names() -> None:
    assert metric_names() == sorted(
        ["acc", "accuracy", "bleu", "calibration", "chrf", "continuation", "exact_match", "f1",
         "lmeval_exact_match", "perplexity", "rouge", "squad", "squad_f1", "squad_v2", "ter"]
    )
    for name in metric_names():
        assert isinstance(get_metric(name, labels=["a", "b"]), Metric)


def test_unknown_metric_lists_known_names() -> None:
    with pytest.raises(MetricError) as info:
        get_metric("blue")
    message = str(info.value)
    assert "\n" not in message and "'blue'" in message
    for name in metric_names():
        assert name in message
    assert "evaluate:" in message


def test_unknown_argument_is_one_line() -> None:
    with pytest.raises(MetricError) as info:
        get_metric("accuracy", normalise=True)
    assert str(info.value) == "metric 'accuracy' got unknown argument(s) normalise; valid: none"
    with pytest.raises(MetricError, match="valid: lsum_split, rouge_types, unwrap, use_stemmer"):
        get_metric("rouge", stem=True)


def test_evaluate_unloadable_module() -> None:
    with pytest.raises(MetricError) as info:
        get_metric("evaluate:no_such_metric_xyz")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("metric 'evaluate:no_such_metric_xyz' could not be loaded (offline?)")
    assert "give a local path" in message
    with pytest.raises(MetricError, match="needs a module"):
        get_metric("evaluate:")


def _stats(metric: Metric, preds: list[str], refs: list[list[str]]) -> list[dict]:
    return [metric.sample_stats(prediction=p, references=r) for p, r in zip(preds, refs, strict=True)]


def test_evaluate_local_module() -> None:
    import evaluate

    preds = ["a", "B", "c", "d", "a"] * 8
    refs = [["a"], ["b"], ["x", "c"], ["d"], ["b"]] * 8
    metric = get_metric(f"evaluate:{MODULE}")
    assert metric.name == f"evaluate:{MODULE}"
    values = {v.name: v for v in metric.aggregate(_stats(metric, preds, refs), seed=1)}
    direct = evaluate.load(str(MODULE)).compute(predictions=preds, references=[r[0] for r in refs])
    assert values["accuracy"].value == direct["accuracy"] == 0.4
    assert set(values) == {"accuracy", "n"}  # the non-numeric "label" output is dropped
    assert metric.primary() == "accuracy" and next(iter(values)) == "accuracy"
    acc = values["accuracy"]
    assert acc.ci_low is not None and acc.ci_high is not None
    assert acc.ci_low <= acc.value <= acc.ci_high and acc.ci_low < acc.ci_high
    assert "|boot:200|" in acc.signature  # capped from the default 1000


def test_evaluate_compute_args_pass_through() -> None:
    preds = ["A", "b"]
    refs = [["a"], ["b"]]
    plain = get_metric(f"evaluate:{MODULE}", max_resamples=20)
    folded = get_metric(f"evaluate:{MODULE}", ignore_case=True, primary="accuracy", max_resamples=20)
    assert plain.aggregate(_stats(plain, preds, refs))[0].value == 0.5
    (acc, n) = folded.aggregate(_stats(folded, preds, refs))
    assert (acc.name, acc.value, n.name, n.value) == ("accuracy", 1.0, "n", 2.0)
    assert "|boot:20|" in acc.signature


def test_evaluate_paired_bootstrap() -> None:
    metric = get_metric(f"evaluate:{MODULE}", max_resamples=30)
    stats_a = _stats(metric, ["a", "b", "c", "d"] * 5, [["a"], ["x"], ["x"], ["d"]] * 5)
    stats_b = _stats(metric, ["a", "b", "c", "d"] * 5, [["a"], ["b"], ["x"], ["d"]] * 5)
    assert paired_bootstrap(metric, stats_a, stats_a, "accuracy") == (0.0, 0.0, 0.0, 1.0)
    delta, low, high, p = paired_bootstrap(metric, stats_a, stats_b, "accuracy")
    assert delta == 0.25 and 0 < low <= delta <= high and p < 0.1
