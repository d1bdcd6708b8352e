"""``llmbench run`` over the library's plan executor (``llmbench.plan``): tables, exports, exit code.

The plan itself (models x tasks x options, every refusal, executor and placement) is built
and run in ``llmbench.plan``, the code path ``llmbench.evaluate`` takes too; this module
only prints what the command line shows (a metrics table per run, the comparison) and
writes the ``--json-dir`` exports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmbench.errors import EXIT_OK
from llmbench.plan.progress import Reporter
from llmbench.runner import RunResult
from llmbench.types import MetricValue

if TYPE_CHECKING:  # imported where used: `llmbench --help` must not pay for torch or SQLAlchemy
    from llmbench.plan import PlannedTask, RunPlan
    from llmbench.store import ResultStore, RunUsage, SampleRecord
    from llmbench.tasks.base import Task


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def metrics_table(values: Sequence[MetricValue], primary: str, title: str | None = None) -> Table:
    table = Table("metric", "value", "95% CI", "n", title=title, title_justify="left")
    for v in values:
        name = f"[bold]{v.name}[/bold]" if v.name == primary else v.name
        ci = f"[{fmt(v.ci_low)}, {fmt(v.ci_high)}]" if v.ci_low is not None else "-"
        table.add_row(name, fmt(v.value), ci, str(v.n))
    return table


def comparison_table(results: Sequence[RunResult]) -> Table:
    """Each task's primary metric per model with its 95% CI, best first.

    One row per (task, model) rather than a models x tasks grid: it stays readable in an
    80-column terminal or a CI log, where a grid would cut the model names.
    """
    from rich.table import Column

    table = Table(Column("task / metric", no_wrap=True), Column("model", no_wrap=True), "value",
                  Column("95% CI", no_wrap=True),
                  title="Comparison (primary metric per task, best first)", title_justify="left")
    by_task: dict[str, list[tuple[RunResult, MetricValue | None]]] = {}
    for r in results:
        value = next((x for x in r.metrics if x.name == r.primary_metric), None)
        by_task.setdefault(r.task, []).append((r, value))
    for task, rows in by_task.items():
        rows.sort(key=lambda rv: float("inf") if rv[1] is None else (-1 if rv[1].higher_is_better else 1) * rv[1].value)
        for k, (r, v) in enumerate(rows):
            label = task if k == 0 else f"[dim]{r.primary_metric}[/dim]" if k == 1 else ""
            if len(rows) == 1:
                label = f"{task} [dim]{r.primary_metric}[/dim]"
            table.add_row(label, r.model, fmt(v.value if v else None),
                          f"[{_short(v.ci_low)}, {_short(v.ci_high)}]" if v else "-",
                          end_section=k == len(rows) - 1)
    return table


def _short(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


class CliReporter(Reporter):
    """The plan's reporter for ``llmbench run``: after each run its metrics table, failure
    reasons, flags and per-slice breakdown; a suite's ``detect:`` checked as each task loads."""

    def __init__(self, console: Console, store: str) -> None:
        super().__init__(console)
        self.store = store

    def task_loaded(self, task: Task, n: int, planned: PlannedTask) -> None:
        from llmbench.cli.power import warn_if_underpowered

        warn_if_underpowered(self.console, task, n, planned.detect, self.store)  # report.power

    def run_done(self, result: RunResult, store: ResultStore) -> None:
        console = self.console
        title = (f"{result.model} · {result.task} · mode={result.scoring_mode} · run {result.run_id} · "
                 f"cache {result.cache_hits} hit / {result.cache_misses} miss")
        if retries := result.usage.retries:
            title += f" · [yellow]{retries} retries[/yellow]"
        if result.n_errors:
            title += f" · [red]{result.n_errors} failed samples (run incomplete; rerun to retry them)[/red]"
        console.print(metrics_table(result.metrics, result.primary_metric, title=title))
        if result.n_errors:
            for reason, count in failure_reasons(store, result.run_id):
                console.print(f"  [red]{count} ×[/red] {escape(reason)}", highlight=False, soft_wrap=True)
        for line in flag_lines(result.usage):
            console.print(f"  [yellow]{escape(line)}[/yellow]", highlight=False, soft_wrap=True)
        stored = store.run(result.run_id)
        for line in breakdown_lines(stored.run_config.not_computed, result.usage, result.primary_metric):
            console.print(f"  [dim]{escape(line)}[/dim]", highlight=False, soft_wrap=True)
        for note in stored.notes:  # how the adapter computed the answers (a fallback it took)
            console.print(f"  [dim]note: {escape(note)}[/dim]", highlight=False, soft_wrap=True)


def execute_plan(plan: RunPlan, *, store: str, use_cache: bool, json_dir: Path | None,
                 console: Console, checkpoint_seconds: float | None = None) -> int:
    """``llmbench run``: the library's plan executor, then the comparison, the JSON exports
    and the exit code (2 when a run is incomplete)."""
    from llmbench.plan import execute
    from llmbench.runner import CHECKPOINT_S, RunError
    from llmbench.store import open_existing

    outcome = execute(plan, store=store, use_cache=use_cache, reporter=CliReporter(console, store),
                      checkpoint_s=CHECKPOINT_S if checkpoint_seconds is None else checkpoint_seconds)
    results = outcome.results
    if json_dir is not None and results:
        db = open_existing(store)
        try:
            for r in results:
                db.write_json(r.run_id, json_dir / f"{r.run_id}.json")
        finally:
            db.close()
    if len(results) > 1:
        console.print(comparison_table(results))
    if any("~" in r.task for r in results):  # a perturbed variant or a repeat ran (NAME~label)
        from llmbench.cli.robustness import print_for_runs

        db = open_existing(store)
        try:  # perturbed runs and repeats beside their clean runs (report.robustness, report.noise)
            done = {r.run_id for r in results}
            print_for_runs(console, db, [r for r in db.runs() if r.id in done],
                           n_resamples=plan.config.n_resamples, seed=plan.config.seed)
        finally:
            db.close()
    judged = f" and {len(outcome.judged)} judged run(s)" if outcome.judged else ""
    console.print(f"stored {len(results)} run(s){judged} in {outcome.store_url} (batch {outcome.batch_id})")
    incomplete = [r for r in results if r.status != "complete"]
    if incomplete:
        # Exit 1 belongs to the gate's "regression"; failed samples are "cannot decide" (2).
        raise RunError(f"{len(incomplete)} of {len(results)} run(s) incomplete (failed samples listed above) "
                       "— rerun the same command to retry only those samples")
    return EXIT_OK


def breakdown_lines(not_computed: dict[str, str], usage: RunUsage, primary: str) -> list[str]:
    """What a run did not compute and why (calibration under generation), and the primary value
    per slice with the best-worst gap (every metric per slice is in the store and the report)."""
    lines = [f"{name} not computed: {why}" for name, why in sorted(not_computed.items())]
    report = usage.slices or {}
    for values in (report.get("metrics") or {}).values():
        value = values.get(primary)
        if not value:
            continue

        def fmt(v: dict[str, Any]) -> str:
            ci = "" if v.get("ci_low") is None else f" [{v['ci_low']:.4g}, {v['ci_high']:.4g}]"
            return ("—" if v.get("value") is None else f"{v['value']:.4g}") + ci

        parts = [f"{key} {fmt(v)} (n={v['n']})" for key, v in value["slices"].items()]
        gap = value["gap"]
        if gap.get("value") is not None:
            parts.append(f"gap {fmt(gap)} ({gap['best']} vs {gap['worst']})")
        lines.append(f"{primary} by {report.get('by')}: " + " · ".join(parts))
    return lines


#: What a flagged answer (scored, but not to be trusted blindly) means, for the console.
FLAG_TEXT = {
    "truncated": "answers cut at max_new_tokens (finish_reason=length), scored as they are — "
                 "raise max_new_tokens if they should have ended by themselves",
    "content_filter": "answers partly withheld by the API's content filter, scored as they are",
}


def flag_lines(usage: RunUsage) -> list[str]:
    return [f"{n} {FLAG_TEXT.get(flag, flag)}" for flag, n in usage.flagged.items() if n]


def usage_line(usage: RunUsage) -> str | None:
    """One line on what a run sent and waited for (API runs), or None when it sent nothing."""
    if not usage.attempts and usage.latency_p50_s is None:
        return None
    parts = [f"requests {usage.attempts} ({usage.retries} retries)"]
    tokens = f"tokens {usage.prompt_tokens} in / {usage.completion_tokens} out"
    if usage.cached_prompt_tokens:
        tokens += f" ({usage.cached_prompt_tokens} in from the prompt cache)"
    parts.append(tokens)
    if usage.cost_usd is not None:
        parts.append(f"cost ${usage.cost_usd:.4f}")

    def secs(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    parts.append(f"latency p50/p95 {secs(usage.latency_p50_s)}/{secs(usage.latency_p95_s)} s per answer, "
                 f"{secs(usage.latency_total_p50_s)}/{secs(usage.latency_total_p95_s)} s with retries")
    if reasons := usage.finish_reasons:
        parts.append("finish " + ", ".join(f"{k}={v}" for k, v in reasons.items()))
    return " · ".join(parts)


def sample_lines(rec: SampleRecord) -> list[str]:
    """One sample opened down to its truth, for ``show --samples``: what was sent, what came
    back, what was parsed and scored, and what it cost."""
    a = rec.answer
    head = f"#{rec.idx} {rec.sample_id}" + (f"  slice={rec.slice}" if rec.slice is not None else "")
    if rec.error is not None:
        head += f"  ERROR: {rec.error}"
    lines = [head, "  prompt (as sent):", *("    " + ln for ln in rec.prompt.splitlines() or [""])]
    if a.output is not None:
        lines += ["  output (raw):", *("    " + ln for ln in a.output.splitlines() or [""])]
    if a.choice_logprobs is not None:
        greedy = a.greedy_match or []
        lines.append("  choice log-likelihoods: " + ", ".join(
            f"[{i}] {lp:.4f}" + (" (greedy)" if i < len(greedy) and greedy[i] else "")
            for i, lp in enumerate(a.choice_logprobs)))
    if a.label_scores is not None:
        lines.append("  label scores: " + ", ".join(f"{k} {v:.4f}" for k, v in a.label_scores.items()))
    lines.append(f"  prediction: {rec.prediction if rec.prediction is not None else '-'}")
    lines.append(f"  reference: {' | '.join(rec.references)}")
    facts = [f"tokens {_opt(rec.prompt_tokens)} in / {_opt(rec.completion_tokens)} out",
             f"latency {_secs(rec.latency_s)}" + (f" ({_secs(a.latency_total_s)} end to end)"
                                                  if a.latency_total_s is not None else "")]
    facts += [f"finish {a.finish_reason}"] if a.finish_reason else []
    facts += [f"{a.attempts} attempts"] if a.attempts else []
    facts += [f"flag {a.flag}"] if a.flag else []
    facts += ["from the cache"] if a.cached else []
    lines.append("  " + " · ".join(facts))
    if rec.stats:
        lines.append("  stats: " + "; ".join(f"{name} {stats}" for name, stats in rec.stats.items()))
    return lines


def _opt(v: int | None) -> str:
    return "-" if v is None else str(v)


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f} s"


def failure_reasons(db: ResultStore, run_id: str, top: int = 3) -> list[tuple[str, int]]:
    """The distinct reasons samples failed, most frequent first (at most ``top`` plus a tail)."""
    from collections import Counter

    counts = Counter(s.error for s in db.samples(run_id) if s.error is not None)
    shown = counts.most_common(top)
    rest = sum(counts.values()) - sum(n for _, n in shown)
    if rest:
        shown.append((f"… and {len(counts) - len(shown)} other reason(s)", rest))
    return shown
