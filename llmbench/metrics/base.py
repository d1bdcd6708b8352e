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
from typing import Any

import numpy as np

from llmbench.errors import UserError, one_line
from llmbench.metrics.bootstrap import bootstrap_distribution, capped_resamples, percentile_ci
from llmbench.types import MetricValue

Stats = Sequence[Mapping[str, Any]]


class MetricError(UserError):
    """Unknown metric name or bad metric arguments; the message is one line that says the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class Metric(ABC):
    """A corpus metric computed by a reference library, with a seeded bootstrap CI.

    Subclasses implement ``sample_stats`` (one sample -> JSON-serialisable dict),
    ``score`` (stats + optional resample weights -> values) and ``primary``.
    ``score(stats)`` without weights must return the reference library's own point value,
    so the headline number is exactly what the field's tool would report.
    """

    name: str
    #: Cap on bootstrap resamples (None: no cap). Set for metrics whose reduce step is a
    #: full library call per resample (HF ``evaluate`` wrappers) rather than a re-sum.
    max_resamples: int | None = None

    @abstractmethod
    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        """Per-sample sufficient statistics (values: float | int | str)."""

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
        """Direction of a value; every built-in value is a score where higher is better."""
        return True

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
