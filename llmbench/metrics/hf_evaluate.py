"""``evaluate:<hub name or local path>``: wrap any Hugging Face ``evaluate`` metric.

An arbitrary ``evaluate`` metric has no sufficient statistics we could re-sum, so the
per-sample stats are the raw prediction/reference strings and every bootstrap resample
is a full ``compute()`` call. That is slow, so the bootstrap is capped at
``max_resamples`` (default 200, adjustable per task); the signature records the count used.
Offline, Hub names fail to load: give a local path to a metric script or folder.

Reproducibility: some modules sample inside ``compute()`` (HF's ``rouge`` bootstraps its
default aggregate with ``np.random.choice``). ``evaluate`` runs ``compute()`` under
``temp_seed(module.seed)``, but when no seed is given it takes that seed from numpy's
global state at load time — fresh OS entropy in every process — so identical input gave
different values in different processes. The module is therefore loaded with
``seed=rng_seed`` (recorded in the signature), and each ``compute()`` also runs with
Python's ``random`` and, when loaded, torch's CPU generator seeded the same way (restored
afterwards, so the caller's random streams are not disturbed). A module that still gives
two values for one input (it samples from a source nobody can seed) is refused with a
``MetricError``.
"""

from __future__ import annotations

import json
import numbers
import random
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np

from llmbench.errors import one_line
from llmbench.metrics.base import Declaration, Metric, MetricError, Stats, require_references

DEFAULT_MAX_RESAMPLES = 200


def _same_values(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal value dicts, NaN equal to NaN (an undefined value is still reproducible)."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (np.isnan(a[k]) and np.isnan(b[k])) for k in a
    )


@contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Run the body with numpy's global state, ``random`` and torch's CPU generator (when
    torch is already imported) seeded, then put every one of them back as it was."""
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    with ExitStack() as stack:
        torch = sys.modules.get("torch")
        if torch is not None:
            stack.enter_context(torch.random.fork_rng(devices=[]))
            torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


class EvaluateMetric(Metric):
    """One ``evaluate`` module. Numeric scalar outputs of ``compute`` become values.

    Arguments: ``config_name`` goes to ``evaluate.load``; ``multi_reference=True`` passes
    all references per sample (a list) instead of the first; ``primary`` picks the
    headline value (default: first numeric output); ``higher_is_better`` applies to all
    values; ``max_resamples`` caps the bootstrap; ``rng_seed`` seeds the global RNGs
    around each ``compute()`` (see the module docstring); anything else goes to
    ``compute()`` (checked by the module only when it computes).

    Its values are whatever the module computes, so the declaration lists none (a task cannot
    check its ``primary_metric`` before the run) and its direction is the instance's
    ``higher_is_better`` argument rather than the declared ``higher``.
    """

    declaration = Declaration(values=(), scale="unit", direction="higher", indicators={}, stats_version=1)

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
        rng_seed: int = 0,
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
        self.rng_seed = rng_seed
        self.compute_args = compute_args
        self._first_value: str | None = None
        self._checked_reproducible = False
        try:
            import evaluate

            self._module = evaluate.load(path, config_name, seed=rng_seed)
        except Exception as exc:
            raise MetricError(
                f"metric {self.name!r} could not be loaded (offline?): {one_line(exc, 200)} "
                "— give a local path to the metric module (.py file or folder)"
            ) from exc

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        require_references(self.name, references)
        return {"prediction": prediction, "references": json.dumps(list(references))}

    def _compute(self, predictions: list[str], references: list[Any]) -> dict[str, float]:
        with seeded_global_rngs(self.rng_seed):
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
            if not self._checked_reproducible:
                again = self._compute(predictions, references)
                if not _same_values(values, again):
                    changed = sorted(k for k in values.keys() | again.keys()
                                     if values.get(k) != again.get(k))
                    raise MetricError(
                        f"metric {self.name!r} is not reproducible: two identical compute() "
                        f"calls gave different {', '.join(changed)} although the global RNGs "
                        "were seeded — it samples from a source llmbench cannot seed; use "
                        "another module or pass arguments that turn the sampling off"
                    )
                self._checked_reproducible = True
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

        refs = "all" if self.multi_reference else "first"
        return (
            f"evaluate:{evaluate.__version__}|module:{self.path}|refs:{refs}"
            f"|rng-seed:{self.rng_seed}"
        )
