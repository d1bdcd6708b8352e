"""Each metric declares what it is on its class, and the declaration is the truth: the value names
the task layer checks are the ones the metric computes, the direction on every stored value is
the declared one, and a metric class without a declaration does not exist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from llmbench import registry
from llmbench.metrics import Declaration, Metric, MetricError, get_metric, metric_class, metric_names
from llmbench.metrics.calibration import ProbabilityMetric
from llmbench.registry import MetricClass, Registry
from llmbench.tasks.kinds import metric_value_names
from llmbench.types import Response, Sample

LABELS = ("negative", "positive")


def _stats(name: str, metric: Metric) -> list[dict[str, Any]]:
    """A few samples each metric can score (right and wrong answers)."""
    if isinstance(metric, ProbabilityMetric):  # calibration reads label probabilities
        probs = {"negative": 0.3, "positive": 0.7}
        return [metric.probability_stats(prediction=p, probabilities=probs, references=("positive",))
                for p in ("positive", "negative")]
    if name in ("acc", "perplexity", "continuation"):  # these read the answer's log-likelihoods
        sample = Sample(id="s", input="a b", references=("positive",), choices=LABELS, gold=1)
        answer = Response(logprobs=(-1.0, -2.0) if name == "acc" else (-3.0,), n_scored=2, greedy_match=(True,))
        return [metric.answer_stats(prediction="positive", sample=sample, response=answer)]
    stats = [metric.sample_stats(prediction="positive", references=("positive",)),
             metric.sample_stats(prediction="negative", references=("positive",))]
    if name == "squad_v2":  # its NoAns values need an unanswerable question (reference "")
        stats.append(metric.sample_stats(prediction="", references=("",)))
    return stats


@pytest.mark.parametrize("name", metric_names())
def test_declared_values_are_what_the_metric_computes(name: str) -> None:
    """The names the task layer checks ``primary_metric`` against (through the registry, not an
    import of this package) against what the metric really reports, direction included."""
    metric = get_metric(name, labels=LABELS)
    computed = metric.aggregate(_stats(name, metric), n_resamples=0)
    assert {v.name for v in computed} == metric_value_names(name, {}, LABELS)
    declared = type(metric).declaration
    for value in computed:
        assert value.higher_is_better is (declared.direction_of(value.name) == "higher"), value.name
    assert metric.describe_stats() == {"stats_schema": name, "stats_version": declared.stats_version,
                                       "scale": declared.scale}


def test_declarations_keep_what_the_runs_stored_before() -> None:
    """Moving the declarations onto the classes changed none of them (the old tables' values)."""
    got = {name: (c.scale, c.stats_version, dict(c.indicators), c.browse_indicator, c.direction,
                  dict(c.directions))
           for name in metric_names() for c in [metric_class(name).declaration]}
    em = {"exact_match": "exact_match"}
    assert got == {
        "accuracy": ("unit", 1, {"accuracy": "correct"}, None, "higher", {}),
        "f1": ("unit", 2, {"f1_micro": "correct"}, "correct", "higher", {"invalid_rate": "lower"}),
        "exact_match": ("percent", 1, em, None, "higher", {}),
        "squad_f1": ("percent", 1, {}, None, "higher", {}),
        "squad": ("percent", 1, em, None, "higher", {}),
        "squad_v2": ("percent", 1, em, None, "higher", {}),
        "bleu": ("percent", 1, {}, None, "higher", {}),
        "chrf": ("percent", 1, {}, None, "higher", {}),
        "rouge": ("unit", 2, {}, None, "higher", {}),  # v2: the HF Lsum recipe by default
        "acc": ("unit", 1, {"acc": "acc", "acc_norm": "acc_norm", "acc_bytes": "acc_bytes"}, None, "higher", {}),
        "perplexity": ("unit", 1, {}, None, "lower", {}),
        "calibration": ("unit", 1, {}, None, "lower", {}),
        "continuation": ("unit", 1, {"acc": "acc"}, None, "higher", {"perplexity": "lower"}),
        "ter": ("percent", 1, {}, None, "lower", {}),
        "lmeval_exact_match": ("unit", 1, em, None, "higher", {}),  # lm-eval's exact_match, on its 0-1 scale
    }


def test_value_names_follow_the_arguments() -> None:
    assert metric_value_names("f1", {}, ["a", "b"]) >= {"f1/a", "f1/b", "f1_macro"}  # type: ignore[operator]
    assert metric_value_names("rouge", {"rouge_types": ["rouge2"]}, None) == {"rouge2"}
    assert metric_value_names("evaluate:some/module", {}, None) is None  # known once it runs
    assert metric_value_names("no_such_metric", {}, None) is None


class _Base(Metric, abstract=True):
    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        return {"miss": int(prediction != references[0])}

    def score(self, stats: Any, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        miss = np.array([s["miss"] for s in stats], dtype=np.float64)
        w = np.ones((1, len(stats))) if weights is None else weights
        return {"miss_rate": (w @ miss) / w.sum(axis=1)}

    def primary(self) -> str:
        return "miss_rate"


def test_a_metric_without_a_declaration_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match=r"declares no `declaration = Declaration\(values=\.\.\."):
        class Undeclared(_Base):
            pass
    with pytest.raises(TypeError, match="declares no"):  # inheriting one is not declaring one
        class Inherits(Declared):
            pass


class Declared(_Base):
    declaration = Declaration(values=("miss_rate",), scale="unit", direction="lower",
                              indicators={"miss_rate": "miss"}, stats_version=3)


def test_a_declared_metric_scores_with_its_direction_scale_and_version() -> None:
    metric = Declared()
    metric.name = "miss"
    (value,) = metric.aggregate([metric.sample_stats(prediction=p, references=["a"]) for p in "aab"],
                                n_resamples=0)
    assert (value.name, value.value, value.higher_is_better) == ("miss_rate", pytest.approx(1 / 3), False)
    assert metric.describe_stats() == {"stats_schema": "miss", "stats_version": 3, "scale": "unit"}
    assert metric.sample_score("miss_rate", {"miss": 1}) == 1.0  # the declared indicator


@pytest.mark.parametrize(("fields", "message"), [
    ({"scale": "percentage"}, "scale must be one of unit, percent, got 'percentage'"),
    ({"direction": "up"}, "direction(s) must be one of higher, lower"),
    ({"directions": {"miss_rate": "down"}}, "direction(s) must be one of higher, lower"),
    ({"stats_version": 0}, "stats_version must be a positive integer, got 0"),
    ({"values": "miss_rate"}, "values must be a tuple of value names"),
    ({"indicators": {"hit_rate": "miss"}}, "indicators/directions name undeclared values ['hit_rate']"),
])
def test_a_bad_declaration_says_what_is_wrong(fields: dict[str, Any], message: str) -> None:
    good: dict[str, Any] = {"values": ("miss_rate",), "scale": "unit", "direction": "lower", "indicators": {},
                            "stats_version": 1}
    with pytest.raises(TypeError) as err:
        Declaration(**{**good, **fields})
    assert message in str(err.value)


def test_every_field_but_the_optional_two_must_be_given() -> None:
    with pytest.raises(TypeError, match="stats_version"):
        Declaration(values=("x",), scale="unit", direction="higher", indicators={})  # type: ignore[call-arg]


@pytest.fixture
def own_registry(monkeypatch: pytest.MonkeyPatch) -> Registry[MetricClass]:
    """A metric registry of the test's own in place of the process's (restored afterwards)."""
    reg: Registry[MetricClass] = Registry("metric", protocol=MetricClass)
    monkeypatch.setattr(registry, "metrics", reg)
    return reg


def test_a_registered_name_is_the_stored_name(own_registry: Registry[MetricClass]) -> None:
    """The name a run stores is looked up again by the reports, so a class that calls itself
    otherwise than its registration is refused, and one that says nothing gets the registered name."""

    class Named(Declared):
        declaration = Declared.declaration
        name = "something_else"

    own_registry.register("miss", Declared, origin="test")
    own_registry.register("named", Named, origin="test")
    assert get_metric("miss").name == "miss"
    with pytest.raises(MetricError, match="calls itself 'something_else' — its name must be"):
        get_metric("named")


def test_a_registered_object_that_is_no_metric_class_is_a_user_error(own_registry: Registry[MetricClass]) -> None:
    class Lookalike:  # has what the registry's protocol asks, is no Metric
        declaration = Declared.declaration

        @classmethod
        def value_names(cls, args: Any, labels: Any) -> frozenset[str]:
            return frozenset({"x"})

    own_registry.register("lookalike", Lookalike, origin="test")
    with pytest.raises(MetricError, match=r"not a concrete llmbench\.metrics\.Metric subclass"):
        get_metric("lookalike")
