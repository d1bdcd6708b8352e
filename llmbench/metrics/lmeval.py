"""lm-evaluation-harness's ``exact_match``, per filter pipeline, on lm-eval's 0-1 scale.

Not llmbench's ``exact_match`` (SQuAD's normalisation: case, punctuation, articles, spaces):
lm-eval 0.4's ``exact_match`` (``lm_eval/api/metrics.py``, ``exact_match_hf_evaluate``, HF
``evaluate``'s exact_match) compares the *raw* strings, changed only by the options a task
sets, in this order: every ``regexes_to_ignore`` pattern removed (``re.sub(p, "", s)``), then
``ignore_case`` (lower), ``ignore_punctuation`` (ASCII ``string.punctuation`` deleted),
``ignore_numbers`` (ASCII digits deleted). Its strings pass through a numpy ``str_`` array,
which drops trailing NUL characters; that is reproduced too. So ``"Bathroom."`` and
``"bathroom"`` differ here unless the task says otherwise.

lm-eval scores every filter pipeline of a task (``filter_list``) and reports one value per
(metric, filter): ``exact_match,strict-match``, ``exact_match,flexible-extract``, or plain
``exact_match`` for its default pipeline ``none``. This metric does the same from the raw
generation: ``filters`` lists the pipelines (a ``regex`` filter's arguments then
``take_first``, or ``take_first`` alone), each value named as lm-eval names it, the first
the primary (lm-eval's first filter). The regex filter is ``llmbench.textregex`` (lm-eval's
``RegexFilter``), the one a task's ``extract:`` uses: every pattern comes from a task file, so
each call runs under the ``regex`` module's timeout and a pattern that runs past it is an error
naming the pattern, never a silently different score.

``target_prefix``/``target_suffix``: the literal text around the target column in lm-eval's
``doc_to_target`` (babi's ``" {{answer}}"``), which lm-eval compares as part of the reference.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from llmbench.metrics.base import Declaration, Metric, MetricError, Stats, column, require_references
from llmbench.metrics.bootstrap import weighted_mean
from llmbench.textregex import TIMEOUT_S, ExtractError, compile_pattern, extract
from llmbench.types import Response, Sample

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_DIGITS = str.maketrans("", "", string.digits)
_PIPELINE_KEYS = {"name", "regex", "group_select", "fallback"}


def _compile(pattern: Any, where: str) -> Any:
    if not isinstance(pattern, str):
        raise MetricError(f"metric 'lmeval_exact_match': {where} must be a pattern (text), got {pattern!r}")
    try:
        return compile_pattern(pattern)
    except ExtractError as err:
        raise MetricError(f"metric 'lmeval_exact_match': {where}: {err} — fix the pattern") from None


def _timed(call: Any, pattern: str, *args: Any) -> Any:
    try:
        return call(*args, timeout=TIMEOUT_S)
    except TimeoutError:
        raise MetricError(f"metric 'lmeval_exact_match': regex {pattern!r} ran over {TIMEOUT_S:g} s on one "
                          "answer (catastrophic backtracking?) — simplify the pattern") from None


class _Pipeline:
    """One lm-eval filter pipeline: ``regex`` (optional) then ``take_first``."""

    def __init__(self, spec: Mapping[str, Any], index: int) -> None:
        where = f"filters[{index}]"
        if not isinstance(spec, Mapping) or set(spec) - _PIPELINE_KEYS or not isinstance(spec.get("name"), str):
            raise MetricError(f"metric 'lmeval_exact_match': {where} must be a mapping with a name and "
                              f"optionally {', '.join(sorted(_PIPELINE_KEYS - {'name'}))}")
        self.name: str = spec["name"]
        self.pattern = None if spec.get("regex") is None else _compile(spec["regex"], f"{where}.regex")
        group_select, fallback = spec.get("group_select", 0), spec.get("fallback", "[invalid]")
        if not isinstance(group_select, int) or not isinstance(fallback, str):
            raise MetricError(f"metric 'lmeval_exact_match': {where}: group_select must be a whole number, "
                              "fallback text")
        self.group_select: int = group_select
        self.fallback: str = fallback

    def apply(self, text: str) -> str:
        """lm-eval's ``RegexFilter`` (``textregex.extract``), or the raw text for ``take_first``
        alone."""
        if self.pattern is None:
            return text
        try:
            return extract(text, self.pattern, group_select=self.group_select, fallback=self.fallback)
        except ExtractError as err:
            raise MetricError(f"metric 'lmeval_exact_match': {err} — simplify the pattern") from None

    @property
    def value(self) -> str:
        return "exact_match" if self.name == "none" else f"exact_match,{self.name}"


class LmEvalExactMatch(Metric):
    """``lmeval_exact_match``: lm-eval 0.4's exact_match per filter pipeline (module docstring)."""

    name = "lmeval_exact_match"
    declaration = Declaration(values=("exact_match",), scale="unit", direction="higher",
                              indicators={"exact_match": "exact_match"}, stats_version=1)

    @classmethod
    def value_names(cls, args: Mapping[str, Any], labels: Sequence[str] | None) -> frozenset[str]:
        return frozenset(cls(**dict(args))._values)

    def __init__(self, *, labels: Sequence[str] | None = None, ignore_case: bool = False,
                 ignore_punctuation: bool = False, ignore_numbers: bool = False,
                 regexes_to_ignore: Sequence[str] | None = None, filters: Sequence[Mapping[str, Any]] | None = None,
                 target_prefix: str = "", target_suffix: str = "") -> None:
        self.name = "lmeval_exact_match"
        for key, flag in (("ignore_case", ignore_case), ("ignore_punctuation", ignore_punctuation),
                          ("ignore_numbers", ignore_numbers)):
            if not isinstance(flag, bool):
                raise MetricError(f"metric 'lmeval_exact_match': {key} must be true or false, got {flag!r}")
        if isinstance(regexes_to_ignore, str):
            regexes_to_ignore = [regexes_to_ignore]
        self.ignore_case, self.ignore_punctuation, self.ignore_numbers = ignore_case, ignore_punctuation, ignore_numbers
        self._ignore = [_compile(p, f"regexes_to_ignore[{i}]") for i, p in enumerate(regexes_to_ignore or ())]
        self._pipelines = [_Pipeline(p, i) for i, p in enumerate(filters or [{"name": "none"}])]
        self._values = tuple(p.value for p in self._pipelines)
        if len(set(self._values)) != len(self._values):
            raise MetricError("metric 'lmeval_exact_match': two filters have one name — name them apart")
        if not isinstance(target_prefix, str) or not isinstance(target_suffix, str):
            raise MetricError("metric 'lmeval_exact_match': target_prefix/target_suffix must be text")
        self.target_prefix, self.target_suffix = target_prefix, target_suffix

    @property
    def indicators(self) -> Mapping[str, str]:
        """Every pipeline's value is the mean of its own 0/1 indicator (stats key = value name)."""
        return {v: v for v in self._values}

    def _normalise(self, text: str) -> str:
        """lm-eval's transformations, in its order (module docstring)."""
        for compiled in self._ignore:
            text = _timed(compiled.sub, compiled.pattern, "", text)
        text = text.rstrip("\x00")  # numpy's str_ drops trailing NULs before the comparison
        if self.ignore_case:
            text = text.lower()
        if self.ignore_punctuation:
            text = text.translate(_PUNCTUATION)
        if self.ignore_numbers:
            text = text.translate(_DIGITS)
        return text

    def matches(self, prediction: str, reference: str) -> bool:
        """lm-eval's ``exact_match_hf_evaluate`` on one (prediction, reference) pair."""
        return self._normalise(prediction) == self._normalise(reference)

    def filtered(self, text: str) -> dict[str, str]:
        """Each pipeline's answer from the raw generation (value name -> answer)."""
        return {p.value: p.apply(text) for p in self._pipelines}

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        """``prediction`` as the raw generation; a list of references matches when any does
        (lm-eval's ``multiple_target``)."""
        require_references(self.name, references)
        refs = [self.target_prefix + r + self.target_suffix for r in references]
        return {value: int(any(self.matches(answer, r) for r in refs))
                for value, answer in self.filtered(prediction).items()}

    def answer_stats(self, *, prediction: str, sample: Sample, response: Response) -> dict[str, Any]:
        """The filters run on the raw generation, as lm-eval's do (``prediction`` is llmbench's
        stripped or extracted answer)."""
        raw = response.text if response.text is not None else prediction
        return self.sample_stats(prediction=raw, references=sample.references)

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if weights is None:
            return {v: np.array([sum(s[v] for s in stats) / len(stats)]) for v in self._values}
        return {v: weighted_mean(column(stats, v), weights) for v in self._values}

    def primary(self) -> str:
        return self._values[0]

    def signature(self, stats: Stats) -> str:
        opts = [k for k in ("ignore_case", "ignore_punctuation", "ignore_numbers") if getattr(self, k)]
        opts += [f"ignore:{c.pattern}" for c in self._ignore]
        return f"lm-eval-0.4-exact_match|{','.join(opts) or 'raw'}|scale:1"
