"""The results store: atomic run completion, reading back, JSON export."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from llmbench.store import ResultStore, RunInfo, SampleRecord, StoredMetric, now_iso
from llmbench.types import MetricValue


def info(run_id: str) -> RunInfo:
    return RunInfo(id=run_id, batch_id="b1", created_at=now_iso(), finished_at=None, status="running",
                   model="m", model_kind="local", model_identity={"backend": "hf"}, task="t",
                   task_kind="qa", task_version=1, task_fingerprint="f", scoring_mode="generate",
                   scoring_method="greedy", primary_metric="f1", config={}, environment={}, tags=["nightly"])


def test_interrupted_run_stays_running_and_finish_is_atomic(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.db")
    store.begin_run(info("r1"))
    assert store.run("r1").status == "running" and store.samples("r1") == []
    rec = SampleRecord(idx=0, sample_id="a", input="x", prompt="p", prediction="y", references=["y"],
                       stats={"squad": {"f1": 1.0}})
    metric = StoredMetric(value=MetricValue(name="f1", value=1.0, ci_low=1.0, ci_high=1.0, n=1), metric="squad")
    store.finish_run("r1", status="complete", samples=[rec], metrics=[metric],
                     counts={"n_samples": 1, "n_errors": 0, "cache_hits": 0, "cache_misses": 1, "usage": {}})
    again = ResultStore(tmp_path / "r.db")
    assert again.run("r1").status == "complete" and again.run("r1").finished_at
    assert again.samples("r1") == [rec]
    assert again.metrics("r1")[0].value.value == 1.0
    assert again.runs(tag="nightly")[0].id == "r1" and again.runs(tag="other") == []
    export = again.export_json("r1")
    assert export["run"]["id"] == "r1" and export["samples"][0]["prediction"] == "y"


def test_failed_finish_leaves_no_partial_rows(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.db")
    store.begin_run(info("r2"))
    rec = SampleRecord(idx=0, sample_id="a", input="x", prompt="p", prediction="y", references=["y"], stats={})
    bad = StoredMetric(value=MetricValue(name="f1", value=1.0, n=1), metric="squad")
    with pytest.raises(sa.exc.IntegrityError):  # the same sample index twice: fails mid-transaction
        store.finish_run("r2", status="complete", samples=[rec, rec], metrics=[bad],
                         counts={"n_samples": 2, "n_errors": 0, "cache_hits": 0, "cache_misses": 2, "usage": {}})
    assert store.run("r2").status == "running"
    assert store.samples("r2") == [] and store.metrics("r2") == []


def test_streamed_rows_belong_to_a_running_run_until_it_finishes(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.db")
    store.begin_run(info("r3"))
    recs = [SampleRecord(idx=i, sample_id=f"s{i}", input="x", prompt="p", prediction="y", references=["y"],
                         stats={"squad": {"f1": 1.0}}) for i in range(3)]
    store.add_samples("r3", recs[:2])
    store.add_samples("r3", [])
    assert store.run("r3").status == "running" and store.samples("r3") == recs[:2]
    metric = StoredMetric(value=MetricValue(name="f1", value=1.0, n=3), metric="squad")
    store.finish_run("r3", status="complete", samples=recs[2:], metrics=[metric],
                     counts={"n_samples": 3, "n_errors": 0, "cache_hits": 0, "cache_misses": 3, "usage": {}})
    assert store.run("r3").status == "complete" and store.samples("r3") == recs
    assert [m.value.value for m in store.metrics("r3")] == [1.0]
