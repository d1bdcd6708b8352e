"""``evaluate:<hub name or local path>``: wrap any Hugging Face ``evaluate`` metric.

An arbitrary ``evaluate`` metric has no sufficient statistics we could re-sum, so the
per-sample stats are the raw prediction/reference strings and every bootstrap resample
is a full ``compute()`` call. That is slow, so the bootstrap is capped at
``max_resamples`` (default 200, adjustable per task); the signature records the count used.
Offline, Hub names fail to load: give a local path to a metric script or folder.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmbench.metrics.base import Metric, MetricError, Stats, one_line, require_references

DEFAULT_MAX_RESAMPLES = 200


class EvaluateMetric(Metric):
    """One ``evaluate`` module. Numeric scalar outputs of ``compute`` become values.

    Arguments: ``config_name`` goes to ``evaluate.load``; ``multi_reference=True`` passes
    all references per sample (a list) instead of the first; ``primary`` picks the
    headline value (default: first numeric output); ``higher_is_better`` applies to all
    values; ``max_resamples`` caps the bootstrap; anything else goes to ``compute()``
    (checked by the module only when it computes).
    """

    def __init__(
        self,
        path: str,
        *,
        labels: Sequence[str] | None = None,
        config_name: str | None = None,
        multi_reference: bool = False,
        primary: str | None = None,
        higher_is_better: bool = True,
        max_resamples: int = DEFAULT_MAX_RESAMPLES,
        **compute_args: Any,
    ) -> None:
        self.name = f"evaluate:{path}"
        if not path:
            raise MetricError(
                "metric 'evaluate:' needs a module: write evaluate:<hub name or local path>"
            )
        self.path = path
        self.multi_reference = multi_reference
        self._primary = primary
        self._higher_is_better = higher_is_better
        self.max_resamples = max_resamples
        self.compute_args = compute_args
        self._first_value: str | None = None
        try:
            import evaluate

            self._module = evaluate.load(path, config_name)
        except Exception as exc:
            raise MetricError(
                f"metric {self.name!r} could not be loaded (offline?): {one_line(exc, 200)} "
                "— give a local path to the metric module (.py file or folder)"
            ) from exc

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        require_references(self.name, references)
        return {"prediction": prediction, "references": json.dumps(list(references))}

    def _compute(self, predictions: list[str], references: list[Any]) -> dict[str, float]:
        result = self._module.compute(
            predictions=predictions, references=references, **self.compute_args
        )
        return {
            key: float(value)
            for key, value in (result or {}).items()
            if isinstance(value, numbers.Real) and not isinstance(value, bool)
        }

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        predictions = [s["prediction"] for s in stats]
        refs = [json.loads(s["references"]) for s in stats]
        references = refs if self.multi_reference else [r[0] for r in refs]
        if weights is None:
            values = self._compute(predictions, references)
            if not values:
                raise ValueError(f"metric {self.name!r}: compute() returned no numeric value")
            self._first_value = self._first_value or next(iter(values))
            return {k: np.array([v]) for k, v in values.items()}
        rows: list[dict[str, float]] = []
        for counts in np.rint(weights).astype(np.int64):
            take = np.repeat(np.arange(len(stats)), counts)
            rows.append(self._compute([predictions[i] for i in take], [references[i] for i in take]))
        names = rows[0].keys() if rows else ()
        return {k: np.array([row.get(k, np.nan) for row in rows]) for k in names}

    def primary(self) -> str:
        """``primary=`` if given, else the first numeric output of the first point score."""
        if self._primary is not None:
            return self._primary
        if self._first_value is None:
            raise ValueError(
                f"metric {self.name!r}: headline value unknown before scoring; pass primary="
            )
        return self._first_value

    def higher_is_better(self, value_name: str) -> bool:
        return self._higher_is_better

    def signature(self, stats: Stats) -> str:
        import evaluate

        return f"evaluate:{evaluate.__version__}|module:{self.path}|refs:" + (
            "all" if self.multi_reference else "first"
        )
