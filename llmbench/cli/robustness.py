"""The command line's robustness hooks: perturbed variants join a run plan, and the robustness
table that ``run``, ``show`` and ``compare`` print (``report.robustness`` computes it).

Kept apart from ``cli/run.py`` so the plan executor calls two functions and knows nothing else
about perturbations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

    from llmbench.report.noise import NoiseFloor
    from llmbench.report.robustness import Robustness
    from llmbench.store import ResultStore, RunInfo


def _num(x: float | None, metric: str) -> str:
    from llmbench.report import fmt

    return fmt.num(x, metric)


def table(found: Sequence[Robustness]) -> Table:
    """One row per (model, task, perturbation): score, drop with its paired CI, invariance, and the
    worst case over every perturbation of that run (on the run's first row)."""
    from llmbench.report import fmt

    t = Table("model", "task", "perturbation", "score", "drop [95% CI]", "p", "invariant", "worst case",
              title="robustness (paired with the clean run by sample id)", title_justify="left")
    for r in found:
        t.add_row(escape(r.model), escape(r.task), "clean", _num(r.clean_score, r.metric), "", "", "",
                  _num(r.worst_case, r.metric) + (f" (n={r.n_worst})" if r.worst_case is not None else ""))
        for p in r.perturbations:
            # The CI is of perturbed - clean; the drop is its negation for higher-is-better values.
            lo, hi = (p.ci_low, p.ci_high) if not r.higher_is_better else (
                None if p.ci_high is None else 0.0 - p.ci_high, None if p.ci_low is None else 0.0 - p.ci_low)
            t.add_row("", "", escape(p.perturbation), _num(p.score, r.metric),
                      f"{fmt.num(p.drop, r.metric, sign=True)} {fmt.ci(lo, hi, r.metric, sign=True)}",
                      fmt.pval(p.p), f"{p.invariance:.1%}", "")
    return t


def print_for_runs(console: Console, db: ResultStore, runs: Sequence[RunInfo], *, n_resamples: int = 1000,
                   seed: int = 0) -> None:
    """The robustness table of the clean runs among ``runs`` (with their perturbed runs in the
    store); nothing when there is none."""
    from llmbench.report.noise import for_runs as noise_for_runs
    from llmbench.report.robustness import for_runs

    found = for_runs(db, runs, n_resamples=n_resamples, seed=seed)
    if found:
        console.print(table(found))
    noise = noise_for_runs(db, runs)
    if noise:
        console.print(noise_table(noise))


def noise_table(found: Sequence[NoiseFloor]) -> Table:
    """Per clean run with repeats: the K scores, their mean and between-repeat SD, unstable answers."""
    t = Table("model", "task", "value", "K", "scores", "mean", "between-repeat SD", "unstable answers",
              title="noise floor (--repeats: draws per sample with distinct decoding seeds)", title_justify="left")
    for f in found:
        t.add_row(escape(f.model), escape(f.task), escape(f.value), str(len(f.scores)),
                  " ".join(_num(s, f.metric) for s in f.scores), _num(f.mean, f.metric), _num(f.sd, f.metric),
                  f"{f.unstable:.1%}")
    return t
