"""Reports are rebuilt from the store alone: no model folder, no response cache, same output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from report_fixtures import classifier, write_cls_task

from llmbench.cache import ResponseCache
from llmbench.models.hf.adapter import HFAdapter, HFConfig
from llmbench.runner import ModelEntry, RunConfig, evaluate
from llmbench.store import ResultStore
from llmbench.tasks import load_task
from llmbench.testing import build_tiny_bert_classifier


def _outputs(invoke, db: Path, out: Path) -> tuple[dict[str, Any], dict[str, Any], str]:  # type: ignore[no-untyped-def]
    report = invoke("report", "--store", str(db), "--format", "json", "--out", str(out), "--resamples", "100")
    assert report.exit_code == 0, report.output
    board = json.loads((out / "leaderboard.json").read_text())
    board.pop("generated_at")
    markdown = invoke("report", "--store", str(db), "--format", "markdown", "--out", "-", "--resamples", "100")
    assert markdown.exit_code == 0, markdown.output
    gate = invoke("gate", "--store", str(db), "--baseline", "prev:nightly", "--candidate", "last:nightly",
                  "--resamples", "100", "--json")
    assert gate.exit_code in (0, 1, 2), gate.output
    return board, json.loads(gate.stdout), markdown.stdout.split("\n", 2)[-1]  # first lines carry the time


def test_leaderboard_and_gate_without_model_folders_or_cache(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    models, cache_dir = tmp_path / "models", tmp_path / "cache"
    tuned = build_tiny_bert_classifier(models / "tuned")
    (tuned / "llmbench_finetune.json").write_text(json.dumps({"base_model": "org/tiny-bert", "task": "sentiment_mini"}))
    store, task = ResultStore(tmp_path / "db.sqlite"), load_task(str(write_cls_task(tmp_path / "t", n=16,
                                                                                 metrics=["accuracy", "f1"])))
    cache = ResponseCache(cache_dir / "responses.sqlite")
    for night in ("n1", "n2"):
        config = RunConfig(n_resamples=100, tags=("nightly",))
        hf = HFAdapter(HFConfig(path=str(tuned)))
        try:
            evaluate(task, hf, ModelEntry(spec=f"hf:{tuned}", label="tuned"), config, store=store, cache=cache,
                     batch_id=night)
        finally:
            hf.close()
        evaluate(task, classifier("s", {"s01"} if night == "n1" else {"s02"}), ModelEntry(spec="hf:/s", label="s"),
                 config, store=store, cache=None, batch_id=night)
    cache.close()
    before = _outputs(invoke, tmp_path / "db.sqlite", tmp_path / "before")
    row = next(r for r in before[0]["rows"] if r["model"] == "tuned")
    assert row["kind"] == "fine-tuned" and row["finetuned_from"] == "org/tiny-bert"
    assert row["detail"] == "BertForSequenceClassification · float32 · tuned on sentiment_mini"
    assert before[1]["decision"] in ("pass", "cannot_decide", "regression")

    shutil.rmtree(models)
    shutil.rmtree(cache_dir)
    after = _outputs(invoke, tmp_path / "db.sqlite", tmp_path / "after")
    assert after == before
