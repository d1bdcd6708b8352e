"""Rubric mode: a judge scores each stored answer against its reference (and criteria).

Reads a stored run's per-sample records (input, references, prediction), renders one judge
prompt per answered sample, asks the judge (cache first), parses each verdict strictly on the
declared scale and stores a judged run (``TASK@judge``) whose ``judge_score`` metric pairs
with other judged runs by sample id. A sample the source run failed on is not judged (it
stays an error); an unparseable verdict is an *invalid* sample, counted, never scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmbench.judge.engine import Judge, JudgeUsage, prompt_text
from llmbench.judge.prompts import JudgeError
from llmbench.judge.record import JUDGE_STATS_KEY, JudgedRun, add_usage, source_run, write_judged_run
from llmbench.judge.verdicts import parse_score
from llmbench.metrics.judged import JudgeScore
from llmbench.store import ResultStore, SampleRecord


@dataclass(frozen=True)
class RubricItem:
    """One answer to grade (from a stored run, or a labelled file)."""

    id: str
    input: str
    references: tuple[str, ...]
    prediction: str


@dataclass(frozen=True)
class Scored:
    item: RubricItem
    score: int | None  # None: invalid verdict (or the judge failed: see ``error``)
    verdict: str | None
    error: str | None
    prompt: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    latency_s: float | None
    #: By log-likelihood: the probability-weighted score sum_k p(k) * k over the scale (G-Eval's
    #: score), which ranks answers even when the most likely option is always the same.
    expected: float | None = None


def expected_score(logprobs: Sequence[float] | None, lo: int) -> float | None:
    """sum_k p(k) * k with p the softmax of the options' log-probabilities (options lo, lo+1, ...)."""
    if not logprobs:
        return None
    top = max(logprobs)
    weights = [math.exp(x - top) for x in logprobs]
    return sum((lo + k) * w for k, w in enumerate(weights)) / sum(weights)


def parse_scale(text: str) -> tuple[int, int]:
    """``"1-5"`` -> (1, 5)."""
    lo, sep, hi = text.partition("-")
    try:
        low, high = int(lo), int(hi)
    except ValueError:
        low = high = 0
    if not sep or high <= low or low < 0 or high > 100:
        raise JudgeError(f"--scale '{text}' is not MIN-MAX with 0 <= MIN < MAX <= 100 — e.g. --scale 1-5")
    return low, high


def score_items(judge: Judge, items: Sequence[RubricItem], *, scale: tuple[int, int],
                criteria: str | None) -> list[Scored]:
    """Render, ask, parse: one ``Scored`` per item, in order."""
    lo, hi = scale
    prompts = [(it.id, judge.prompt.render(it.id, input=it.input, reference=it.references[0] if it.references else "",
                                           references=list(it.references), prediction=it.prediction,
                                           criteria=criteria or "", scale_min=lo, scale_max=hi))
               for it in items]
    answers = judge.ask(prompts, [str(k) for k in range(lo, hi + 1)])
    out = []
    for it, (_, prompt), r in zip(items, prompts, answers, strict=True):
        usage = r.usage
        expected = expected_score(r.logprobs, lo) if judge.prompt.method == "loglikelihood" and not r.error else None
        out.append(Scored(it, None if r.error else parse_score(r.text, lo, hi), r.text, r.error, prompt_text(prompt),
                          usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
                          r.cost_usd, r.latency_s, expected))
    return out


def _record(source: SampleRecord, scored: Scored | None, metric: str) -> SampleRecord:
    """The judged sample: the source's answer and cost plus the judge's verdict and cost."""
    if scored is None:  # the source run failed on this sample: nothing to judge
        return source.model_copy(update={"stats": {}})
    judge_info: dict[str, Any] = {"verdict": (scored.verdict or "")[:2000], "prompt_tokens": scored.prompt_tokens,
                                  "completion_tokens": scored.completion_tokens, "cost_usd": scored.cost_usd,
                                  "latency_s": scored.latency_s, "expected": scored.expected}
    stats: dict[str, Any] = {JUDGE_STATS_KEY: judge_info}
    if scored.error is None:
        stats[metric] = {"score": scored.score or 0, "valid": int(scored.score is not None)}
    cost = None if source.cost_usd is None and scored.cost_usd is None else \
        (source.cost_usd or 0.0) + (scored.cost_usd or 0.0)
    return source.model_copy(update={
        "prompt": scored.prompt, "stats": stats, "error": None if scored.error is None else f"judge: {scored.error}",
        "prompt_tokens": (source.prompt_tokens or 0) + scored.prompt_tokens,
        "completion_tokens": (source.completion_tokens or 0) + scored.completion_tokens,
        "cost_usd": cost, "latency_s": (source.latency_s or 0.0) + (scored.latency_s or 0.0)})


def judge_run(store: ResultStore, ref: str, judge: Judge, *, scale: tuple[int, int] = (1, 5),
              criteria: str | None = None, limit: int | None = None, n_resamples: int = 1000,
              seed: int = 0, tags: Sequence[str] = (),
              batch_id: str | None = None) -> tuple[JudgedRun, list[Scored]]:
    """Judge every answered sample of the stored run ``ref`` (the first ``limit`` by index)."""
    source = source_run(store, ref)
    records = store.samples(source.id)[:limit]
    answered = [r for r in records if r.error is None and r.prediction is not None]
    if not answered:
        raise JudgeError(f"run {source.id} has no answered samples to judge")
    judge.usage = JudgeUsage()  # this run's judging alone
    items = [RubricItem(r.sample_id, r.input, tuple(r.references), r.prediction or "") for r in answered]
    scored = {s.item.id: s for s in score_items(judge, items, scale=scale, criteria=criteria)}
    fp = judge.fingerprint(scale=list(scale), criteria=criteria)
    metric_args: dict[str, Any] = {"judge": judge.spec, "fingerprint": fp, "scale_min": scale[0],
                                   "scale_max": scale[1]}
    metric = JudgeScore(judge=judge.spec, fingerprint=fp, scale_min=scale[0], scale_max=scale[1])
    judged = [_record(r, scored.get(r.sample_id) if r.error is None else None, metric.name) for r in records]
    judge_usage = judge.usage.to_json()
    usage = {**add_usage(source.usage, judge_usage), "answers": source.usage, "judge": judge_usage,
             "invalid_verdicts": sum(1 for s in scored.values() if s.error is None and s.score is None),
             "self_judged": [source.model] if judge.adapter.identity() == source.model_identity else []}
    config = {"source_run": source.id, "judge": {**judge.identity(scale=list(scale), criteria=criteria),
                                                  "criteria": criteria, "scale": list(scale),
                                                  "template": judge.prompt.source},
              "model": source.run_config.model, "limit": limit, "seed": seed, "n_resamples": n_resamples}
    run = write_judged_run(store, source=source, task=f"{source.task}@judge", mode="judge-rubric",
                           judge_spec=judge.spec, judge_fp=fp, metric=metric, metric_args=metric_args,
                           records=judged, config=config, usage=usage, n_resamples=n_resamples, seed=seed,
                           tags=tags, batch_id=batch_id)
    return run, list(scored.values())
