"""``llmbench judge rubric | pairwise | agreement`` — a judge model grades stored answers.

Registered on the main app by ``register``. The judge is any model spec (``--judge``), its
requests go through the response cache (``--no-cache`` to bypass), and rubric and pairwise
store judged runs that ``compare``, ``gate`` and ``select`` read like any other run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from llmbench.cli.options import DEFAULT_STORE, StoreOpt, console, parse_kv

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from llmbench.judge.engine import Judge
    from llmbench.judge.labels import AgreementReport
    from llmbench.report.ratings import RatingsView
    from llmbench.store import ResultStore, RunInfo
    from llmbench.types import MetricValue

judge_app = typer.Typer(no_args_is_help=True, help="Grade stored answers with a judge model (rubric, "
                        "pairwise in both orders, agreement with human labels).")

JudgeOpt = Annotated[str, typer.Option("--judge", help="The judge: any model spec (smollm2, hf:PATH, "
                                       "openai:MODEL, a plugin).")]
JudgeArg = Annotated[list[str], typer.Option("--judge-arg", help="Judge adapter option KEY=VALUE.")]
BaseUrl = Annotated[str | None, typer.Option(help="OpenAI-compatible server URL for an openai: judge.")]
TemplateOpt = Annotated[Path | None, typer.Option(help="Jinja template of the judge prompt (sandboxed; see "
                                                  "the README for its variables). Default: built in.")]
ChatOpt = Annotated[bool, typer.Option("--chat/--no-chat", help="Send the prompt as a chat message.")]
MaxTokens = Annotated[int, typer.Option(min=1, help="Tokens the judge may write (verdicts are short).")]
Criteria = Annotated[str | None, typer.Option(help="What to judge on, passed to the template.")]
Limit = Annotated[int | None, typer.Option(min=1, help="Judge only the first N samples (by index).")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the response cache.")]
Resamples = Annotated[int, typer.Option(min=0, max=100_000, help="Bootstrap resamples for CIs.")]
Seed = Annotated[int, typer.Option(help="Bootstrap seed.")]
Tag = Annotated[list[str], typer.Option(help="Tag the judged runs.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Scale = Annotated[str, typer.Option(help="The score scale MIN-MAX.")]
VerdictBy = Annotated[str, typer.Option(help="generate: the judge writes its verdict (parsed strictly); "
                                         "loglikelihood: the most likely of the scale's options (local "
                                         "models, or APIs that score continuations).")]
HumanField = Annotated[str, typer.Option(help="The field of the label file holding the human score.")]


@contextmanager
def _judge(spec: str, args: list[str], base_url: str | None, template: Path | None, default: str, *,
           chat: bool, max_new_tokens: int, no_cache: bool, verdict_by: str = "generate") -> Iterator[Judge]:
    from llmbench.cache import ResponseCache
    from llmbench.judge.engine import Judge
    from llmbench.judge.prompts import JudgeError, JudgePrompt, load_template
    from llmbench.types import GenerationConfig

    options = parse_kv(args, "--judge-arg")
    if base_url:
        options["base_url"] = base_url
    if verdict_by not in ("generate", "loglikelihood"):
        raise JudgeError(f"--verdict-by '{verdict_by}' is not a method — use generate or loglikelihood")
    text, where = load_template(template, default)
    prompt = JudgePrompt(text, where, chat, GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0),
                         "loglikelihood" if verdict_by == "loglikelihood" else "generate")
    cache = None if no_cache else ResponseCache()
    try:
        judge = Judge.load(spec, options, prompt, cache)
        try:
            yield judge
        finally:
            judge.close()
    finally:
        if cache is not None:
            cache.close()


def _values_table(values: list[MetricValue], title: str) -> Table:
    table = Table("value", "point", "95% CI", "n", title=title, title_justify="left")
    for v in values:
        ci = f"[{v.ci_low:.4f}, {v.ci_high:.4f}]" if v.ci_low is not None and v.ci_high is not None else "-"
        table.add_row(v.name, f"{v.value:.4f}", ci, str(v.n))
    return table


def _agreement_lines(report: AgreementReport) -> list[str]:
    def one(a: Any) -> str:
        ci = f" [{a.ci_low:.3f}, {a.ci_high:.3f}]" if a.ci_low is not None else ""
        return f"{a.statistic} {a.value:.3f}{ci}"

    of = " (of the expected score)" if report.spearman_of != "score" else ""
    return [f"agreement with people on {report.n_items} items ({report.n_invalid} invalid verdicts left out): "
            f"{one(report.spearman)}{of}, {one(report.kappa)}"]


@judge_app.command("rubric")
def rubric_cmd(
    run: Annotated[str, typer.Argument(help="The stored run whose answers are graded (id or unique prefix).")],
    judge: JudgeOpt, judge_arg: JudgeArg = [], base_url: BaseUrl = None,  # noqa: B006
    template: TemplateOpt = None, chat: ChatOpt = True, max_new_tokens: MaxTokens = 16,
    scale: Scale = "1-5", criteria: Criteria = None, limit: Limit = None,
    human: Annotated[Path | None, typer.Option(help="JSONL of human scores (id + --human-field) to measure "
                                               "the judge's agreement on the samples it shares.")] = None,
    human_field: HumanField = "human", verdict_by: VerdictBy = "generate", store: StoreOpt = DEFAULT_STORE,
    no_cache: NoCache = False,
    resamples: Resamples = 1000, seed: Seed = 0, tag: Tag = [], as_json: AsJson = False,  # noqa: B006
) -> None:
    """Score each answer of a stored run against its reference; store a judged run (TASK@judge)."""
    from llmbench.judge.labels import agreement, read_labels
    from llmbench.judge.prompts import RUBRIC_TEMPLATE
    from llmbench.judge.rubric import judge_run, parse_scale
    from llmbench.store import ResultStore

    lo_hi = parse_scale(scale)
    labels = read_labels(human, field=human_field, need_text=False) if human is not None else None
    db = ResultStore(store)
    db.run(run)  # an unknown run is one line before any judge loads
    with _judge(judge, judge_arg, base_url, template, RUBRIC_TEMPLATE, chat=chat, max_new_tokens=max_new_tokens,
                no_cache=no_cache, verdict_by=verdict_by) as j:
        judged, scored = judge_run(db, run, j, scale=lo_hi, criteria=criteria, limit=limit,
                                   n_resamples=resamples, seed=seed, tags=tag)
    report = None
    if labels is not None:
        by_id = {s.item.id: s for s in scored}
        shared = [lab for lab in labels if lab.item.id in by_id]
        report = agreement([by_id[lab.item.id].score for lab in shared], [lab.human for lab in shared],
                           n_resamples=resamples, seed=seed,
                           expected=[by_id[lab.item.id].expected for lab in shared]
                           if verdict_by == "loglikelihood" else None)
    if as_json:
        body = {"run_id": judged.run_id, "task": judged.task, "model": judged.model,
                "values": [v.model_dump() for v in judged.values], "usage": judged.usage,
                "agreement": report.to_json() if report else None}
        sys.stdout.write(json.dumps(body, indent=1, default=str) + "\n")
        return
    console.print(_values_table(judged.values, f"{escape(judged.model)} on {escape(judged.task)} — judged by "
                                f"{escape(judge)} (run {judged.run_id})"))
    _print_usage(judged.usage)
    for line in _agreement_lines(report) if report else []:
        console.print(line, highlight=False)


def _print_usage(usage: dict[str, Any]) -> None:
    j = usage["judge"]
    console.print(f"judge: {j['cache_hits']} cached / {j['cache_misses']} asked, {j['errors']} failed, "
                  f"{usage.get('invalid_verdicts', 0)} invalid verdicts; tokens {j['prompt_tokens']} in / "
                  f"{j['completion_tokens']} out; total with the answers: {usage['prompt_tokens']} in / "
                  f"{usage['completion_tokens']} out"
                  + (f", ${usage['cost_usd']:.4f}" if usage.get("cost_usd") is not None else ""),
                  highlight=False)
    if usage.get("self_judged"):
        console.print(f"[yellow]the judge is the model it grades ({escape(', '.join(usage['self_judged']))}): "
                      "judges tend to prefer their own answers — use another judge for a fair number[/yellow]")


@judge_app.command("pairwise")
def pairwise_cmd(
    runs: Annotated[list[str], typer.Argument(help="Two or more stored runs of one task (the first is the "
                                              "baseline of win rates); every pair is judged in both orders.")],
    judge: JudgeOpt, judge_arg: JudgeArg = [], base_url: BaseUrl = None,  # noqa: B006
    template: TemplateOpt = None, chat: ChatOpt = True, max_new_tokens: MaxTokens = 8,
    criteria: Criteria = None, limit: Limit = None, verdict_by: VerdictBy = "generate",
    store: StoreOpt = DEFAULT_STORE, no_cache: NoCache = False,
    resamples: Resamples = 1000, seed: Seed = 0, tag: Tag = [], as_json: AsJson = False,  # noqa: B006
) -> None:
    """Judge runs against each other in both orders; store each pair (TASK@pairwise), print
    win rates (raw and length-controlled), position consistency and Bradley–Terry ratings."""
    from llmbench.judge.pairwise import judge_pairwise
    from llmbench.judge.prompts import PAIRWISE_TEMPLATE, JudgeError
    from llmbench.report.ratings import view_of
    from llmbench.store import ResultStore

    if len(runs) < 2:
        raise JudgeError("judge pairwise needs at least two runs of one task")
    db = ResultStore(store)
    for ref in runs:
        db.run(ref)
    results = []
    with _judge(judge, judge_arg, base_url, template, PAIRWISE_TEMPLATE, chat=chat, max_new_tokens=max_new_tokens,
                no_cache=no_cache, verdict_by=verdict_by) as j:
        for i, ref_a in enumerate(runs):
            for ref_b in runs[i + 1:]:
                judged, _, _ = judge_pairwise(db, ref_a, ref_b, j, criteria=criteria, limit=limit,
                                              n_resamples=resamples, seed=seed, tags=tag)
                results.append(judged)
    # The ratings from the judged runs as stored: the leaderboard's ratings view reads the same.
    view = view_of(db, [db.run(r.run_id) for r in results])
    if as_json:
        body = {"pairs": [{"run_id": r.run_id, "model": r.model, "values": [v.model_dump() for v in r.values],
                           "usage": r.usage} for r in results],
                "ratings": {"converged": view.converged if view else True,
                            "n_comparisons": view.n_comparisons if view else 0,
                            "ratings": [{"player": m["model"], "rating": m["rating"], "ci_low": m["ci_low"],
                                         "ci_high": m["ci_high"]} for m in (view.models if view else [])]},
                "models": view.models if view else []}
        sys.stdout.write(json.dumps(body, indent=1, default=str) + "\n")
        return
    for r in results:
        console.print(_values_table(r.values, f"{escape(r.model)} vs {escape(r.baseline or '')} on "
                                    f"{escape(r.task)} — judged by {escape(judge)} (run {r.run_id})"))
        _print_usage(r.usage)
    if view is None:
        console.print("no valid verdicts: no Bradley–Terry ratings", highlight=False)
        return
    console.print(ratings_table(view))
    if not view.converged:
        console.print("[yellow]a model won or lost every comparison: its rating is not finite (the numbers "
                      "shown are where the fit stopped)[/yellow]")


def ratings_table(view: RatingsView) -> Table:
    """The ratings view as the leaderboard shows it (``report.ratings``), as a console table."""
    table = Table("model", "Bradley–Terry rating", "95% CI", "win rate", "LC win rate", "comparisons",
                  "consistency", title=f"ratings over {view.n_comparisons} consistent-or-tied comparisons "
                  "(log-odds, mean 0)", title_justify="left")
    for m in view.models:
        ci = f"[{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]" if m["ci_low"] is not None and m["ci_high"] is not None \
            else "-"
        table.add_row(escape(m["model"]), f"{m['rating']:+.3f}", ci, f"{m['win_rate']:.3f}",
                      f"{m['lc_win_rate']:.3f}", str(m["n_comparisons"]), f"{m['consistency']:.3f}")
    return table


@judge_app.command("agreement")
def agreement_cmd(
    labels: Annotated[str, typer.Argument(help="JSONL of items (id, input, reference, prediction) with a "
                                          "human score each, or a built-in set: stdlib_docstrings.")],
    judge: JudgeOpt, judge_arg: JudgeArg = [], base_url: BaseUrl = None,  # noqa: B006
    template: TemplateOpt = None, chat: ChatOpt = True, max_new_tokens: MaxTokens = 16,
    scale: Scale = "1-5", criteria: Criteria = None, human_field: HumanField = "human",
    verdict_by: VerdictBy = "generate", no_cache: NoCache = False, resamples: Resamples = 1000, seed: Seed = 0,
    as_json: AsJson = False,
) -> None:
    """How far the judge agrees with people on a labelled set: Spearman and Cohen's kappa with CIs."""
    from llmbench.judge.labels import is_pairwise, resolve_labels
    from llmbench.judge.prompts import PAIRWISE_TEMPLATE, RUBRIC_TEMPLATE
    from llmbench.judge.rubric import parse_scale

    lo_hi = parse_scale(scale)
    path = resolve_labels(labels)
    pairwise = is_pairwise(path)
    with _judge(judge, judge_arg, base_url, template, PAIRWISE_TEMPLATE if pairwise else RUBRIC_TEMPLATE, chat=chat,
                max_new_tokens=max_new_tokens, no_cache=no_cache, verdict_by=verdict_by) as j:
        if pairwise:
            report, items = _pair_agreement(j, path, human_field, criteria, resamples, seed)
        else:
            report, items = _score_agreement(j, path, human_field, lo_hi, criteria, resamples, seed)
        usage = j.usage.to_json()
    if as_json:
        body = {**report.to_json(), "judge": judge, "usage": usage, "items": items}
        sys.stdout.write(json.dumps(body, indent=1, default=str) + "\n")
        return
    for line in _agreement_lines(report):
        console.print(line, highlight=False)
    console.print(f"judge: {usage['cache_hits']} cached / {usage['cache_misses']} asked, {usage['errors']} failed",
                  highlight=False)


def _score_agreement(j: Judge, path: Path, field: str, scale: tuple[int, int], criteria: str | None,
                     resamples: int, seed: int) -> tuple[AgreementReport, list[dict[str, Any]]]:
    from llmbench.judge.labels import agreement, read_labels
    from llmbench.judge.rubric import score_items

    items = read_labels(path, field=field)
    scored = score_items(j, [lab.item for lab in items], scale=scale, criteria=criteria)
    by_ll = j.prompt.method == "loglikelihood"
    report = agreement([s.score for s in scored], [lab.human for lab in items], n_resamples=resamples, seed=seed,
                       expected=[s.expected for s in scored] if by_ll else None)
    return report, [{"id": s.item.id, "judge": s.score, "human": lab.human, "verdict": s.verdict,
                     "expected": s.expected}
                    for s, lab in zip(scored, items, strict=True)]


def _pair_agreement(j: Judge, path: Path, field: str, criteria: str | None, resamples: int,
                    seed: int) -> tuple[AgreementReport, list[dict[str, Any]]]:
    from llmbench.judge.agreement import cohen_kappa, spearman
    from llmbench.judge.labels import AgreementReport, read_pair_labels
    from llmbench.judge.pairwise import judge_pairs
    from llmbench.store import SampleRecord

    items = read_pair_labels(path, field=field)

    def record(k: int, it: Any, answer: str) -> SampleRecord:
        return SampleRecord(idx=k, sample_id=it.id, input=it.input, prompt="", prediction=answer,
                            references=list(it.references), stats={})

    verdicts = judge_pairs(j, [(record(k, it, it.answer_a), record(k, it, it.answer_b))
                               for k, it in enumerate(items)], criteria)
    as_label = {0.0: "A", 0.5: "tie", 1.0: "B"}
    order = {"A": 0, "tie": 1, "B": 2}
    kept = [(as_label[v.outcome], it.human) for v, it in zip(verdicts, items, strict=True) if v.valid]
    judged, human = [k for k, _ in kept], [h for _, h in kept]
    report = AgreementReport(len(items), len(items) - len(kept),
                             spearman([order[x] for x in judged], [order[x] for x in human],
                                      n_resamples=resamples, seed=seed),
                             cohen_kappa(judged, human, n_resamples=resamples, seed=seed), "preference (A < tie < B)")
    return report, [{"id": it.id, "judge": as_label[v.outcome] if v.valid else None, "human": it.human,
                     "ab": v.ab, "ba": v.ba} for v, it in zip(verdicts, items, strict=True)]


def print_judgements(out: Console, db: ResultStore, runs: Sequence[RunInfo]) -> None:
    """``show``: under each evaluated run, the judged runs made of it (``TASK@judge`` of this run,
    ``TASK@pairwise`` where it is either side) with their primary value, so a run judged by its
    task's or suite's ``judge:`` shows its judged numbers with it."""
    shown = {r.id for r in runs}
    judged = [j for j in db.runs() if j.task.endswith(("@judge", "@pairwise")) and j.id not in shown]
    for run in runs:
        for j in judged:
            if run.id not in (j.config.get("source_run"), j.config.get("baseline_run")):
                continue
            stored = next((m for m in db.metrics(j.id) if m.value.name == j.primary_metric), None)
            shown_value = "- (no valid verdict)" if stored is None else f"{stored.value.value:.4f}"
            spec = (j.config.get("judge") or {}).get("spec", "?")
            baseline = stored.metric_args.get("baseline") if stored is not None else None
            vs = f" ({j.model} vs {baseline})" if baseline else ""
            out.print(f"judged: {j.task}{vs} {j.primary_metric}={shown_value} by {spec} (run {j.id})",
                      highlight=False, soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(judge_app, name="judge")
