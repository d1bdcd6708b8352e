"""The metric contract: per-sample statistics, then a reduce step.

Why two steps (as sacrebleu and torchmetrics do): per-sample statistics are small,
JSON-serialisable and stored per sample in the results DB, so a run can be re-scored,
bootstrapped or compared against another run without touching the model outputs again.
The reduce step (``score``) takes resample weights so confidence intervals and paired
run-vs-run tests are cheap re-sums of stored statistics.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import numpy as np

from llmbench.errors import UserError, one_line
from llmbench.metrics.bootstrap import bootstrap_distribution, capped_resamples, percentile_ci
from llmbench.types import MetricValue, Response, Sample

Stats = Sequence[Mapping[str, Any]]
#: How a metric's values are written: ``unit`` 0-1 (accuracy, F1, ROUGE), ``percent`` 0-100
#: (BLEU, chrF, SQuAD). Declared once per metric and stored with every run, so reports never
#: keep their own list of which names are percentages.
Scale = Literal["unit", "percent"]
#: Which way a value improves: ``higher`` for scores, ``lower`` for losses and error rates.
Direction = Literal["higher", "lower"]
SCALES: tuple[Scale, ...] = ("unit", "percent")
DIRECTIONS: tuple[Direction, ...] = ("higher", "lower")


class MetricError(UserError):
    """Unknown metric name or bad metric arguments; the message is one line that says the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


@dataclass(frozen=True, kw_only=True)
class Declaration:
    """What a metric class says about its values, once, on the class (``Metric.declaration``).

    Why on the class (as sacrebleu and HELM do) rather than in tables beside it: a plugin metric
    brings its own, the runner stores what the class declares with every run (the direction on
    every metric row, the scale and stats version with the run), and the task layer checks a
    task file's ``primary_metric`` against ``values`` through ``llmbench.registry.metrics``
    without importing this package. Every field but ``directions`` and ``browse_indicator``
    must be given: a metric that declares nothing is a ``TypeError`` at class definition, never
    a guessed default.

    * ``values``: the value names ``score`` reports with default arguments (``value_names``
      widens this per task: per-label F1, chosen ROUGE types). Empty only for a metric whose
      values are known once it runs (``evaluate:`` modules); a task cannot then check its
      ``primary_metric`` before the run.
    * ``scale``: ``unit`` (0-1) or ``percent`` (0-100), for every value.
    * ``direction``: ``higher`` or ``lower`` is better, for every value not in ``directions``.
    * ``directions``: the values whose direction differs (F1's ``invalid_rate``).
    * ``indicators``: value name -> the stats key holding a 0/1 right/wrong indicator whose mean
      *is* that value (times 100 on the percent scale): 1 is a right answer for a higher-is-better
      value and a miss for a lower-is-better one (an error rate). Such values get McNemar's exact
      test and a list of flipped samples in comparisons; the report never guesses keys. ``{}``: none.
    * ``stats_version``: the layout of ``sample_stats``; bump it whenever the layout or its
      meaning changes, and reports refuse stored stats of another version instead of misreading.
    * ``browse_indicator``: a 0/1 stats key to show per sample for values that have no
      per-sample meaning of their own (macro-F1 of one sample).
    """

    values: tuple[str, ...]
    scale: Scale
    direction: Direction
    indicators: Mapping[str, str]
    stats_version: int
    directions: Mapping[str, Direction] = field(default_factory=lambda: MappingProxyType({}))
    browse_indicator: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.values, str) or not all(isinstance(v, str) and v for v in self.values):
            problems.append(f"values must be a tuple of value names, got {self.values!r}")
        if self.scale not in SCALES:
            problems.append(f"scale must be one of {', '.join(SCALES)}, got {self.scale!r}")
        if self.direction not in DIRECTIONS or any(d not in DIRECTIONS for d in self.directions.values()):
            problems.append(f"direction(s) must be one of {', '.join(DIRECTIONS)}")
        if isinstance(self.stats_version, bool) or not isinstance(self.stats_version, int) or self.stats_version < 1:
            problems.append(f"stats_version must be a positive integer, got {self.stats_version!r}")
        named = set(self.indicators) | set(self.directions)
        if self.values and not named <= set(self.values):
            problems.append(f"indicators/directions name undeclared values {sorted(named - set(self.values))}")
        if problems:
            raise TypeError("bad metric declaration: " + "; ".join(problems))
        object.__setattr__(self, "values", tuple(self.values))
        object.__setattr__(self, "indicators", MappingProxyType(dict(self.indicators)))
        object.__setattr__(self, "directions", MappingProxyType(dict(self.directions)))

    def direction_of(self, value_name: str) -> Direction:
        return self.directions.get(value_name, self.direction)


class Metric(ABC):
    """A corpus metric computed by a reference library, with a seeded bootstrap CI.

    Subclasses implement ``sample_stats`` (one sample -> JSON-serialisable dict),
    ``score`` (stats + optional resample weights -> values) and ``primary``, and declare
    ``declaration`` (a ``Declaration``) in their own class body; a class that only shares code
    with its subclasses says ``class Base(Metric, abstract=True)`` instead.
    ``score(stats)`` without weights must return the reference library's own point value,
    so the headline number is exactly what the field's tool would report.
    """

    #: The registered name (``get_metric`` sets it from the registry when a class leaves it out).
    name: str
    declaration: ClassVar[Declaration]
    #: Cap on bootstrap resamples (None: no cap). Set for metrics whose reduce step is a
    #: full library call per resample (HF ``evaluate`` wrappers) rather than a re-sum.
    max_resamples: int | None = None

    def __init__(self, *, labels: Sequence[str] | None = None) -> None:  # noqa: B027 - a deliberate no-op default
        """``get_metric`` builds every metric with the task's ``labels`` (None for tasks without
        a label set) and the task file's ``args`` as keywords; a metric that needs neither
        inherits this."""

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        declared = cls.__dict__.get("declaration")
        if not isinstance(declared, Declaration):
            raise TypeError(
                f"metric class {cls.__module__}.{cls.__qualname__} declares no `declaration = "
                "Declaration(values=..., scale=..., direction=..., indicators=..., stats_version=...)` "
                "in its class body (pass abstract=True for a base class that is never registered)"
            )

    @classmethod
    def value_names(cls, args: Mapping[str, Any], labels: Sequence[str] | None) -> frozenset[str] | None:
        """The value names this metric reports with ``args`` on a task with ``labels`` (None:
        known only once it runs). What ``llmbench.registry.metrics`` answers the task layer,
        which checks ``primary_metric`` before any data is read."""
        return frozenset(cls.declaration.values) or None

    # What the declaration says, read where the runner and the reports have always read it.
    @property
    def scale(self) -> Scale:
        return type(self).declaration.scale

    @property
    def stats_version(self) -> int:
        return type(self).declaration.stats_version

    @property
    def indicators(self) -> Mapping[str, str]:
        return type(self).declaration.indicators

    @property
    def browse_indicator(self) -> str | None:
        return type(self).declaration.browse_indicator

    @property
    def stats_schema(self) -> str:
        """The name of the stats layout (the metric's name; its version is ``stats_version``)."""
        return self.name

    def describe_stats(self) -> dict[str, Any]:
        """What the runner stores with a run about this metric's stats and values."""
        return {"stats_schema": self.stats_schema, "stats_version": self.stats_version, "scale": self.scale}

    def sample_score(self, value_name: str, stats: Mapping[str, Any]) -> float | None:
        """One sample's score on the value's own scale, for browsing and per-sample drops:
        the declared indicator, else the metric on that sample alone; None where one sample
        has no meaningful score or costs a whole library call (``max_resamples`` set)."""
        factor = 100.0 if self.scale == "percent" else 1.0
        key = self.indicators.get(value_name) or self.browse_indicator
        if key is not None:
            return factor * float(stats[key])
        if self.max_resamples is not None:
            return None
        value = self.score([stats]).get(value_name)
        return None if value is None else float(value[0])

    @abstractmethod
    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        """Per-sample sufficient statistics (values: float | int | str)."""

    def answer_stats(self, *, prediction: str, sample: Sample, response: Response) -> dict[str, Any]:
        """Per-sample statistics from the whole answer; what the runner calls.

        Default: ``sample_stats`` of the prediction. A metric that needs more than the
        prediction text overrides this: multiple-choice ``acc_norm`` reads every choice's
        log-likelihood (``response.logprobs``), the choices and the gold index (``sample``);
        perplexity reads a document's log-likelihood and token count.
        """
        return self.sample_stats(prediction=prediction, references=sample.references)

    @abstractmethod
    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Reduce stats to values. ``weights``: (B, N) resample counts -> arrays of shape (B,);
        None -> the reference library's point estimate as arrays of shape (1,)."""

    @abstractmethod
    def primary(self) -> str:
        """The headline value name (e.g. ``f1_macro``, ``bleu``, ``rougeL``)."""

    def warm_up(self) -> None:
        """Import the reference library ahead of use. The runner calls it in a background
        thread while the model runs, so a slow import (scikit-learn: ~1.5 s) overlaps with
        inference instead of adding to it. Scoring works without it."""
        return None

    def higher_is_better(self, value_name: str) -> bool:
        """Direction of a value, as declared; stored on every metric row, which is what the
        reports, the gate and ``select`` read."""
        return type(self).declaration.direction_of(value_name) == "higher"

    def signature(self, stats: Stats) -> str:
        """Library/version/config string so a number can be reproduced exactly."""
        return self.name

    def aggregate(
        self, stats: Stats, *, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
    ) -> list[MetricValue]:
        """Point values (reference library) with percentile bootstrap CIs, primary value first.

        ``n_resamples=0`` skips the bootstrap (``ci_low``/``ci_high`` stay None). No stats
        (every sample errored) gives no values rather than an exception, so a failed run
        is still recorded with its per-sample errors; a score of an empty set is undefined.
        """
        stats = list(stats)
        if not stats:
            return []
        n_resamples = capped_resamples(self, n_resamples)
        point = self.score(stats)
        boot = (
            bootstrap_distribution(self, stats, n_resamples=n_resamples, seed=seed)
            if n_resamples > 0
            else {}
        )
        signature = self.signature(stats)
        if n_resamples > 0:
            signature += f"|ci:percentile-{confidence:g}|boot:{n_resamples}|seed:{seed}"
        primary = self.primary()
        names = sorted(point, key=lambda name: name != primary)  # stable: primary first
        values = []
        for name in names:
            ci_low = ci_high = None
            if name in boot:
                ci_low, ci_high = percentile_ci(boot[name], confidence)
            values.append(
                MetricValue(
                    name=name,
                    value=float(point[name][0]),
                    ci_low=ci_low,
                    ci_high=ci_high,
                    n=len(stats),
                    higher_is_better=self.higher_is_better(name),
                    signature=signature,
                )
            )
        return values

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def require_references(name: str, references: Sequence[str]) -> None:
    """Scoring against no reference is a task bug, not a zero score: fail loudly."""
    if isinstance(references, str):
        raise TypeError(f"metric {name!r}: references must be a sequence of strings, not a str")
    if len(references) == 0:
        raise ValueError(f"metric {name!r}: sample has no reference")


def column(stats: Stats, key: str, dtype: type = np.float64) -> np.ndarray:
    """One statistic across samples as an array."""
    return np.fromiter((s[key] for s in stats), dtype=dtype, count=len(stats))
