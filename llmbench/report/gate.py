"""The regression gate: did any metric of the candidate drop *significantly* below the baseline?

A drop counts only when it is both statistically significant (paired test p < alpha) and
larger than ``max_drop`` in the metric's own units (accuracy 0-1, BLEU 0-100), direction-aware
via ``higher_is_better``. Noise therefore never fails a build, and a same-model rerun (identical
answers: delta 0, p 1) never does either. Pairs made under a different benchmark (task version,
prompt fingerprint, scoring mode, metric arguments) are refused rather than compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmbench.report.compare import Comparison, Pair
from llmbench.report.errors import MismatchError, ReportError
from llmbench.report.paired import PairedValue

PASS, FAIL = 0, 1


@dataclass
class Finding:
    pair: Pair
    value: PairedValue

    def to_json(self) -> dict[str, Any]:
        return {"task": self.pair.task, "model_a": self.pair.a.model, "model_b": self.pair.b.model,
                "run_a": self.pair.a.id, "run_b": self.pair.b.id, **self.value.to_json()}


@dataclass
class GateResult:
    comparison: Comparison
    alpha: float
    max_drop: float
    checked: list[Finding] = field(default_factory=list)
    regressions: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def code(self) -> int:
        return FAIL if self.regressions else PASS

    def to_json(self) -> dict[str, Any]:
        return {"passed": not self.regressions, "exit_code": self.code, "alpha": self.alpha,
                "max_drop": self.max_drop, "warnings": self.warnings,
                "regressions": [f.to_json() for f in self.regressions],
                "checked": [f.to_json() for f in self.checked],
                "comparison": self.comparison.to_json()}


def select_values(pair: Pair, wanted: list[str]) -> list[PairedValue]:
    """The values the gate checks: all, or those named by value name, metric name or 'primary'."""
    if not wanted:
        return list(pair.values)
    names = set(wanted)
    return [v for v in pair.values if v.name in names or v.metric in names
            or ("primary" in names and v.name == pair.b.primary_metric)]


def run_gate(comparison: Comparison, *, max_drop: float = 0.0, alpha: float = 0.05,
             metrics: list[str] | None = None, allow_mismatch: bool = False) -> GateResult:
    """Decide pass/fail; raise ``ReportError`` (exit 2) when there is nothing to decide on."""
    if not 0.0 < alpha < 1.0:
        raise ReportError(f"--alpha must be between 0 and 1, got {alpha}")
    if max_drop < 0:
        raise ReportError(f"--max-drop must be >= 0, got {max_drop}")
    a, b = comparison.a, comparison.b
    if not comparison.pairs:
        raise ReportError(f"nothing shared: {a.label} and {b.label} have no task (and model) in common "
                          f"— A has {', '.join(comparison.only_a) or 'nothing'}; "
                          f"B has {', '.join(comparison.only_b) or 'nothing'}")
    bad = [p for p in comparison.pairs if p.mismatches]
    result = GateResult(comparison=comparison, alpha=alpha, max_drop=max_drop)
    if bad:
        detail = "; ".join(f"{p.title}: {', '.join(p.mismatches)}" for p in bad)
        if not allow_mismatch:
            raise MismatchError(f"refusing to compare runs made under a different benchmark — {detail} "
                                "(rerun the baseline, or pass --allow-mismatch to compare anyway)")
        result.warnings.append(f"comparing mismatched runs because of --allow-mismatch: {detail}")
    result.warnings += comparison.warnings
    if comparison.only_a:
        result.warnings.append(f"in the baseline but not the candidate (not gated): {', '.join(comparison.only_a)}")
    if comparison.only_b:
        result.warnings.append(f"new in the candidate, no baseline (not gated): {', '.join(comparison.only_b)}")
    wanted = list(metrics or [])
    for pair in comparison.pairs:
        result.warnings += [f"{pair.title}: {n}" for n in pair.notes]
        for value in select_values(pair, wanted):
            finding = Finding(pair, value)
            result.checked.append(finding)
            if value.p is None:
                result.warnings.append(f"{pair.title}: {value.name} could not be tested ({value.note}); "
                                       f"B−A = {value.delta:+.4g}")
            elif value.p < alpha and value.drop > max_drop:
                result.regressions.append(finding)
    if not result.checked:
        available = sorted({v.name for p in comparison.pairs for v in p.values}
                           | {v.metric for p in comparison.pairs for v in p.values})
        raise ReportError(f"no metric value to gate: --metric {', '.join(wanted) or '(all)'} matches nothing "
                          f"shared — available: {', '.join(available) or 'none'} (or 'primary')")
    return result
