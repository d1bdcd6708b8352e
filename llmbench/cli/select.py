"""``llmbench select``: the best model for tasks under cost/latency/score limits (``report.select``).

Exit codes: 0 when a model qualifies; 2 when none does (the line says why each was excluded)
or the question cannot be asked (unknown task, mixed metric directions).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from llmbench.cli.options import DEFAULT_STORE, StoreOpt
from llmbench.errors import EXIT_UNDECIDED
from llmbench.report.jsonsafe import finite
from llmbench.report.select import DEFAULT_LOCAL_COST_PER_HOUR, Candidate, Constraints
from llmbench.store import open_existing


def select_cmd(
    task: Annotated[list[str], typer.Option("--task", help="Task to choose for; repeatable (score: mean of "
                                            "the primaries on the unit scale).")],
    max_cost_per_1k_samples: Annotated[float | None, typer.Option(
        "--max-cost-per-1k-samples", help="USD per 1,000 samples, from the runs' measured cost.", min=0.0)] = None,
    max_p95_latency: Annotated[float | None, typer.Option(
        "--max-p95-latency", help="Seconds: 95th percentile of the measured per-sample latency.", min=0.0)] = None,
    min_score: Annotated[float | None, typer.Option(
        "--min", help="Minimum score (the primary metric on its own scale for one task; unit scale "
        "for several; a maximum for a loss).")] = None,
    local_cost_per_hour: Annotated[float, typer.Option(
        "--local-cost-per-hour", help="USD per hour of measured compute time for local models "
        f"(default {DEFAULT_LOCAL_COST_PER_HOUR:g}: one mid-range cloud GPU).", min=0.0)] = DEFAULT_LOCAL_COST_PER_HOUR,
    min_robustness: Annotated[float | None, typer.Option(
        "--min-robustness", help="Minimum worst-case score under the task's perturbed runs (HELM robustness, "
        "unit scale; needs runs made with --perturb).")] = None,
    store: StoreOpt = DEFAULT_STORE,
    alpha: Annotated[float, typer.Option(help="Significance level of the paired tests against the best.")] = 0.05,
    resamples: Annotated[int, typer.Option(help="Paired bootstrap resamples.", min=1, max=100_000)] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.", min=0, max=2**32 - 1)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    allow_metric: Annotated[list[str] | None, typer.Option(
        "--allow-metric", help="Let this evaluate:<path> metric module be imported to rebuild stored values "
        "(code the store names is never imported otherwise); repeatable.")] = None,
) -> None:
    """The best model that meets the limits, the models not significantly different from it, and
    why each other model was excluded. Exit 0 when a model qualifies, 2 when none does."""
    from llmbench.metrics.registry import trust_code_metric
    from llmbench.report.select import select

    for name in allow_metric or ():  # the flag the "not imported" message names, as report/gate have it
        trust_code_metric(name)

    result = select(open_existing(store), list(task), Constraints(
        max_cost_per_1k=max_cost_per_1k_samples, max_p95_latency_s=max_p95_latency, min_score=min_score,
        local_cost_per_hour=local_cost_per_hour, alpha=alpha, min_robustness=min_robustness),
        n_resamples=resamples, seed=seed)
    if as_json:
        sys.stdout.write(json.dumps(finite(result.to_json()), indent=1, ensure_ascii=False) + "\n")
    else:
        out = Console(highlight=False, soft_wrap=True)
        if result.best is not None:
            out.print(f"[bold]best:[/bold] {_line(result.best)}")
            for c in result.tied:
                out.print(f"not significantly different (alpha {alpha:g}): {_line(c)}")
            for c in result.qualifying[1:]:
                if not c.tied_with_best:
                    out.print(f"qualifies, significantly worse: {_line(c)}")
        for c in result.excluded:
            out.print(f"excluded: {escape(c.model)} — {escape('; '.join(c.excluded))}")
        for line in result.decisions.values():
            out.print(f"decision (as on the leaderboard): {escape(line)}")
        for note in result.notes:
            out.print(f"[dim]{escape(note)}[/dim]")
    if result.best is None:
        Console(stderr=True, highlight=False, soft_wrap=True).print(escape(result.reason))
        raise typer.Exit(EXIT_UNDECIDED)


def _line(c: Candidate) -> str:
    cost = "cost unknown" if c.cost_per_1k is None else f"${c.cost_per_1k:.4g}/1k samples ({c.cost_basis})"
    lat = "p95 latency unknown" if c.p95_latency_s is None else f"p95 {c.p95_latency_s:.3g} s"
    tasks = ", ".join(f"{t.task} {t.value_name}={t.value:.4g} [{t.scoring_mode}]" for t in c.tasks)
    p = "" if not c.p_vs_best else " · p vs best " + ", ".join(
        f"{k}={'n/a' if v is None else f'{v:.3g}'}" for k, v in c.p_vs_best.items())
    return escape(f"{c.model} · score {c.score:.4g} ({tasks}) · {cost} · {lat}{p}")
