"""`llmbench run` says what it did not compute (calibration under generation) and prints the
primary metric per slice with the best-worst gap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TASK = ("name: cli_slices\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
        "scoring: [loglikelihood, generate]\nslice_by: topic\n")


def llmbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "300", "NO_COLOR": "1", "HF_HUB_OFFLINE": "1"})


def test_run_prints_slices_and_what_was_not_computed(tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "text": f"text {i}", "label": ("negative", "positive")[i % 2],
             "topic": ("a", "b")[i % 3 == 0]} for i in range(30)]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "task.yaml").write_text(TASK)
    scored = llmbench("run", "-m", "baseline:random", "-t", "task.yaml", "--store", "db", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    line = next(ln for ln in scored.stdout.splitlines() if "accuracy by topic:" in ln)
    assert "a " in line and "(n=20)" in line and "(n=10)" in line and "gap " in line
    assert "not computed" not in scored.stdout
    generated = llmbench("run", "-m", "baseline:copy", "-t", "task.yaml", "--store", "db", cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    assert "calibration not computed: scoring by generate gives no label probabilities" in generated.stdout
