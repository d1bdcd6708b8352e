"""The regression gate: did any metric of the candidate drop *significantly* below the baseline?

A drop counts only when it is both statistically significant (paired test p < alpha) and
larger than ``max_drop`` in the metric's own units (accuracy 0-1, BLEU 0-100), direction-aware
via ``higher_is_better``. Noise therefore never fails a build, and a same-model rerun (identical
answers: delta 0, p 1) never does either.

The gate never passes vacuously: it passes only when every gated value was actually tested.
Its ``decision`` (also in ``--json``) is one of

* ``pass`` (exit 0): every gated value tested, none dropped significantly;
* ``regression`` (exit 1): at least one tested value dropped significantly;
* ``cannot_decide`` (exit 2): something gated was not tested — a value with no shared
  samples, a metric that cannot be rebuilt, resampling off for a value without an exact
  test, a baseline (model, task) missing or incomplete in the candidate, another model
  behind the same label, or runs made under another benchmark. Each has an explicit
  opt-out (``allow_*``), and every opt-out used is listed in the result and printed;
* ``error`` (exit 3, ``--json-out`` only): the gate itself failed (a bug), so a CI artifact
  exists for every outcome;
* ``no_baseline`` (exit 2): the baseline reference names nothing yet (the first night of a
  ``prev:TAG`` gate); a recipe tells it apart from a failure by this field, not by text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmbench.errors import EXIT_INTERNAL, EXIT_OK, EXIT_REGRESSION, EXIT_UNDECIDED, one_line
from llmbench.report import fmt
from llmbench.report.compare import Comparison, Pair
from llmbench.report.errors import ReportError
from llmbench.report.paired import PairedValue
from llmbench.report.power import Detectable, gate_power

PASS, FAIL, UNDECIDED, INTERNAL = EXIT_OK, EXIT_REGRESSION, EXIT_UNDECIDED, EXIT_INTERNAL
DECISIONS = {"pass": PASS, "regression": FAIL, "cannot_decide": UNDECIDED, "no_baseline": UNDECIDED,
             "error": INTERNAL}


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
    untested: list[Finding] = field(default_factory=list)
    #: Why the gate cannot decide (each would have an opt-out).
    reasons: list[str] = field(default_factory=list)
    #: What the user's opt-outs let through (printed, and in the JSON).
    opt_outs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The smallest drop each gated value could have caught (``report.power``); printed, in the JSON.
    power: list[Detectable] = field(default_factory=list)

    @property
    def decision(self) -> str:
        if self.regressions:
            return "regression"
        return "cannot_decide" if self.reasons else "pass"

    @property
    def code(self) -> int:
        return DECISIONS[self.decision]

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "passed": self.decision == "pass", "exit_code": self.code,
                "reasons": self.reasons, "opt_outs": self.opt_outs, "alpha": self.alpha,
                "max_drop": self.max_drop, "warnings": self.warnings,
                "regressions": [f.to_json() for f in self.regressions],
                "regression_lines": [f"{pair.title}: {regression_line(values)}"
                                     for pair, groups in group_regressions(self.regressions) for values in groups],
                "untested": [f.to_json() for f in self.untested],
                "checked": [f.to_json() for f in self.checked],
                "power": [d.to_json() for d in self.power],
                "comparison": self.comparison.to_json()}


def no_baseline_json(baseline: str, candidate: str, message: str) -> dict[str, Any]:
    """The decision when the baseline reference names nothing yet (the first night)."""
    return {"decision": "no_baseline", "passed": False, "exit_code": UNDECIDED, "reasons": [message],
            "opt_outs": [], "baseline": baseline, "candidate": candidate}


def error_json(message: str) -> dict[str, Any]:
    """The decision written to ``--json-out`` when the gate stops on a user error."""
    return {"decision": "cannot_decide", "passed": False, "exit_code": UNDECIDED, "reasons": [message],
            "opt_outs": []}


def internal_error_json(err: BaseException) -> dict[str, Any]:
    """The decision written to ``--json-out`` when the gate stops on a bug (exit 3): a CI job
    that reads the file finds "error", never a missing file or last night's decision."""
    return {"decision": "error", "passed": False, "exit_code": INTERNAL,
            "reasons": [f"internal error: {type(err).__name__}: {one_line(str(err))}"], "opt_outs": []}


def select_values(pair: Pair, wanted: list[str]) -> list[PairedValue]:
    """The values the gate checks: all, or those named by value name, metric name or 'primary'."""
    if not wanted:
        return list(pair.values)
    names = set(wanted)
    return [v for v in pair.values if v.name in names or v.metric in names
            or ("primary" in names and v.name == pair.b.primary_metric)]


def _refuse_or_allow(result: GateResult, problems: list[str], allowed: bool, flag: str) -> None:
    """A reason to stop, or with ``flag`` given, an opt-out that is said out loud."""
    for problem in problems:
        if allowed:
            result.opt_outs.append(f"{problem} (allowed by {flag})")
        else:
            result.reasons.append(f"{problem} — pass {flag} to accept this")


def run_gate(comparison: Comparison, *, max_drop: float = 0.0, alpha: float = 0.05,
             metrics: list[str] | None = None, allow_mismatch: bool = False, allow_untested: bool = False,
             allow_missing: bool = False, allow_model_change: bool = False) -> GateResult:
    """Decide (see the module docstring); raise ``ReportError`` (exit 2) on unusable options or
    when the two selections share nothing at all."""
    _check_options(comparison, alpha=alpha, max_drop=max_drop)
    result = GateResult(comparison=comparison, alpha=alpha, max_drop=max_drop)
    result.warnings += comparison.warnings
    refused = _admit(result, allow_mismatch=allow_mismatch, allow_model_change=allow_model_change,
                     allow_missing=allow_missing)
    wanted = list(metrics or [])
    empty = _collect(result, refused, wanted)
    if not result.checked:
        pairs = comparison.pairs
        available = sorted({v.name for p in pairs for v in p.values} | {v.metric for p in pairs for v in p.values})
        raise ReportError(f"no metric value to gate: --metric {', '.join(wanted) or '(all)'} matches nothing "
                          f"shared — available: {', '.join(available) or 'none'} (or 'primary')")
    _refuse_or_allow(result, [f"{f.pair.title}: {f.value.name} was not tested ({f.value.note or 'no test'}; "
                              f"B−A = {f.value.delta:+.4g})" for f in result.untested],
                     allow_untested, "--allow-untested")
    _refuse_or_allow(result, empty, allow_untested, "--allow-untested")
    result.power = gate_power([f for f in result.checked if f.value.p is not None], alpha=alpha, max_drop=max_drop)
    return result


def _check_options(comparison: Comparison, *, alpha: float, max_drop: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ReportError(f"--alpha must be between 0 and 1, got {alpha}")
    if max_drop < 0:
        raise ReportError(f"--max-drop must be >= 0, got {max_drop}")
    a, b = comparison.a, comparison.b
    if not comparison.pairs:
        raise ReportError(f"nothing shared: {a.label} and {b.label} have no task (and model) in common "
                          f"— A has {', '.join(comparison.only_a) or 'nothing'}; "
                          f"B has {', '.join(comparison.only_b) or 'nothing'}")


def _admit(result: GateResult, *, allow_mismatch: bool, allow_model_change: bool, allow_missing: bool) -> set[int]:
    """Record why pairs cannot be gated (or the opt-outs that let them); the refused pairs' ids."""
    comparison = result.comparison
    mismatched = [p for p in comparison.pairs if p.mismatches]
    _refuse_or_allow(result, [f"{p.title}: made under a different benchmark ({', '.join(p.mismatches)})"
                              for p in mismatched], allow_mismatch, "--allow-mismatch")
    changed = [p for p in comparison.pairs if p.model_change]
    _refuse_or_allow(result, [f"{p.title}: {p.model_change}" for p in changed], allow_model_change,
                     "--allow-model-change")
    missing = [f"{name}: in the baseline but not in the candidate" for name in comparison.only_a]
    missing += [f"{p.title}: candidate run {p.b.id} is {p.b.status} ({p.b.n_errors} of {p.b.n_samples} "
                f"samples failed or it never finished)" for p in comparison.pairs if p.b.status != "complete"]
    _refuse_or_allow(result, missing, allow_missing, "--allow-missing")
    if comparison.only_b:
        result.warnings.append(f"new in the candidate, no baseline (not gated): {', '.join(comparison.only_b)}")
    return ({id(p) for p in mismatched if not allow_mismatch}
            | {id(p) for p in changed if not allow_model_change})


def _collect(result: GateResult, refused: set[int], wanted: list[str]) -> list[str]:
    """Sort every gated value into checked / untested / regressions; the pairs with nothing to test."""
    empty = []
    for pair in result.comparison.pairs:
        result.warnings += [f"{pair.title}: {n}" for n in pair.notes]
        if not pair.values and id(pair) not in refused:
            empty.append(f"{pair.title}: no metric value in common, nothing tested")
        for value in select_values(pair, wanted):
            finding = Finding(pair, value)
            result.checked.append(finding)
            if id(pair) in refused:
                continue  # not comparable; the reason is already recorded
            if value.p is None:
                result.untested.append(finding)
            elif value.p < result.alpha and value.drop > result.max_drop:
                result.regressions.append(finding)
    return empty


def change_words(v: PairedValue) -> str:
    """Direction-aware: "dropped" for a higher-is-better value that fell, "worsened" for a
    lower-is-better value that rose (never "dropped" for a loss that got worse)."""
    size = fmt.num(abs(v.drop), v.metric, extra=1)
    moved = f"({fmt.num(v.a, v.metric, extra=1)} → {fmt.num(v.b, v.metric, extra=1)})"
    if v.drop > 0:
        verb = "dropped" if v.higher_is_better else "worsened"
    else:
        verb = "rose" if v.higher_is_better else "improved"
    hint = "" if v.higher_is_better else ", lower is better"
    return f"{v.name} {verb} by {size} {moved[:-1]}{hint})"


def regression_line(values: list[PairedValue]) -> str:
    """One line per regression: a metric's correlated values (precision/recall/F1 macro, micro,
    weighted, per class) are one finding, led by its worst-p value, with the family listed."""
    lead = min(values, key=lambda v: (v.p if v.p is not None else 1.0, -abs(v.drop)))
    text = (f"{change_words(lead)}, B − A 95% CI {fmt.ci(lead.ci_low, lead.ci_high, lead.metric, sign=True, extra=1)}, "
            f"{fmt.p_is(lead.p)} ({lead.test})")
    others = [v.name for v in values if v is not lead]
    if others:
        text += f" — one regression of metric '{lead.metric}' ({len(values)} values: also {', '.join(others)})"
    return text


def group_regressions(findings: list[Finding]) -> list[tuple[Pair, list[list[PairedValue]]]]:
    """Regressions per run pair, then per metric (a metric's values move together)."""
    out: dict[int, tuple[Pair, dict[str, list[PairedValue]]]] = {}
    for f in findings:
        _, groups = out.setdefault(id(f.pair), (f.pair, {}))
        groups.setdefault(f.value.metric, []).append(f.value)
    return [(pair, list(groups.values())) for pair, groups in out.values()]
