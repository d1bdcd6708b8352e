"""Per-kind defaults (scoring modes, metrics, primary value, generation limits, template) for
the seven task kinds, the value names a task's metrics report, and reading a label back out of a
model's answer (strict parsing, argmax, the label distribution)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from llmbench import registry
from llmbench.registry import EVALUATE_PREFIX
from llmbench.tasks.spec import MetricRef, TaskKind
from llmbench.types import GenerationConfig, RequestKind

DEFAULT_SCORING: dict[TaskKind, tuple[RequestKind, ...]] = {
    "classification": ("classify", "loglikelihood", "generate"),
    "translation": ("generate",),
    "qa": ("generate",),
    "summarization": ("generate",),
    "multiple_choice": ("loglikelihood", "generate"),
    "language_modeling": ("loglikelihood_rolling",),
    "continuation": ("loglikelihood",),
}
DEFAULT_METRICS: dict[TaskKind, tuple[MetricRef, ...]] = {
    # calibration is computed when the scoring mode gives label probabilities (not by generate)
    "classification": (MetricRef(name="accuracy"), MetricRef(name="f1"), MetricRef(name="calibration")),
    "translation": (MetricRef(name="bleu"), MetricRef(name="chrf")),
    "qa": (MetricRef(name="squad"),),
    "summarization": (MetricRef(name="rouge"),),
    "multiple_choice": (MetricRef(name="acc"),),
    "language_modeling": (MetricRef(name="perplexity"),),
    "continuation": (MetricRef(name="continuation"),),
}
DEFAULT_PRIMARY: dict[TaskKind, str] = {
    "classification": "accuracy",
    "translation": "chrf",
    "qa": "f1",
    "summarization": "rougeL",
    "multiple_choice": "acc",
    "language_modeling": "word_perplexity",
    "continuation": "acc",
}
DEFAULT_GENERATION: dict[TaskKind, GenerationConfig] = {
    "classification": GenerationConfig(max_new_tokens=8, stop=("\n",)),
    "translation": GenerationConfig(max_new_tokens=128, stop=("\n",)),
    "qa": GenerationConfig(max_new_tokens=32, stop=("\n",)),
    "summarization": GenerationConfig(max_new_tokens=64, stop=("\n",)),
    "multiple_choice": GenerationConfig(max_new_tokens=16, stop=("\n",)),
    "language_modeling": GenerationConfig(),  # never generates
    "continuation": GenerationConfig(),  # never generates
}
DEFAULT_TEMPLATE: dict[TaskKind, str] = {
    "classification": "{{ input }}\nLabel:",
    "translation": "{{ input }}\nTranslation:",
    "qa": "Context: {{ context }}\nQuestion: {{ input }}\nAnswer:",
    "summarization": "{{ input }}\n\nSummary:",
    "multiple_choice": "Question: {{ input }}\nAnswer:",
    "language_modeling": "{{ input }}",
    "continuation": "{{ input }}",
}


def metric_names() -> list[str]:
    """Every registered metric name, built-in and plugin (``evaluate:<hub name or path>`` aside)."""
    return registry.task_metric_names()


def metric_primary(name: str, args: Mapping[str, Any], labels: Sequence[str] | None) -> str:
    """The headline value metric ``name`` reports with ``args`` (its ``primary()``): what a Python
    task without ``primary_metric`` ranks by when the metric is its first. Asked of the class
    through ``llmbench.registry.metrics``, as ``metric_value_names`` is; an ``evaluate:`` module
    or a name no class answers for is its own headline."""
    if name.startswith(EVALUATE_PREFIX) or name not in registry.metrics:
        return name
    return str(registry.metrics.get(name)(labels=labels, **dict(args)).primary())


def metric_value_names(name: str, args: Mapping[str, Any], labels: Sequence[str] | None) -> set[str] | None:
    """The value names metric ``name`` reports with ``args`` (``MetricValue.name``), so a task
    file's ``primary_metric`` is checked when the file loads instead of after a whole run.

    Asked of the metric class itself through ``llmbench.registry.metrics`` (tasks do not import
    the metrics package), so a plugin metric is checked like a built-in. None for a name that is
    not registered and for ``evaluate:`` modules, whose values are known only once they run.
    """
    if name.startswith(EVALUATE_PREFIX) or name not in registry.metrics:
        return None
    values = registry.metrics.get(name).value_names(args, labels)
    return None if values is None else set(values)


_WORD = re.compile(r"[^\w]+", re.UNICODE)


def _norm(text: str) -> str:
    return _WORD.sub(" ", text.lower()).strip()


#: Words that, right before a label, turn it into its opposite ("not positive", "isn't
#: positive": ``_norm`` splits "isn't" into "isn t").
_NEGATIONS = frozenset({"not", "no", "never", "neither", "nor", "t", "hardly"})


def _mentions(norm: str, labels: Sequence[str]) -> tuple[set[str], bool]:
    """The labels ``norm`` names as whole words (longest first, so "very positive" is not
    also read as "positive"), and whether any of them is negated."""
    names: set[str] = set()
    negated = False
    taken = [False] * len(norm)
    for label in sorted(labels, key=lambda lab: -len(_norm(lab))):
        n = _norm(label)
        if not n:
            continue
        for match in re.finditer(rf"(?<!\w){re.escape(n)}(?!\w)", norm):
            if any(taken[match.start():match.end()]):
                continue
            taken[match.start():match.end()] = [True] * (match.end() - match.start())
            names.add(label)
            before = norm[:match.start()].split()
            negated = negated or (bool(before) and before[-1] in _NEGATIONS)
    return names, negated


def parse_label(text: str, labels: Sequence[str]) -> str:
    """Strict answer parsing for classification by generation: the answer must name exactly
    one label, and not negate it.

    The first non-empty line is read first (a model that answers, then goes on to write the
    next example, names other labels after it); when it names no label, the whole text is.
    Two labels ("positive or negative"), a negated one ("not positive") or none are
    unparseable and return "" — scored wrong, never guessed.
    """
    lines = [line for line in text.splitlines() if _norm(line)]
    for scope in (lines[:1], lines):
        names, negated = _mentions(_norm(" ".join(scope)), labels)
        if names:
            return names.pop() if len(names) == 1 and not negated else ""
    return ""


def argmax_label(scores: Sequence[float], labels: Sequence[str]) -> str:
    """The label with the highest score; ties go to the first (as numpy argmax).

    No scores (an answer without log-probabilities) or no finite score is an invalid
    answer, returned as "" and scored wrong; picking ``labels[0]`` would be a guess that
    happens to be right for every sample of the first class. A score list of another
    length than the labels is an adapter bug, not an answer.
    """
    if scores and len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores for {len(labels)} labels: the adapter must "
                         "answer one score per label")
    best, best_i = -math.inf, -1
    for i, s in enumerate(scores):
        if s > best:
            best, best_i = s, i
    return labels[best_i] if best_i >= 0 else ""


def label_distribution(scores: Sequence[float], labels: Sequence[str]) -> dict[str, float]:
    """P(label) from per-label log-scores: a softmax over the task's labels.

    Why one rule for every scoring mode: a classifier head's log-softmax gives back its own
    softmax, a causal LM's log-likelihoods of the label continuations become the model's
    distribution *restricted to the labels*, and an API's first-token top log-probabilities
    are renormalised over the labels (a label outside the top N has probability ~0). An
    answer with no finite score carries no information and gets the uniform distribution,
    so calibration charges it ``log k`` of NLL instead of dropping the sample.
    """
    if scores and len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores for {len(labels)} labels: the adapter must "
                         "answer one score per label")
    finite = [s for s in scores if math.isfinite(s)]
    if not finite:
        return {label: 1.0 / len(labels) for label in labels}
    top = max(finite)
    exp = [math.exp(s - top) if math.isfinite(s) else 0.0 for s in scores]
    total = sum(exp)
    return {label: e / total for label, e in zip(labels, exp, strict=True)}
