"""``llmbench plan --task T --detect D``: how many samples a task needs for the gate to catch a drop.

Also the suite runner's check of a suite's ``detect:`` (``warn_if_underpowered``). Both read
the variance the way the gate would see it, best source first: the paired discordance (or
paired bootstrap SE) of the newest two complete runs of one model on the task; else one run's
score (the Bernoulli bound for right/wrong values) or its CI (sqrt(2) x its SE); else, for a
right/wrong value, the worst case p = 0.5. The formulas are ``report.power``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from llmbench.cli.options import DEFAULT_STORE, StoreOpt, console
from llmbench.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console

    from llmbench.store import ResultStore, RunInfo
    from llmbench.tasks.base import Task


class PlanError(UserError):
    """A ``plan`` question that cannot be answered (bad option, no variance to read)."""


@dataclass(frozen=True)
class Variance:
    """What the power formulas need for one task's primary value."""

    metric: str
    value_name: str
    binary: bool
    #: Right/wrong values: the share of samples two runs disagree on.
    discordance: float | None
    #: Other values: per-sample SD of the paired difference, in the value's units.
    sd: float | None
    basis: str


def _primary_metric(task: Task) -> tuple[str, bool]:
    """The metric holding the task's primary value, and whether that value is right/wrong."""
    from llmbench.metrics.registry import get_metric

    for ref in task.metrics:
        metric = get_metric(ref.name, labels=task.labels, **ref.args)
        if task.primary_metric in metric.indicators:
            return ref.name, True
    return (task.metrics[0].name if task.metrics else task.primary_metric), False


def _task_runs(store: str, task: Task) -> tuple[ResultStore | None, list[RunInfo]]:
    from llmbench.store import ResultStore

    if "://" not in store and not Path(store).expanduser().exists():
        return None, []
    db = ResultStore(store, create=False)
    return db, [r for r in db.runs() if r.task == task.name and r.status == "complete"
                and r.task_fingerprint == task.fingerprint()]


def _paired(db: ResultStore, runs: list[RunInfo], metric: str, name: str, binary: bool) -> Variance | None:
    """From the newest two runs of one model (the nightly case), if any model has two."""
    from llmbench.report.compare import compare_pair
    from llmbench.report.power import se_from_ci

    by_model: dict[str, list[RunInfo]] = {}
    for r in runs:
        by_model.setdefault(r.model, []).append(r)
    twice = [rs for rs in by_model.values() if len(rs) >= 2]
    if not twice:
        return None
    a, b = sorted(max(twice, key=lambda rs: max(r.created_at for r in rs)), key=lambda r: (r.created_at, r.id))[-2:]
    value = next((v for v in compare_pair(db, a, b).values if v.name == name and v.p is not None), None)
    if value is None or value.n == 0:
        return None
    where = f"{b.model}'s runs {a.id} and {b.id}"
    if binary and value.binary:
        flips = len(value.right_to_wrong or ()) + len(value.wrong_to_right or ())
        return Variance(metric, name, True, flips / value.n, None, f"observed discordance {flips / value.n:.1%} "
                        f"between {where}")
    se = se_from_ci(value.ci_low, value.ci_high)
    if se is None:
        return None
    return Variance(metric, name, False, None, se * math.sqrt(value.n), f"paired bootstrap SE of {where}")


def _one_run(db: ResultStore, run: RunInfo, metric: str, name: str, binary: bool) -> Variance | None:
    from llmbench.report.power import bernoulli_discordance, se_from_ci

    stored = next((m for m in db.metrics(run.id) if m.value.name == name), None)
    if stored is None:
        return None
    factor = 100.0 if _percent(metric) else 1.0
    if binary:
        p = stored.value.value / factor
        return Variance(metric, name, True, bernoulli_discordance(p), None,
                        f"Bernoulli bound from {run.model}'s score {p:.3f} (run {run.id}; no second run yet)")
    se = se_from_ci(stored.value.ci_low, stored.value.ci_high)
    n = stored.value.n or 0
    if se is None or n <= 0:
        return None
    return Variance(metric, name, False, None, math.sqrt(2.0) * se * math.sqrt(n),
                    f"unpaired bound from run {run.id}'s CI (no second run yet)")


def _percent(metric: str) -> bool:
    from llmbench.metrics.registry import declared_scale

    return declared_scale(metric) == "percent"


def estimate(task: Task, store: str) -> Variance:
    """The best available variance of ``task``'s primary value (see the module docstring)."""
    metric, binary = _primary_metric(task)
    name = task.primary_metric
    db, runs = _task_runs(store, task)
    found = None
    if db is not None and runs:
        found = _paired(db, runs, metric, name, binary)
        if found is None:
            newest = max(runs, key=lambda r: (r.created_at, r.id))
            found = _one_run(db, newest, metric, name, binary)
    if found is not None:
        return found
    if binary:
        return Variance(metric, name, True, 0.5, None, "worst case p = 0.5 (no run of this task in the store)")
    raise PlanError(f"task '{task.name}': its primary value '{name}' is not right/wrong, so its variance must "
                    f"come from a run — run it once (`llmbench run -t {task.name} ...`) and ask again")


def _in_fraction(x: float, var: Variance) -> float:
    return x / 100.0 if var.binary and _percent(var.metric) else x


def mde_at(var: Variance, n: int, *, alpha: float, power: float, max_drop: float = 0.0) -> float | None:
    """The MDE (value units) of a paired comparison of ``n`` samples with this variance."""
    from llmbench.report.power import mde_binary, mde_normal

    if n <= 0:
        return None
    if var.binary:
        mde = mde_binary(n, float(var.discordance or 0.0), alpha=alpha, power=power,
                         max_drop=_in_fraction(max_drop, var))
        return None if mde is None else mde * (100.0 if _percent(var.metric) else 1.0)
    return mde_normal(float(var.sd or 0.0) / math.sqrt(n), alpha=alpha, power=power, max_drop=max_drop)


def needed(var: Variance, detect: float, *, alpha: float, power: float, max_drop: float = 0.0) -> int | None:
    from llmbench.report.power import samples_needed

    if var.binary:
        return samples_needed(_in_fraction(detect, var), discordance=var.discordance, alpha=alpha, power=power,
                              max_drop=_in_fraction(max_drop, var))
    return samples_needed(detect, sd=var.sd, alpha=alpha, power=power, max_drop=max_drop)


def plan_cmd(
    task: Annotated[list[str], typer.Option("--task", "-t", help="Task file or name; repeatable.")],
    detect: Annotated[float, typer.Option(help="The drop to detect, in the primary value's units "
                                          "(accuracy 0.01 = 1 point; chrF 1.0 = 1 point).")],
    store: StoreOpt = DEFAULT_STORE,
    alpha: Annotated[float, typer.Option(help="The gate's significance level.")] = 0.05,
    power: Annotated[float, typer.Option(help="Wanted probability of catching the drop.")] = 0.8,
    max_drop: Annotated[float, typer.Option(help="The gate's --max-drop (drops up to it are ignored).",
                                            min=0.0)] = 0.0,
    data: Annotated[str | None, typer.Option(help="Local file to use as the task's data.")] = None,
) -> None:
    """How many samples each task needs for the gate to catch a drop of --detect (and what its
    full size can catch), from the variance of its runs in the store."""
    from llmbench.report.power import amount
    from llmbench.tasks import load_task

    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise PlanError(f"--alpha and --power must be between 0 and 1, got {alpha} and {power}")
    if detect <= 0.0:
        raise PlanError(f"--detect must be > 0 (a drop in the primary value's units), got {detect}")
    for ref in task:
        t = load_task(ref, data=data)
        var = estimate(t, store)
        have = t.sample_count()
        n = needed(var, detect, alpha=alpha, power=power, max_drop=max_drop)
        full = mde_at(var, have, alpha=alpha, power=power, max_drop=max_drop)
        what = f"a {amount(detect, var.metric, var.binary, adjective=True)} drop" if var.binary or _percent(
            var.metric) else f"a drop of {detect:g} ({var.metric})"
        count = "more than 10,000,000" if n is None else f"{n:,}"
        verdict = "enough" if n is not None and n <= have else "not enough"
        at_full = "nothing" if full is None else f"drops ≥ {amount(full, var.metric, var.binary)}"
        console.print(escape(f"{t.name} · {var.value_name}: to detect {what} ({power:.0%} power, alpha {alpha:g}) "
                             f"the gate needs {count} paired samples; the task has {have:,} ({verdict}) — at "
                             f"that size it detects {at_full}. Variance: {var.basis}."),
                      highlight=False, soft_wrap=True)


def warn_if_underpowered(console: Console, task: Task, n: int, detect: float | None, store: str) -> None:
    """The suite runner's check: one warning line when ``n`` samples cannot detect the suite's
    declared ``detect:`` drop (80% power, alpha 0.05). Silent when nothing is declared."""
    from llmbench.report.power import amount

    if detect is None:
        return
    try:
        var = estimate(task, store)
    except PlanError as err:
        console.print(f"[yellow]detect: not checked — {escape(str(err))}[/yellow]", soft_wrap=True)
        return
    mde = mde_at(var, n, alpha=0.05, power=0.8)
    if mde is None or mde > detect:
        n_needed = needed(var, detect, alpha=0.05, power=0.8)
        can = "nothing" if mde is None else f"drops ≥ {amount(mde, var.metric, var.binary)}"
        count = "more than 10,000,000" if n_needed is None else f"{n_needed:,}"
        console.print(escape(f"warning: {task.name}: {n:,} samples can detect {can}, not the declared "
                             f"detect: {detect:g} — it needs {count} samples ({var.basis})"),
                      style="yellow", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``plan`` to the main CLI (called by ``llmbench.cli.main``; twice is harmless)."""
    if "plan" not in {c.name for c in app.registered_commands}:
        app.command("plan")(plan_cmd)
