"""accuracy's point value is a plain mean of 0/1 correctness: the same float as scikit-learn's
``accuracy_score`` on the same rows, and a run that only asks for accuracy never imports
scikit-learn (its ~0.9 s import was a fifth of a short run's wall time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from llmbench.metrics import get_metric

LABELS = ["negative", "neutral", "positive", "mixed"]


@pytest.mark.parametrize("seed", range(20))
def test_accuracy_point_value_equals_sklearn_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    gold = [LABELS[i] for i in rng.integers(0, 4, size=n)]
    # right ~p of the time, some answers unparseable ("") or not a label at all
    p = rng.random()
    preds = [g if rng.random() < p else str(rng.choice([*LABELS, "", "maybe"])) for g in gold]
    metric = get_metric("accuracy")
    stats = [metric.sample_stats(prediction=pr, references=[g]) for pr, g in zip(preds, gold, strict=True)]
    got = float(metric.score(stats)["accuracy"][0])
    assert got == accuracy_score(gold, preds)  # exactly, not approximately
    assert got == metric.aggregate(stats, n_resamples=0)[0].value


def test_accuracy_with_several_references_counts_any_match() -> None:
    metric = get_metric("accuracy")
    stats = [metric.sample_stats(prediction=p, references=r) for p, r in
             [("a", ["b", "a"]), ("c", ["a", "b"]), ("b", ["b"]), ("", ["a"])]]
    assert float(metric.score(stats)["accuracy"][0]) == 0.5


_PROBE = """
import atexit, sys
def _report():
    loaded = sorted(m for m in sys.modules if m == "sklearn" or m.startswith("sklearn."))
    sys.stderr.write("SKLEARN_MODULES=" + str(len(loaded)) + "\\n")
atexit.register(_report)
from llmbench.cli.main import entry
sys.argv = ["llmbench", *sys.argv[1:]]
entry()
"""


def _run(tmp_path: Path, model: Path, metrics: list[str], primary: str) -> int:
    rows = [{"id": f"r{i}", "text": f"review {i}", "label": ["negative", "positive"][i % 2]} for i in range(6)]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "task.yaml").write_text(
        "name: acc_only\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
        "prompt: {template: '{{ input }}', target_template: ' {{ target }}'}\n"
        f"scoring: [loglikelihood]\nmetrics: {json.dumps(metrics)}\nprimary_metric: {primary}\n")
    env = {**os.environ, "LLMBENCH_CACHE": str(tmp_path / "cache"), "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, "run", "-m", f"hf:{model}", "-t", "task.yaml", "--store", "db.sqlite",
         "--no-cache"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("SKLEARN_MODULES="))
    return int(line.split("=", 1)[1])


def test_a_run_scoring_only_accuracy_does_not_import_sklearn(tmp_path: Path, tiny_gpt2: Path) -> None:
    assert _run(tmp_path, tiny_gpt2, ["accuracy"], "accuracy") == 0


def test_the_probe_sees_sklearn_when_a_metric_needs_it(tmp_path: Path, tiny_gpt2: Path) -> None:
    """The control: f1 is scikit-learn's, so the same probe must report it loaded."""
    assert _run(tmp_path, tiny_gpt2, ["f1", "accuracy"], "f1_macro") > 0
