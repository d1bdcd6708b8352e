"""Calibration and slices through the real runner and store: label probabilities from each
scoring mode reach the metric, a generation-scored run says calibration was not computed, and
every metric is stored per slice with the best-worst gap."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from llmbench.models.base import ModelAdapter
from llmbench.runner import ModelEntry, RunConfig, evaluate
from llmbench.store import ResultStore
from llmbench.tasks import TaskError, load_task
from llmbench.types import Request, RequestKind, Response

LABELS = ["negative", "positive"]
N = 24


def p_positive(i: int) -> float:
    return 0.05 + 0.9 * ((i * 5) % N) / (N - 1)


class ProbAdapter(ModelAdapter):
    """Answers every kind from a fixed P(positive) per sample."""

    name = "prob"
    supports: frozenset[RequestKind] = frozenset({"classify", "loglikelihood", "generate"})

    def identity(self) -> dict[str, str]:
        return {"backend": "prob"}

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for j, r in enumerate(requests):
            p = p_positive(int(r.sample_id[1:]))
            logs = (math.log(1 - p) - 3.0, math.log(p) - 3.0)  # unnormalised log-likelihoods
            if r.kind == "classify":
                yield j, Response(label_scores=dict(zip(LABELS, logs, strict=True)), latency_s=0.01)
            elif r.kind == "loglikelihood":
                yield j, Response(logprobs=logs, latency_s=0.01)
            else:
                yield j, Response(text=LABELS[p > 0.5], latency_s=0.01)


def write_task(tmp: Path, extra: str = "slice_by: meta.topic\n") -> Path:
    rows = [{"id": f"s{i:02d}", "text": f"t{i}", "label": LABELS[i % 3 != 0],
             "meta": {"topic": ("sports", "music")[i % 2]}} for i in range(N)]
    (tmp / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp / "t.yaml").write_text("name: cal\nkind: classification\ndataset: {path: rows.jsonl}\n"
                                "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
                                "scoring: [classify, loglikelihood, generate]\n" + extra)
    return tmp / "t.yaml"


@pytest.mark.parametrize("mode", ["classify", "loglikelihood"])
def test_probabilities_reach_calibration(tmp_path: Path, mode: RequestKind) -> None:
    store = ResultStore(tmp_path / "db.sqlite")
    task = load_task(str(write_task(tmp_path)))
    result = evaluate(task, ProbAdapter(), ModelEntry(spec="prob:x", scoring=mode), RunConfig(n_resamples=100),
                      store=store, cache=None)
    values = {m.value.name: m.value for m in store.metrics(result.run_id)}
    p = np.array([p_positive(i) for i in range(N)])
    y = [LABELS[i % 3 != 0] for i in range(N)]
    assert values["brier"].value == pytest.approx(brier_score_loss(y, p, pos_label="positive"))
    assert values["nll"].value == pytest.approx(log_loss(y, np.c_[1 - p, p], labels=LABELS))
    assert values["ece"].higher_is_better is False and values["ece"].ci_low is not None
    assert store.run(result.run_id).run_config.not_computed == {}
    sample = store.samples(result.run_id)[0]
    assert sample.stats["calibration"]["probs"] == pytest.approx([1 - p[0], p[0]])
    assert sample.slice == "sports" and not [k for k in sample.stats if k.startswith("_")]  # metric stats only


def test_generation_has_no_calibration_and_says_so(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "db.sqlite")
    task = load_task(str(write_task(tmp_path)))
    result = evaluate(task, ProbAdapter(), ModelEntry(spec="prob:x", scoring="generate"), RunConfig(n_resamples=0),
                      store=store, cache=None)
    names = {m.value.name for m in store.metrics(result.run_id)}
    assert "accuracy" in names and not names & {"ece", "brier", "nll"}
    assert store.run(result.run_id).run_config.not_computed == {
        "calibration": "scoring by generate gives no label probabilities"}


def test_every_metric_is_stored_per_slice(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "db.sqlite")
    task = load_task(str(write_task(tmp_path)))
    result = evaluate(task, ProbAdapter(), ModelEntry(spec="prob:x", scoring="classify"), RunConfig(n_resamples=50),
                      store=store, cache=None)
    slices = store.run(result.run_id).run_usage.slices
    assert slices["by"] == "meta.topic" and slices["counts"] == {"music": 12, "sports": 12}
    assert set(slices["metrics"]) == {"accuracy", "f1", "calibration"}
    acc = slices["metrics"]["accuracy"]["accuracy"]
    for topic, parity in (("sports", 0), ("music", 1)):
        right = [LABELS[p_positive(i) > 0.5] == LABELS[i % 3 != 0] for i in range(N) if i % 2 == parity]
        assert acc["slices"][topic]["value"] == pytest.approx(np.mean(right))
    gap = acc["gap"]
    assert gap["value"] == pytest.approx(abs(acc["slices"]["sports"]["value"] - acc["slices"]["music"]["value"]))
    assert gap["ci_low"] is not None and gap["ci_low"] <= gap["ci_high"]
    assert slices["metrics"]["calibration"]["nll"]["higher_is_better"] is False


def test_slice_by_is_checked_before_any_call_and_is_not_part_of_the_fingerprint(tmp_path: Path) -> None:
    plain = load_task(str(write_task(tmp_path, extra="")))
    sliced = load_task(str(write_task(tmp_path)))
    assert plain.fingerprint() == sliced.fingerprint()  # grouping changes no request
    bad = load_task(str(write_task(tmp_path, extra="slice_by: topic\n")))
    adapter = ProbAdapter()
    store = ResultStore(tmp_path / "db.sqlite")
    with pytest.raises(TaskError, match="slice_by = 'topic' is not in row 0"):
        evaluate(bad, adapter, ModelEntry(spec="prob:x"), RunConfig(), store=store, cache=None)
    assert store.runs() == []
