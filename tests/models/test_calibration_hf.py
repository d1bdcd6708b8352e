"""Calibration through a real classifier head: the stored NLL and Brier equal scikit-learn's on
the head's own softmax, computed here directly with transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import brier_score_loss, log_loss

from llmbench.models import load_adapter
from llmbench.runner import ModelEntry, RunConfig, evaluate
from llmbench.store import ResultStore
from llmbench.tasks import load_task
from llmbench.testing import build_tiny_bert_classifier

TEXTS = ["the movie was great", "a terrible film", "boring plot and bad acting", "wonderful acting",
         "the quick brown fox", "good morning", "what is the capital", "the lazy dog"]


def test_classifier_head_softmax_reaches_calibration(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = build_tiny_bert_classifier(tmp_path / "bert", seed=3)
    rows = [{"id": f"r{i}", "text": t, "label": ("negative", "positive")[i % 2]} for i, t in enumerate(TEXTS)]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "t.yaml").write_text("name: head\nkind: classification\ndataset: {path: rows.jsonl}\n"
                                     "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
                                     "scoring: [classify]\n")
    store = ResultStore(tmp_path / "db.sqlite")
    result = evaluate(load_task(str(tmp_path / "t.yaml")), load_adapter(f"hf:{model_dir}"),
                      ModelEntry(spec=f"hf:{model_dir}"), RunConfig(n_resamples=0), store=store, cache=None)
    values = {m.value.name: m.value.value for m in store.metrics(result.run_id)}

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        probs = torch.cat([model(**tok(t, return_tensors="pt")).logits.softmax(-1) for t in TEXTS]).double().numpy()
    probs /= probs.sum(axis=1, keepdims=True)  # float32 softmax rows, summed again in float64
    gold = [r["label"] for r in rows]
    assert values["nll"] == pytest.approx(log_loss(gold, probs, labels=["negative", "positive"]), rel=1e-4)
    assert values["brier"] == pytest.approx(brier_score_loss(gold, probs[:, 1], pos_label="positive"), rel=1e-4)
