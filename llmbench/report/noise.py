"""The noise floor of a model that samples: K draws per sample (``llmbench run --repeats K``).

Repeat 0 is the ordinary run; repeats 1 .. K-1 are runs of task ``<clean>~repeat<k>`` in the
same batch, every request's decoding seed offset by k (``tasks.perturbed.RepeatTask``). Here:

* **Between-repeat variance** (``measure``): the K scores of the primary value, their mean and
  standard deviation (ddof 1: what a rerun of the same model would move by), and the share of
  samples whose answer differs between repeats.
* **The gate and compare use the repeats** (``average_repeats``): a value of a clean pair with
  repeats on either side is tested on each sample's *mean* score over its draws (paired bootstrap
  over samples), and the repeat runs are not gated one by one. Why: gating each of K repeat pairs
  on its own raises the false-alarm rate of an unchanged sampled model about K-fold (any of K
  independent tests at alpha), while the mean over draws is one calibrated test whose noise shrinks
  with K. Values whose per-sample scores do not average to the value (corpus BLEU, macro F1) keep
  the single-draw test, with a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from llmbench.errors import UserError
from llmbench.report.compare import Comparison, Pair
from llmbench.report.paired import PairedValue, rebuild_metric, sample_score
from llmbench.store import ResultStore, RunInfo, SampleRecord

#: Resamples per chunk of the bootstrap over samples (bounds memory on large tasks).
_CHUNK = 100


def repeat_of(run: RunInfo) -> dict[str, Any] | None:
    """The repeat a run is (its stored task fingerprint), or None for an ordinary run."""
    task = run.run_config.task
    found = task.get("repeat") if isinstance(task, dict) else None
    return found if isinstance(found, dict) else None


def group(runs: Sequence[RunInfo]) -> dict[str, tuple[RunInfo, list[RunInfo]]]:
    """Clean run id -> (clean run, its repeat runs): repeats join the clean run of their batch."""
    clean_by = {(r.batch_id, r.model, r.task, r.task_fingerprint): r for r in runs if repeat_of(r) is None}
    out: dict[str, tuple[RunInfo, list[RunInfo]]] = {}
    for r in sorted(runs, key=lambda r: (r.created_at, r.id)):
        info = repeat_of(r)
        if info is None or r.status != "complete":
            continue
        clean = clean_by.get((r.batch_id, r.model, str(info.get("clean_task")), str(info.get("clean_fingerprint"))))
        if clean is not None and clean.status == "complete":
            out.setdefault(clean.id, (clean, []))[1].append(r)
    return out


@dataclass
class NoiseFloor:
    task: str
    model: str
    clean_run: str
    metric: str
    value: str
    scores: list[float]
    mean: float
    #: Standard deviation of the score between repeats (ddof 1).
    sd: float
    #: Share of samples whose answer is not the same in every repeat.
    unstable: float
    n: int
    repeat_runs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def measure(store: ResultStore, clean: RunInfo, reps: Sequence[RunInfo]) -> NoiseFloor | None:
    """The between-repeat variance of ``clean``'s primary value over it and its repeats."""
    runs = [clean, *sorted(reps, key=lambda r: r.task)]
    scores = []
    for r in runs:
        stored = next((m for m in store.metrics(r.id) if m.value.name == clean.primary_metric), None)
        if stored is None:
            return None
        scores.append(float(stored.value.value))
    answers: dict[str, set[str | None]] = {}
    for r in runs:
        for s in store.samples(r.id):
            answers.setdefault(s.sample_id, set()).add(s.prediction)
    unstable = sum(1 for a in answers.values() if len(a) > 1) / len(answers) if answers else 0.0
    sd = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
    metric = next(m.metric for m in store.metrics(clean.id) if m.value.name == clean.primary_metric)
    return NoiseFloor(task=clean.task, model=clean.model, clean_run=clean.id, metric=metric,
                      value=clean.primary_metric, scores=scores, mean=float(np.mean(scores)), sd=sd,
                      unstable=unstable, n=len(answers), repeat_runs=[r.id for r in runs[1:]])


def for_runs(store: ResultStore, runs: Sequence[RunInfo]) -> list[NoiseFloor]:
    """The noise floor of every clean run among ``runs`` (or whose repeat is among them)."""
    ids = {r.id for r in runs}
    found = [measure(store, clean, reps) for clean, reps in group(store.runs()).values()
             if clean.id in ids or any(r.id in ids for r in reps)]
    return sorted((f for f in found if f is not None), key=lambda f: (f.task, f.model))


def repeat_value(metric: str, name: str, higher_is_better: bool, means_a: dict[str, float],
                 means_b: dict[str, float], *, n_resamples: int, seed: int, note: str) -> PairedValue:
    """B - A on the per-sample means over repeats: point difference, percentile 95% CI and the
    two-sided p of a paired bootstrap over samples (ties count against significance, as in
    ``metrics.paired_bootstrap``)."""
    ids = sorted(means_a.keys() & means_b.keys())
    a = np.array([means_a[i] for i in ids], dtype=np.float64)
    b = np.array([means_b[i] for i in ids], dtype=np.float64)
    diff = b - a
    delta = float(diff.mean()) if ids else 0.0
    out = PairedValue(metric=metric, name=name, higher_is_better=higher_is_better, n=len(ids),
                      a=float(a.mean()) if ids else math.nan, b=float(b.mean()) if ids else math.nan,
                      delta=delta, test="paired-bootstrap (means over repeats)", note=note)
    if not ids or n_resamples <= 0:
        out.test, out.note = "none", f"{note}; resampling is off (--resamples 0)" if ids else note
        return out
    rng = np.random.default_rng(seed)
    deltas = np.concatenate([diff[rng.integers(0, len(ids), size=(min(_CHUNK, n_resamples - k), len(ids)))]
                             .mean(axis=1) for k in range(0, n_resamples, _CHUNK)])
    out.ci_low, out.ci_high = (float(x) for x in np.percentile(deltas, [2.5, 97.5]))
    if delta == 0.0:
        out.p = 1.0
    else:
        other = deltas <= 0.0 if delta > 0.0 else deltas >= 0.0
        out.p = min(1.0, 2.0 * float(other.mean()))
    return out


def _means(metric: Any, value: str, metric_name: str, runs: Sequence[list[SampleRecord]]) -> dict[str, float] | None:
    """Each sample's mean score over the runs that scored it; None when a score is undefined."""
    sums: dict[str, list[float]] = {}
    for samples in runs:
        for s in samples:
            if metric_name in s.stats:
                score = sample_score(metric, value, s.stats[metric_name])
                if score is None:
                    return None
                sums.setdefault(s.sample_id, []).append(score)
    return {k: sum(v) / len(v) for k, v in sums.items()}


def _averages_to_value(metric: Any, value: str, metric_name: str, samples: list[SampleRecord]) -> bool:
    """Whether the value is the mean of its per-sample scores (accuracy, exact match, ...)."""
    stats = [s.stats[metric_name] for s in samples if metric_name in s.stats]
    scores = [sample_score(metric, value, st) for st in stats]
    if not stats or any(x is None for x in scores):
        return False
    point = float(metric.score(stats)[value][0])
    return math.isclose(point, float(np.mean([x for x in scores if x is not None])), rel_tol=1e-9, abs_tol=1e-12)


def _averaged(store: ResultStore, pair: Pair, reps_a: list[RunInfo], reps_b: list[RunInfo], *,
              n_resamples: int, seed: int) -> Pair:
    samples_a = [store.samples(r.id) for r in (pair.a, *reps_a)]
    samples_b = [store.samples(r.id) for r in (pair.b, *reps_b)]
    args = {m.metric: m.metric_args for m in store.metrics(pair.a.id)}
    values = []
    for v in pair.values:
        try:
            metric = rebuild_metric(pair.a, v.metric, args.get(v.metric, {}))
        except UserError:
            values.append(v)
            continue
        if not _averages_to_value(metric, v.name, v.metric, samples_a[0]):
            values.append(replace(v, note=(v.note + "; " if v.note else "") + "single draw: its per-sample scores "
                                  "do not average to it, so repeats are not pooled"))
            continue
        ma, mb = _means(metric, v.name, v.metric, samples_a), _means(metric, v.name, v.metric, samples_b)
        if ma is None or mb is None:
            values.append(v)
            continue
        note = f"mean over {len(samples_a)} (A) and {len(samples_b)} (B) draws per sample (--repeats)"
        values.append(repeat_value(v.metric, v.name, v.higher_is_better, ma, mb, n_resamples=n_resamples,
                                   seed=seed, note=note))
    return replace(pair, values=values)


def average_repeats(store: ResultStore, cmp: Comparison, *, n_resamples: int = 1000, seed: int = 0) -> Comparison:
    """``cmp`` with every clean pair that has repeats tested on the per-sample means over its draws,
    and the repeat runs themselves no longer paired, gated or counted as missing (see the module
    docstring). Unchanged when neither side has repeats."""
    groups_a, groups_b = group(cmp.a.runs), group(cmp.b.runs)
    if not groups_a and not groups_b:
        return cmp
    repeat_names = {r.task for r in (*cmp.a.runs, *cmp.b.runs) if repeat_of(r) is not None}
    pairs = []
    for pair in cmp.pairs:
        if pair.a.task in repeat_names or pair.b.task in repeat_names:
            continue
        reps_a = groups_a.get(pair.a.id, (pair.a, []))[1]
        reps_b = groups_b.get(pair.b.id, (pair.b, []))[1]
        pairs.append(_averaged(store, pair, reps_a, reps_b, n_resamples=n_resamples, seed=seed)
                     if reps_a or reps_b else pair)

    def keep(name: str) -> bool:
        return not any(name == t or name.endswith(f" on {t}") for t in repeat_names)

    return Comparison(a=cmp.a, b=cmp.b, pairs=pairs, only_a=[n for n in cmp.only_a if keep(n)],
                      only_b=[n for n in cmp.only_b if keep(n)], warnings=cmp.warnings)
