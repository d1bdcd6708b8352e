"""A plan's judges: ``judge:`` in a task file or a suite, run on the answers once they are stored.

The judge is loaded (adapter built, template compiled: a bad spec, option or template is one
line) before any evaluated model runs, and asked after the last model answered, through the
same code as ``llmbench judge`` (``llmbench.judge``: the model's adapter, the plan's response
cache, strict verdicts). Each judgement is stored as a judged run in the plan's batch — rubric:
``TASK@judge`` per run (metric ``judge_score``); pairwise: ``TASK@pairwise`` for every two models
of the plan on the task, each pair in both orders (metric ``judge_pairwise``) — whose metric
signature holds the judge's identity, prompt and decoding, whose usage adds the judge's tokens
to the answers', and which ``show``, ``compare``, ``gate``, ``select`` and the leaderboard read
like any run. Only a clean task is judged (not its perturbed variants or repeats).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmbench.plan.build import PlannedTask
from llmbench.tasks.spec import JUDGED_KINDS, JudgeConfig

if TYPE_CHECKING:
    from llmbench.cache import ResponseCache
    from llmbench.judge.engine import Judge
    from llmbench.judge.record import JudgedRun
    from llmbench.plan.progress import Reporter
    from llmbench.runner import RunConfig, RunResult
    from llmbench.store import ResultStore
    from llmbench.tasks.base import Task


@dataclass
class PlannedJudge:
    """The judge of one planned task, loaded (its weights, if any, only when first asked)."""

    planned: PlannedTask
    task: str
    config: JudgeConfig
    judge: Judge


def judge_config(pt: PlannedTask, task: Task) -> JudgeConfig | None:
    """The judge of a planned task: the suite's (task entry, then suite) over the task file's."""
    if pt.variant is not None:
        return None
    return pt.judge if pt.judge is not None else task.judge


def load_judges(tasks: dict[PlannedTask, Task]) -> list[PlannedJudge]:
    """Every judge of the plan, checked before the first model runs."""
    from llmbench.errors import UserError
    from llmbench.judge.prompts import JudgeError

    out: list[PlannedJudge] = []
    try:
        for pt, task in tasks.items():
            config = judge_config(pt, task)
            if config is None:
                continue
            try:
                if task.kind not in JUDGED_KINDS:
                    raise JudgeError(f"task '{task.name}' is a {task.kind} task — a judge grades free-text "
                                     f"answers ({', '.join(JUDGED_KINDS)}); remove its judge")
                out.append(PlannedJudge(pt, task.name, config, _load(config)))
            except UserError as err:  # which file's judge: block (a suite's entry, else the task file)
                raise UserError(f"{pt.origin or task.source}: judge: {err}") from None
    except BaseException:
        close_judges(out)
        raise
    return out


def _load(config: JudgeConfig) -> Judge:
    from llmbench.judge.engine import Judge
    from llmbench.judge.prompts import PAIRWISE_TEMPLATE, RUBRIC_TEMPLATE, JudgePrompt
    from llmbench.types import GenerationConfig

    rubric = config.mode == "rubric"
    decoding = config.decoding or GenerationConfig(max_new_tokens=16 if rubric else 8, temperature=0.0)
    template = config.template or (RUBRIC_TEMPLATE if rubric else PAIRWISE_TEMPLATE)
    where = "(built-in)" if config.template is None else "(judge: template)"
    prompt = JudgePrompt(template, where, config.chat, decoding, config.verdict_by)
    return Judge.load(config.model, dict(config.options), prompt, None)


def close_judges(judges: Sequence[PlannedJudge]) -> None:
    for pj in judges:
        pj.judge.close()


def run_judges(judges: Sequence[PlannedJudge], results: Sequence[tuple[PlannedTask, RunResult]], *,
               store: ResultStore, cache: ResponseCache | None, config: RunConfig, batch_id: str,
               reporter: Reporter) -> list[JudgedRun]:
    """Judge the plan's stored runs of each judged task; returns the judged runs stored."""
    out: list[JudgedRun] = []
    for pj in judges:
        pj.judge.cache = cache
        runs = [r for pt, r in results if pt == pj.planned and r.status in ("complete", "incomplete")]
        if pj.config.mode == "rubric":
            out += [_rubric(pj, r, store, config, batch_id, reporter) for r in runs]
        elif len(runs) < 2:
            reporter.note(f"{pj.task}: pairwise judging compares two models or more — {len(runs)} ran this task, "
                          "nothing judged (add models, or use mode: rubric)", style="yellow")
        else:
            out += _pairwise(pj, runs, store, config, batch_id, reporter)
    return out


def _rubric(pj: PlannedJudge, result: RunResult, store: ResultStore, config: RunConfig, batch_id: str,
            reporter: Reporter) -> JudgedRun:
    from llmbench.judge.rubric import judge_run

    judged, _ = judge_run(store, result.run_id, pj.judge, scale=pj.config.scale, criteria=pj.config.criteria,
                          n_resamples=config.n_resamples, seed=config.seed, tags=config.tags, batch_id=batch_id)
    values = {v.name: v.value for v in judged.values}
    score = f"{values['judge_score']:.4f}" if "judge_score" in values else "- (no valid verdict)"
    reporter.console.print(f"{judged.model} · {judged.task}: judge_score={score} (judged by {pj.config.model}; "
                           f"{_usage_line(judged)}; run {judged.run_id})", highlight=False, soft_wrap=True,
                           markup=False)
    return judged


def _pairwise(pj: PlannedJudge, runs: Sequence[RunResult], store: ResultStore, config: RunConfig, batch_id: str,
              reporter: Reporter) -> list[JudgedRun]:
    from llmbench.judge.pairwise import judge_pairwise
    from llmbench.report.ratings import view_of

    out = []
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            judged, _, _ = judge_pairwise(store, a.run_id, b.run_id, pj.judge, criteria=pj.config.criteria,
                                          n_resamples=config.n_resamples, seed=config.seed, tags=config.tags,
                                          batch_id=batch_id)
            values = {v.name: v.value for v in judged.values}
            win = f"{values['win_rate']:.4f}" if "win_rate" in values else "- (no valid verdict)"
            reporter.console.print(f"{judged.model} vs {judged.baseline} · {judged.task}: win_rate={win} (judged "
                                   f"by {pj.config.model}, both orders; {_usage_line(judged)}; run {judged.run_id})",
                                   highlight=False, soft_wrap=True, markup=False)
            out.append(judged)
    view = view_of(store, [store.run(j.run_id) for j in out])
    if view is not None:
        ranks = ", ".join(f"{m['model']} {m['rating']:+.3f}" for m in view.models)
        reporter.console.print(f"{pj.task}: Bradley–Terry ratings over {view.n_comparisons} comparisons: {ranks} "
                               "(the leaderboard's Ratings page)", highlight=False, soft_wrap=True, markup=False)
    return out


def _usage_line(judged: JudgedRun) -> str:
    j = judged.usage["judge"]
    return (f"{judged.usage.get('invalid_verdicts', 0)} invalid verdicts, judge {j['cache_hits']} cached / "
            f"{j['cache_misses']} asked, {j['prompt_tokens'] + j['completion_tokens']} judge tokens")
