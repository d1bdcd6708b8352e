"""Run-vs-run comparison: pair the runs of two selections, test every shared metric value.

Pairing rule: when each side holds at most one run per task (two single runs, or two
batches of one model), runs pair by task — that is how two *models* are compared. When a
side holds several models per task (a nightly batch), runs pair by (model, task) — that is
how two *nights* are compared. Anything that makes a pair's numbers incomparable (task
version, task/prompt fingerprint, scoring mode, metric arguments) is recorded on the pair as
a mismatch; the gate refuses mismatched pairs, ``compare`` shows them loudly. So is another
model behind the same label (``model_change``: its stored identity differs). Both checks are
``report.comparable``'s, the one policy the leaderboard applies too.

A value that cannot be tested (no shared samples, stats this code cannot read, resampling
off for a value without an exact test) is kept with ``p = None`` and the reason in its note;
only user-facing ``MetricError``s become such notes — anything else is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from llmbench.errors import UserError
from llmbench.report.comparable import mismatches, model_change, selection_mismatches
from llmbench.report.decision import TaskDecision, decide_all
from llmbench.report.errors import ReportError
from llmbench.report.paired import PairedValue, align, compare_value, rebuild_metric, unpaired_value
from llmbench.report.refs import Selection, status_word
from llmbench.store import ResultStore, RunInfo, SampleRecord, StoredMetric

#: Flipped / dropped samples whose texts a pair keeps per list (the console prints as many).
MAX_TEXTS = 10


@dataclass(frozen=True)
class SampleText:
    """What a flipped sample was: its input, reference and both runs' predictions (and errors)."""

    input: str
    reference: str
    a: str | None
    b: str | None

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "reference": self.reference, "prediction_a": self.a, "prediction_b": self.b}


def _texts(values: list[PairedValue], samples_a: list[SampleRecord],
           samples_b: list[SampleRecord]) -> dict[str, SampleText]:
    wanted: set[str] = set()
    for v in values:
        wanted |= set((v.right_to_wrong or [])[:MAX_TEXTS]) | set((v.wrong_to_right or [])[:MAX_TEXTS])
        wanted |= {sid for sid, _, _ in v.largest_drops[:MAX_TEXTS]}
    by_b = {s.sample_id: s for s in samples_b if s.sample_id in wanted}
    out = {}
    for s in samples_a:
        if s.sample_id in wanted and s.sample_id in by_b:
            other = by_b[s.sample_id]
            out[s.sample_id] = SampleText(input=s.input, reference=" | ".join(s.references),
                                          a=s.prediction if s.error is None else f"(error) {s.error}",
                                          b=other.prediction if other.error is None else f"(error) {other.error}")
    return out


@dataclass
class Pair:
    """Two runs of the same task (A = baseline side, B = candidate side) and their values."""

    task: str
    a: RunInfo
    b: RunInfo
    mismatches: list[str] = field(default_factory=list)
    values: list[PairedValue] = field(default_factory=list)
    n_shared: int = 0
    notes: list[str] = field(default_factory=list)
    model_change: str | None = None
    #: The texts of the samples the values list (flips, largest drops), by sample id.
    texts: dict[str, SampleText] = field(default_factory=dict)
    #: Two models: how the systems under test differ (scoring mode, prompt) — shown, not a mismatch.
    system: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        models = self.a.model if self.a.model == self.b.model else f"{self.a.model} → {self.b.model}"
        return f"{self.task} · {models}"

    def to_json(self) -> dict[str, Any]:
        def run(r: RunInfo) -> dict[str, Any]:
            return {"id": r.id, "batch_id": r.batch_id, "model": r.model, "status": r.status,
                    "created_at": r.created_at, "task_version": r.task_version,
                    "task_fingerprint": r.task_fingerprint, "scoring_mode": r.scoring_mode,
                    "n_samples": r.n_samples, "n_errors": r.n_errors}

        return {"task": self.task, "a": run(self.a), "b": run(self.b), "n_shared": self.n_shared,
                "mismatches": self.mismatches, "model_change": self.model_change, "notes": self.notes,
                "system_differences": self.system,
                "samples": {k: t.to_json() for k, t in self.texts.items()},
                "values": [v.to_json() for v in self.values]}


@dataclass
class Comparison:
    a: Selection
    b: Selection
    pairs: list[Pair]
    only_a: list[str]
    only_b: list[str]
    warnings: list[str]
    #: Each paired task's shared decision (``report.decision``: the leaderboard's and select's).
    decisions: dict[str, TaskDecision] = field(default_factory=dict)

    def verdict_line(self, pair: Pair) -> str:
        """The task's best and both sides' standing, as the leaderboard and ``select`` state them."""
        d = self.decisions.get(pair.task)
        if d is None:
            return ""
        marks = []
        for run in (pair.a, pair.b):
            v = d.verdicts.get(run.model)
            if v is None or v.run.id != run.id:
                continue  # not the model's latest complete run: the decision is about another run
            word = "best" if v.best else v.baseline_label or ("≈ best" if v.tied else "")
            word = word or ("not comparable" if not v.comparable else "below the best")
            marks.append(f"{run.model}: {word}")
        return d.summary() + (f" · {'; '.join(marks)}" if marks else "")

    def to_json(self) -> dict[str, Any]:
        return {"a": {"ref": self.a.ref, "resolved": self.a.label}, "b": {"ref": self.b.ref, "resolved": self.b.label},
                "pairs": [p.to_json() for p in self.pairs], "only_in_a": self.only_a, "only_in_b": self.only_b,
                "warnings": self.warnings,
                "decisions": {p.task: self.verdict_line(p) for p in self.pairs if p.task in self.decisions}}


def _latest_per_key(runs: Iterable[RunInfo], by_model: bool) -> dict[tuple[str, str], RunInfo]:
    """Each side's newest run per key *whatever its status*: the gate must see an incomplete
    candidate to refuse it. Which run counts for a model's standing on a task is another rule,
    ``report.decision.latest_complete`` (the leaderboard's, select's and compare's decision line)."""
    out: dict[tuple[str, str], RunInfo] = {}
    for r in sorted(runs, key=lambda r: (r.created_at, r.id)):
        out[(r.model if by_model else "", r.task)] = r
    return out


def pair_runs(a: Selection, b: Selection) -> tuple[list[tuple[RunInfo, RunInfo]], list[str], list[str]]:
    """The (A, B) run pairs and the unmatched run descriptions on each side."""
    def one_per_task(sel: Selection) -> bool:
        tasks = [r.task for r in sel.runs]
        return len(tasks) == len(set(tasks))

    by_model = not (one_per_task(a) and one_per_task(b))
    left, right = _latest_per_key(a.runs, by_model), _latest_per_key(b.runs, by_model)
    pairs = [(left[k], right[k]) for k in sorted(left.keys() & right.keys(), key=lambda k: (k[1], k[0]))]
    name = (lambda r: f"{r.model} on {r.task}") if by_model else (lambda r: r.task)
    only_a = sorted(name(left[k]) for k in left.keys() - right.keys())
    only_b = sorted(name(right[k]) for k in right.keys() - left.keys())
    return pairs, only_a, only_b


def compare_pair(store: ResultStore, a: RunInfo, b: RunInfo, *, n_resamples: int = 1000, seed: int = 0) -> Pair:
    """Every metric value both runs report, tested on the samples both runs scored."""
    metrics_a, metrics_b = store.metrics(a.id), store.metrics(b.id)
    if a.model == b.model:  # one model over time: a changed scoring mode is a changed identity
        pair = Pair(task=a.task, a=a, b=b, mismatches=mismatches(a, b, metrics_a, metrics_b),
                    model_change=model_change(a, b))
    else:  # two models: the selection policy (scoring mode and prompt belong to the system)
        hard, system = selection_mismatches(a, b, metrics_a, metrics_b)
        pair = Pair(task=a.task, a=a, b=b, mismatches=hard, system=system)
    stored_b = {(m.metric, m.value.name): m for m in metrics_b}
    shared = [m for m in metrics_a if (m.metric, m.value.name) in stored_b]
    if not shared:
        pair.notes.append("the two runs report no metric value in common")
        return pair
    samples_a, samples_b = store.samples(a.id), store.samples(b.id)
    by_metric: dict[str, list[StoredMetric]] = {}
    for m in shared:
        by_metric.setdefault(m.metric, []).append(m)
    for metric_name, values in by_metric.items():
        pair.values += _compare_metric(pair, metric_name, values, stored_b, samples_a, samples_b,
                                       n_resamples=n_resamples, seed=seed)
    pair.texts = _texts(pair.values, samples_a, samples_b)
    return pair


def _compare_metric(pair: Pair, metric_name: str, values: list[StoredMetric],
                    stored_b: dict[tuple[str, str], StoredMetric], samples_a: list[SampleRecord],
                    samples_b: list[SampleRecord], *, n_resamples: int, seed: int) -> list[PairedValue]:
    ids, stats_a, stats_b = align(samples_a, samples_b, metric_name)
    pair.n_shared = max(pair.n_shared, len(ids))
    scored_a = sum(1 for s in samples_a if metric_name in s.stats)
    scored_b = sum(1 for s in samples_b if metric_name in s.stats)
    if ids and (len(ids) < scored_a or len(ids) < scored_b):
        pair.notes.append(f"{metric_name}: compared on the {len(ids)} samples both runs scored "
                          f"(A scored {scored_a}, B scored {scored_b})")
    metric = None
    problem = "no sample scored by both runs" if not ids else None
    if ids:
        try:
            metric = rebuild_metric(pair.a, metric_name, values[0].metric_args)
            rebuild_metric(pair.b, metric_name, stored_b[(values[0].metric, values[0].value.name)].metric_args)
        except UserError as err:  # unknown stats version, code metric nobody named, bad arguments
            metric, problem = None, f"cannot rebuild metric '{metric_name}' for a paired test: {err}"
    if problem:
        pair.notes.append(problem)
    out = []
    for m in values:
        hib = m.value.higher_is_better
        mb = stored_b[(m.metric, m.value.name)].value
        if metric is None:
            out.append(unpaired_value(metric_name, m.value.name, hib, len(ids), m.value.value, mb.value,
                                      problem or "untested"))
            continue
        out.append(compare_value(metric, m.value.name, hib, ids, stats_a, stats_b,
                                 n_resamples=n_resamples, seed=seed))
    return out


def compare(store: ResultStore, a: Selection, b: Selection, *, n_resamples: int = 1000, seed: int = 0,
            decide: bool = False, alpha: float = 0.05) -> Comparison:
    """Compare selection B (candidate) against A (baseline); with ``decide``, also each paired
    task's shared decision (the best model, the floor), as the leaderboard and ``select`` give it."""
    if n_resamples < 0:
        raise ReportError("--resamples must be >= 0")
    run_pairs, only_a, only_b = pair_runs(a, b)
    warnings = []
    for sel, side in ((a, "A"), (b, "B")):
        for r in sel.not_complete:
            warnings.append(f"{side} run {r.id} ({r.model} on {r.task}) is {status_word(r)}: "
                            f"{r.n_errors} of {r.n_samples} samples failed or it never finished — "
                            f"its numbers are not final")
    pairs = [compare_pair(store, ra, rb, n_resamples=n_resamples, seed=seed) for ra, rb in run_pairs]
    out = Comparison(a=a, b=b, pairs=pairs, only_a=only_a, only_b=only_b, warnings=warnings)
    if decide and pairs:
        found = decide_all(store.runs(), store.metrics, store.samples, tasks=sorted({p.task for p in pairs}),
                           alpha=alpha, n_resamples=n_resamples, seed=seed)
        out.decisions = {t: d for t, d in found.items() if not isinstance(d, str)}
    return out
