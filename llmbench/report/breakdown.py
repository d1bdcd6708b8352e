"""A task page's breakdowns, read from the store: reliability diagrams and per-slice scores.

Why a module of its own: the leaderboard's grid and tests belong to the ranking; calibration
and slices are extra views of the same stored runs that a task shows only when its runs have
them (a classification run scored by label probabilities; a task with ``slice_by``). The
reliability bins are recomputed from each sample's stored calibration statistics by
``metrics.calibration.reliability_bins`` (the same binning as the stored ECE); the slices are
read as the run stored them (``usage["slices"]``), never recomputed with other settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from llmbench.store import RunInfo, SampleRecord, StoredMetric

CALIBRATION = "calibration"


@dataclass
class Reliability:
    model: str
    run_id: str
    n_bins: int
    ece: float | None
    bins: list[dict[str, Any]]  # lo, hi, count, accuracy, confidence


@dataclass
class SliceRow:
    model: str
    run_id: str
    metric: str
    value_name: str
    higher_is_better: bool
    slices: dict[str, dict[str, Any]]  # slice -> value, ci_low, ci_high, n
    gap: dict[str, Any]  # value, ci_low, ci_high, best, worst


@dataclass
class TaskBreakdown:
    reliability: list[Reliability] = field(default_factory=list)
    slice_by: str | None = None
    slice_names: list[str] = field(default_factory=list)
    slices: list[SliceRow] = field(default_factory=list)
    #: model -> the run's whole slice report (every metric value per slice), for the JSON export
    slice_reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_computed: list[str] = field(default_factory=list)
    #: "model: note" for each run's scoring notes (a fallback its adapter took, ``RunInfo.notes``)
    scoring_notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build_breakdown(task_runs: dict[str, RunInfo], primary_metric: str, primary_value: str,
          metrics_of: Callable[[str], list[StoredMetric]],
          samples_of: Callable[[str], list[SampleRecord]]) -> TaskBreakdown:
    """The breakdowns of a task's latest run per model (``task_runs``: model -> run)."""
    from llmbench.metrics.calibration import DEFAULT_BINS, reliability_bins

    out = TaskBreakdown()
    names: set[str] = set()
    for model in sorted(task_runs):
        run = task_runs[model]
        for metric, why in sorted(run.run_config.not_computed.items()):
            out.not_computed.append(f"{model}: {metric} not computed — {why}")
        out.scoring_notes += [f"{model}: {note}" for note in run.notes]
        stored = {m.value.name: m for m in metrics_of(run.id) if m.metric == CALIBRATION}
        if stored:
            n_bins = int(next(iter(stored.values())).metric_args.get("n_bins", DEFAULT_BINS))
            stats = [s.stats[CALIBRATION] for s in samples_of(run.id) if CALIBRATION in s.stats]
            ece = stored["ece"].value.value if "ece" in stored else None
            out.reliability.append(Reliability(model=model, run_id=run.id, n_bins=n_bins, ece=ece,
                                               bins=[asdict(b) for b in reliability_bins(stats, n_bins)]))
        report = run.run_usage.slices
        if not isinstance(report, dict):
            continue
        out.slice_reports[model] = report
        value = (report.get("metrics") or {}).get(primary_metric, {}).get(primary_value)
        if not isinstance(value, dict):
            continue
        out.slice_by = out.slice_by or str(report.get("by"))
        names |= set(value.get("slices", {}))
        out.slices.append(SliceRow(model=model, run_id=run.id, metric=primary_metric, value_name=primary_value,
                                   higher_is_better=bool(value.get("higher_is_better", True)),
                                   slices=value.get("slices", {}), gap=value.get("gap", {})))
    out.slice_names = sorted(names)
    return out
