"""One comparability policy: when may two stored numbers of one task be set side by side?

``compare``, ``gate`` and the leaderboard all ask this question, and a user who sees
``compare`` print "MISMATCH scoring mode" while the leaderboard stars one of the same two runs
has been told two different things. So the checks live here, once:

* ``mismatches``: one model over time (``gate``, ``compare`` of one label): task version,
  task/prompt fingerprint, scoring mode, metric arguments. ``compare`` and ``gate`` pair
  samples by id and test only the shared ones (a differing n is a note there, not a mismatch).
  Across models on a leaderboard column the rule is ``report.decision``'s (task version,
  scored sample set, metric definition).
* ``selection_mismatches``: the same question across two *models* (``compare A B``): only the
  task version and metric arguments make numbers incomparable; scoring mode and prompt are
  properties of each system under test, reported apart (``report.decision`` is the policy
  the leaderboard and ``select`` apply).
* ``model_change``: another model behind the same label (its stored identity differs).
* ``weights_hash`` / ``same_weights``: the same weights (content hash the adapter stored) under
  two labels, which the leaderboard must not present as two models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmbench.store import RunInfo, StoredMetric

_UNKNOWN = (None, "", "unknown")


def dict_diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted paths where two JSON-like values differ (what changed in a task's config)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += dict_diff(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if a == b else [path or "(value)"]


def n_scored(run: RunInfo) -> int:
    """Samples behind the run's numbers (answered and scored; failed samples count as wrong)."""
    return run.n_samples


def mismatches(a: RunInfo, b: RunInfo, metrics_a: Sequence[StoredMetric],
               metrics_b: Sequence[StoredMetric]) -> list[str]:
    """Why the numbers of two runs of one task are not comparable (empty: they are)."""
    out = []
    if a.task_version != b.task_version:
        out.append(f"task version {a.task_version} → {b.task_version}")
    if a.task_fingerprint != b.task_fingerprint:
        changed = dict_diff(a.run_config.task, b.run_config.task)
        where = f" (changed: {', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''})" if changed else ""
        out.append(f"task/prompt fingerprint {a.task_fingerprint} → {b.task_fingerprint}{where}")
    if a.scoring_mode != b.scoring_mode:
        out.append(f"scoring mode {a.scoring_mode} → {b.scoring_mode}")
    args_a = {m.metric: m.metric_args for m in metrics_a}
    args_b = {m.metric: m.metric_args for m in metrics_b}
    for name in sorted(args_a.keys() & args_b.keys()):
        if args_a[name] != args_b[name]:
            out.append(f"metric '{name}' arguments {args_a[name]} → {args_b[name]}")
    return out


def selection_mismatches(a: RunInfo, b: RunInfo, metrics_a: Sequence[StoredMetric],
                         metrics_b: Sequence[StoredMetric]) -> tuple[list[str], list[str]]:
    """Two *models* on one task (``compare A B`` of two labels): what makes their numbers
    incomparable — task version and metric arguments; the shared samples are paired, so the
    sample set is a note there — and, apart, how the two systems under test differ (scoring
    mode, prompt), which ``report.decision`` shows but never holds against a model."""
    hard = [m for m in mismatches(a, b, metrics_a, metrics_b)
            if not m.startswith(("scoring mode ", "task/prompt fingerprint "))]
    system = []
    if a.scoring_mode != b.scoring_mode:
        system.append(f"scoring mode {a.scoring_mode} → {b.scoring_mode}")
    if a.task_fingerprint != b.task_fingerprint and a.task_version == b.task_version:
        changed = dict_diff(a.run_config.task, b.run_config.task)
        system.append("prompt/task settings differ" + (f" ({', '.join(changed[:5])})" if changed else ""))
    return hard, system


def weights_hash(run: RunInfo) -> str | None:
    """The content hash of the weights the adapter stored (None when it stored none)."""
    value = (run.model_identity or {}).get("weights")
    return None if value in _UNKNOWN else str(value)


def same_weights(a: RunInfo, b: RunInfo) -> bool:
    """Both runs name the same stored weights hash (the same model, whatever its label or path)."""
    wa = weights_hash(a)
    return wa is not None and wa == weights_hash(b)


def model_change(a: RunInfo, b: RunInfo) -> str | None:
    """Why the model behind one label is not the same model in both runs (None: it is).

    Only for runs under the same label: comparing two differently named models is what
    ``compare A B`` is for, but a label that silently points at other weights (``baseline:
    majority`` swapped for ``baseline:random``) would make a nightly gate compare apples to
    pears while every message names the same model.
    """
    if a.model != b.model:
        return None
    ident_a, ident_b = dict(a.model_identity), dict(b.model_identity)
    if same_weights(a, b):
        ident_a.pop("path", None)  # same weights (content hash) found in another folder: same model
        ident_b.pop("path", None)
    if a.model_kind == b.model_kind and ident_a == ident_b:
        return None
    changed = dict_diff(ident_a, ident_b)
    if a.model_kind != b.model_kind:
        changed.insert(0, f"kind {a.model_kind} → {b.model_kind}")
    shown = ", ".join(changed[:5]) + (", ..." if len(changed) > 5 else "")
    return f"model '{a.model}' is another model in B (identity changed: {shown})"
