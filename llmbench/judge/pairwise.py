"""Pairwise mode: a judge compares two runs' answers sample by sample, in both orders.

Position bias is the judge failure the field knows best (the first answer shown wins more
often than it should), so every pair is asked twice: A shown first, then B shown first. The
two verdicts, read from B's side (1 B better, 0 A better, 0.5 tie), must agree for a win: a
verdict that flips with the order is a tie and the sample is *inconsistent*; the share of
consistent samples is reported. A judge that always picks the first answer therefore gives
0 % consistency and only ties, instead of a coin-flip winner. An unparseable verdict in
either order makes the sample invalid (counted, never guessed).

Each judged pair is stored as a run of the candidate B (``TASK@pairwise``, metric
``judge_pairwise`` with the baseline A in its arguments), and the verdicts of every pair
judged together feed the Bradley–Terry ratings (``ratings.rate``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmbench.judge.engine import Judge, JudgeUsage
from llmbench.judge.prompts import JudgeError
from llmbench.judge.record import JUDGE_STATS_KEY, JudgedRun, add_usage, source_run, write_judged_run
from llmbench.judge.verdicts import Preference, parse_preference
from llmbench.metrics.judged import JudgePairwise
from llmbench.metrics.ratings import Comparison, comparison
from llmbench.store import ResultStore, RunInfo, SampleRecord

#: B's outcome for a verdict, by the order it was shown in: AB (A first) and BA (B first).
_AB = {"A": 0.0, "B": 1.0, "tie": 0.5}
_BA = {"A": 1.0, "B": 0.0, "tie": 0.5}


@dataclass(frozen=True)
class PairVerdict:
    """The two verdicts on one sample and what they add up to (from B's side)."""

    sample_id: str
    ab: Preference | None
    ba: Preference | None
    error: str | None = None
    prompt_tokens: int = 0  # the judge's, both orders together
    completion_tokens: int = 0
    cost_usd: float | None = None

    @property
    def valid(self) -> bool:
        return self.error is None and self.ab is not None and self.ba is not None

    @property
    def consistent(self) -> bool:
        return self.valid and _AB[self.ab or "tie"] == _BA[self.ba or "tie"]

    @property
    def outcome(self) -> float:
        """1 B better, 0 A better, 0.5 a tie or a verdict that flipped with the order."""
        return _AB[self.ab or "tie"] if self.consistent else 0.5


def pair_samples(a: Sequence[SampleRecord], b: Sequence[SampleRecord]) -> list[tuple[SampleRecord, SampleRecord]]:
    """Samples both runs answered, paired by sample id, in A's order."""
    by_id = {r.sample_id: r for r in b if r.error is None and r.prediction is not None}
    return [(r, by_id[r.sample_id]) for r in a
            if r.error is None and r.prediction is not None and r.sample_id in by_id]


def judge_pairs(judge: Judge, pairs: Sequence[tuple[SampleRecord, SampleRecord]],
                criteria: str | None) -> list[PairVerdict]:
    """Ask the judge about every pair in both orders (one batch of 2 x len(pairs) prompts)."""
    prompts = []
    for ra, rb in pairs:
        common = {"input": ra.input, "reference": ra.references[0] if ra.references else "",
                  "references": list(ra.references), "criteria": criteria or ""}
        prompts.append((f"{ra.sample_id}|AB", judge.prompt.render(ra.sample_id, answer_a=ra.prediction,
                                                                  answer_b=rb.prediction, **common)))
        prompts.append((f"{ra.sample_id}|BA", judge.prompt.render(ra.sample_id, answer_a=rb.prediction,
                                                                  answer_b=ra.prediction, **common)))
    answers = judge.ask(prompts, ["A", "B", "tie"])
    out = []
    for k, (ra, _) in enumerate(pairs):
        first, second = answers[2 * k], answers[2 * k + 1]
        error = first.error or second.error
        costs = [r.cost_usd for r in (first, second) if r.cost_usd is not None]
        out.append(PairVerdict(ra.sample_id, None if first.error else parse_preference(first.text),
                               None if second.error else parse_preference(second.text), error,
                               sum(r.usage.prompt_tokens for r in (first, second) if r.usage),
                               sum(r.usage.completion_tokens for r in (first, second) if r.usage),
                               sum(costs) if costs else None))
    return out


def comparisons(a: RunInfo, b: RunInfo, records: Sequence[SampleRecord], metric: str) -> list[Comparison]:
    """Bradley–Terry input from the records as stored: one comparison per valid sample,
    ``first`` = B — read by ``metrics.ratings.comparison`` exactly as the leaderboard reads them."""
    found = (comparison(b.model, a.model, r.sample_id, r.stats.get(metric)) for r in records)
    return [c for c in found if c is not None]


def _stats(v: PairVerdict, ra: SampleRecord, rb: SampleRecord) -> dict[str, Any]:
    return {"outcome": v.outcome, "consistent": int(v.consistent), "valid": int(v.valid),
            "len_diff": len(rb.prediction or "") - len(ra.prediction or "")}


def judge_pairwise(store: ResultStore, ref_a: str, ref_b: str, judge: Judge, *, criteria: str | None = None,
                   limit: int | None = None, n_resamples: int = 1000, seed: int = 0,
                   tags: Sequence[str] = (), batch_id: str | None = None,
                   ) -> tuple[JudgedRun, list[Comparison], list[PairVerdict]]:
    """Judge B against A on the samples both answered; store the pair as a run of B."""
    a, b = source_run(store, ref_a), source_run(store, ref_b)
    if a.task != b.task:
        raise JudgeError(f"runs {a.id} ({a.task}) and {b.id} ({b.task}) are on different tasks — compare "
                         "two runs of one task")
    if a.id == b.id:
        raise JudgeError(f"run {a.id} given twice — give two different runs")
    pairs = pair_samples(store.samples(a.id), store.samples(b.id))[:limit]
    if not pairs:
        raise JudgeError(f"runs {a.id} and {b.id} share no answered sample ids — nothing to compare")
    judge.usage = JudgeUsage()  # this pair's judging alone
    verdicts = judge_pairs(judge, pairs, criteria)
    judge_usage = judge.usage.to_json()
    fp = judge.fingerprint(criteria=criteria, mode="pairwise")
    metric_args: dict[str, Any] = {"judge": judge.spec, "fingerprint": fp, "baseline": a.model}
    metric = JudgePairwise(judge=judge.spec, fingerprint=fp, baseline=a.model)
    records: list[SampleRecord] = []
    for (ra, rb), v in zip(pairs, verdicts, strict=True):
        stats: dict[str, Any] = {JUDGE_STATS_KEY: {"ab": v.ab, "ba": v.ba, "baseline_prediction": ra.prediction}}
        if v.error is None:
            stats[metric.name] = _stats(v, ra, rb)
        cost = None if rb.cost_usd is None and v.cost_usd is None else (rb.cost_usd or 0.0) + (v.cost_usd or 0.0)
        records.append(rb.model_copy(update={
            "idx": len(records), "stats": stats, "error": None if v.error is None else f"judge: {v.error}",
            "prompt_tokens": (rb.prompt_tokens or 0) + v.prompt_tokens,
            "completion_tokens": (rb.completion_tokens or 0) + v.completion_tokens, "cost_usd": cost}))
    usage = {**add_usage(b.usage, judge_usage), "answers": b.usage, "judge": judge_usage,
             "invalid_verdicts": sum(1 for v in verdicts if v.error is None and not v.valid),
             "position_consistency": _share([v.consistent for v in verdicts if v.valid]),
             "self_judged": [r.model for r in (a, b) if judge.adapter.identity() == r.model_identity]}
    config = {"source_run": b.id, "baseline_run": a.id, "judge": {**judge.identity(criteria=criteria, mode="pairwise"),
                                                                   "criteria": criteria,
                                                                   "template": judge.prompt.source},
              "model": b.run_config.model, "limit": limit, "seed": seed, "n_resamples": n_resamples}
    run = write_judged_run(store, source=b, task=f"{b.task}@pairwise", mode="judge-pairwise", judge_spec=judge.spec,
                           judge_fp=fp, metric=metric, metric_args=metric_args, records=records, config=config,
                           usage=usage, n_resamples=n_resamples, seed=seed, tags=tags, batch_id=batch_id)
    return dataclasses.replace(run, baseline=a.model), comparisons(a, b, records, metric.name), verdicts


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None
