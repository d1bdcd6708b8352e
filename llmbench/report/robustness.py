"""Robustness: how a model's answers hold up when its input is perturbed (``tasks.perturb``).

A perturbed run (task ``<clean>~<perturbation>``) stores, in its task fingerprint, the clean
task's name and fingerprint. It is paired with the newest complete clean run of the same model
on that clean task (same fingerprint and scoring mode) by sample id, and reported per
perturbation:

* **score** of the perturbed run and its **drop** from the clean score (clean - perturbed for a
  higher-is-better value), with the paired 95% CI and p of the difference (the same
  ``report.paired.compare_value`` that ``compare`` and the gate use);
* **invariance**: the share of shared samples whose answer (stored prediction) did not change;
* **worst case** (HELM's robustness), over all perturbations of that clean run: the mean over the
  samples every run scored of the *lowest* per-sample score among the clean run and every
  perturbed run — for a right/wrong value, the share of samples right under every perturbation.
  Values without a per-sample score (corpus BLEU) have no worst case (None).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llmbench.errors import UserError
from llmbench.report.paired import align, compare_value, rebuild_metric, sample_score
from llmbench.store import ResultStore, RunInfo, SampleRecord


@dataclass
class PerturbationResult:
    perturbation: str
    run_id: str
    n: int
    score: float
    #: clean - perturbed, direction-aware (positive: the perturbation hurt).
    drop: float
    #: Paired 95% CI and p of perturbed - clean (as ``compare`` prints B - A).
    ci_low: float | None
    ci_high: float | None
    p: float | None
    invariance: float


@dataclass
class Robustness:
    task: str
    model: str
    clean_run: str
    metric: str
    value: str
    higher_is_better: bool
    clean_score: float
    perturbations: list[PerturbationResult] = field(default_factory=list)
    #: HELM's worst-case score over the clean run and every perturbation; None where undefined.
    worst_case: float | None = None
    n_worst: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def perturbation_of(run: RunInfo) -> dict[str, Any] | None:
    """The perturbation a run was made under (its stored task fingerprint), or None."""
    task = run.run_config.task
    found = task.get("perturbation") if isinstance(task, dict) else None
    return found if isinstance(found, dict) else None


def _clean_for(pert: RunInfo, runs: Sequence[RunInfo]) -> RunInfo | None:
    info = perturbation_of(pert) or {}
    same = [r for r in runs if r.status == "complete" and r.model == pert.model
            and r.task == info.get("clean_task") and r.task_fingerprint == info.get("clean_fingerprint")
            and r.scoring_mode == pert.scoring_mode]
    # The clean run of the same batch (the same night) first, else the newest one.
    return max(same, key=lambda r: (r.batch_id == pert.batch_id, r.created_at, r.id)) if same else None


def group(runs: Sequence[RunInfo]) -> dict[str, tuple[RunInfo, list[RunInfo]]]:
    """Clean run id -> (clean run, its newest perturbed run per perturbation)."""
    latest: dict[tuple[str, str], RunInfo] = {}
    perturbed = [r for r in runs if r.status == "complete" and perturbation_of(r)]
    for r in sorted(perturbed, key=lambda r: (r.created_at, r.id)):
        latest[(r.model, r.task)] = r
    out: dict[str, tuple[RunInfo, list[RunInfo]]] = {}
    for pert in latest.values():
        clean = _clean_for(pert, runs)
        if clean is not None:
            out.setdefault(clean.id, (clean, []))[1].append(pert)
    return out


def _label(run: RunInfo) -> str:
    return run.task.split("~", 1)[1] if "~" in run.task else run.task


def measure(store: ResultStore, clean: RunInfo, perturbed: Iterable[RunInfo], *, n_resamples: int = 1000,
            seed: int = 0) -> Robustness | None:
    """The robustness of one clean run under its perturbed runs; None when its primary value
    cannot be rebuilt (unknown stats version, a code metric nobody allowed)."""
    stored = next((m for m in store.metrics(clean.id) if m.value.name == clean.primary_metric), None)
    if stored is None:
        return None
    try:
        metric = rebuild_metric(clean, stored.metric, stored.metric_args)
    except UserError:
        return None
    hib = stored.value.higher_is_better
    out = Robustness(task=clean.task, model=clean.model, clean_run=clean.id, metric=stored.metric,
                     value=stored.value.name, higher_is_better=hib, clean_score=stored.value.value)
    clean_samples = store.samples(clean.id)
    per_sample: list[dict[str, float | None]] = [_scores(metric, stored.value.name, stored.metric, clean_samples)]
    for pert in sorted(perturbed, key=lambda r: r.task):
        samples = store.samples(pert.id)
        ids, sa, sb = align(clean_samples, samples, stored.metric)
        if not ids:
            continue
        v = compare_value(metric, stored.value.name, hib, ids, sa, sb, n_resamples=n_resamples, seed=seed,
                          details=False)
        out.perturbations.append(PerturbationResult(
            perturbation=_label(pert), run_id=pert.id, n=v.n, score=v.b, drop=v.drop + 0.0, ci_low=v.ci_low,
            ci_high=v.ci_high, p=v.p, invariance=_invariance(clean_samples, samples, set(ids))))
        per_sample.append(_scores(metric, stored.value.name, stored.metric, samples))
    out.worst_case, out.n_worst = worst_case(per_sample, higher_is_better=hib)
    return out


def _scores(metric: Any, value: str, metric_name: str, samples: Sequence[SampleRecord]) -> dict[str, float | None]:
    return {s.sample_id: sample_score(metric, value, s.stats[metric_name]) for s in samples
            if metric_name in s.stats}


def _invariance(clean: Sequence[SampleRecord], perturbed: Sequence[SampleRecord], ids: set[str]) -> float:
    before = {s.sample_id: s.prediction for s in clean if s.sample_id in ids}
    same = sum(1 for s in perturbed if s.sample_id in before and s.prediction == before[s.sample_id])
    return same / len(before) if before else 0.0


def worst_case(per_run: Sequence[dict[str, float | None]], *,
               higher_is_better: bool = True) -> tuple[float | None, int]:
    """Mean over the samples every run scored of the worst per-sample score among the runs
    (the lowest, or the highest for a lower-is-better value), and how many samples that is."""
    if len(per_run) < 2:
        return None, 0
    shared = set(per_run[0]).intersection(*per_run[1:])
    worst = []
    for sid in sorted(shared):
        scores = [run[sid] for run in per_run]
        if any(s is None for s in scores):
            return None, 0
        values = [float(s) for s in scores if s is not None]
        worst.append(min(values) if higher_is_better else max(values))
    return (sum(worst) / len(worst), len(worst)) if worst else (None, 0)


def find(store: ResultStore, runs: Sequence[RunInfo] | None = None, *, n_resamples: int = 1000,
         seed: int = 0) -> list[Robustness]:
    """Every clean run with perturbed runs among ``runs`` (default: the whole store)."""
    pool = store.runs() if runs is None else list(runs)
    found = [measure(store, clean, perts, n_resamples=n_resamples, seed=seed)
             for clean, perts in group(pool).values()]
    return sorted((r for r in found if r is not None), key=lambda r: (r.task, r.model))


def for_runs(store: ResultStore, runs: Sequence[RunInfo], *, n_resamples: int = 1000,
             seed: int = 0) -> list[Robustness]:
    """The robustness of every clean run among ``runs``, or whose perturbed run is among them."""
    ids = {r.id for r in runs}
    wanted = [(clean, perts) for clean, perts in group(store.runs()).values()
              if clean.id in ids or any(p.id in ids for p in perts)]
    found = [measure(store, clean, perts, n_resamples=n_resamples, seed=seed) for clean, perts in wanted]
    return sorted((r for r in found if r is not None), key=lambda r: (r.task, r.model))


def unit_worst_case(r: Robustness) -> float | None:
    """The worst case on the unit scale (percent-scale values / 100), as ``select`` compares it."""
    from llmbench.metrics.registry import declared_scale

    if r.worst_case is None:
        return None
    return r.worst_case / 100.0 if declared_scale(r.metric) == "percent" else r.worst_case


def exclude_unrobust(store: ResultStore, candidates: Sequence[Any], minimum: float, higher_is_better: bool) -> None:
    """``select --min-robustness``: exclude each candidate whose worst-case score (unit scale) on
    any of its tasks misses ``minimum``, or that has no perturbed run to measure it; record the
    worst case per task on the candidate (``Candidate.worst_case``)."""
    ids = {t.run_id for c in candidates for t in c.tasks}
    found = {r.clean_run: r for r in for_runs(store, [r for r in store.runs() if r.id in ids], n_resamples=0)}
    for cand in candidates:
        if cand.excluded:
            continue
        for t in cand.tasks:
            r = found.get(t.run_id)
            worst = None if r is None else unit_worst_case(r)
            cand.worst_case[t.task] = worst
            if r is None or worst is None:
                cand.excluded.append(f"{t.task}: no perturbed run with a per-sample worst case (run it with "
                                     "--perturb); --min-robustness needs one")
            elif (worst < minimum) if higher_is_better else (worst > minimum):
                cand.excluded.append(f"{t.task}: worst-case score {worst:.4g} under "
                                     f"{', '.join(p.perturbation for p in r.perturbations)} "
                                     f"{'below' if higher_is_better else 'above'} the required {minimum:g}")
