"""The CLI end to end: one-line errors with exit code 2, and a real run listed and shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROWS = [{"id": f"r{i}", "text": f"review {i}", "label": ["negative", "positive"][i % 2]} for i in range(8)]
TASK = "name: cli_demo\nkind: classification\ndataset: {path: rows.jsonl}\n" \
       "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"


def llmbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "LLMBENCH_CACHE": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "llmbench", *args], capture_output=True, text=True,
                          timeout=180, cwd=cwd, env=env)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "task.yaml").write_text(TASK)
    return tmp_path


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_unknown_metric(workdir: Path) -> None:
    (workdir / "task.yaml").write_text(TASK + "metrics: [acuracy]\n")
    line = one_line_error(llmbench("run", "-m", "baseline:majority", "-t", "task.yaml", "--store", "db", cwd=workdir))
    assert "acuracy" in line and "accuracy" in line


def test_missing_model_path(workdir: Path) -> None:
    line = one_line_error(llmbench("run", "-m", "hf:./no/such/model", "-t", "task.yaml", "--store", "db", cwd=workdir))
    assert "no/such/model" in line


def test_task_the_model_cannot_serve(workdir: Path) -> None:
    (workdir / "task.yaml").write_text(TASK + "scoring: [loglikelihood]\n")
    line = one_line_error(llmbench("run", "-m", "baseline:lead", "-t", "task.yaml", "--store", "db", cwd=workdir))
    assert "accepts scoring by loglikelihood but model 'baseline:lead' serves only generate" in line
    assert not (workdir / "db").exists() or "cli_demo" not in llmbench("runs", "--store", "db", cwd=workdir).stdout


def test_unknown_backend_and_run_id(workdir: Path) -> None:
    assert "unknown model backend 'nope'" in one_line_error(
        llmbench("run", "-m", "nope:x", "-t", "task.yaml", "--store", "db", cwd=workdir))
    assert "no results store at 'db'" in one_line_error(llmbench("show", "zzz", "--store", "db", cwd=workdir))
    assert not (workdir / "db").exists()  # a read command never creates a store
    assert llmbench("run", "-m", "baseline:majority", "-t", "task.yaml", "--store", "db", cwd=workdir).returncode == 0
    assert "no run" in one_line_error(llmbench("show", "zzz", "--store", "db", cwd=workdir))


def test_usage_errors_are_one_line(workdir: Path) -> None:
    assert "No such option: --nope" in one_line_error(llmbench("run", "--nope", cwd=workdir))
    assert "Missing argument" in one_line_error(llmbench("show", cwd=workdir))
    assert "--scoring 'foo' is not a mode" in one_line_error(
        llmbench("run", "-m", "baseline:majority", "-t", "task.yaml", "--scoring", "foo", cwd=workdir))


def test_forced_scoring_mode(workdir: Path) -> None:
    (workdir / "task.yaml").write_text(TASK + "scoring: [classify, loglikelihood, generate]\n")
    line = one_line_error(llmbench("run", "-m", "baseline:majority", "-t", "task.yaml", "--scoring", "generate",
                                   "--store", "db", cwd=workdir))
    assert "cannot score by generate" in line
    (workdir / "task.yaml").write_text(TASK + "scoring: [loglikelihood]\n")
    line = one_line_error(llmbench("run", "-m", "baseline:lead", "-t", "task.yaml", "--scoring", "generate",
                                   "--store", "db", cwd=workdir))
    assert "does not accept scoring by generate" in line


def test_forced_scoring_mode_is_used_and_stored(workdir: Path, tiny_gpt2: Path) -> None:
    (workdir / "task.yaml").write_text(TASK + "scoring: [loglikelihood, generate]\ngeneration: {max_new_tokens: 2}\n")
    base = ["run", "-m", f"hf:{tiny_gpt2}", "-t", "task.yaml", "--store", "db", "--resamples", "10"]
    assert llmbench(*base, cwd=workdir).returncode == 0
    forced = llmbench(*base, "--scoring", "generate", cwd=workdir)
    assert forced.returncode == 0, forced.stderr
    import csv
    import io

    listed = csv.DictReader(io.StringIO(llmbench("runs", "--store", "db", "--csv", cwd=workdir).stdout))
    modes = [row["scoring_mode"] for row in listed if row["task"] == "cli_demo"]
    assert sorted(modes) == ["generate", "loglikelihood"]


def test_run_runs_show(workdir: Path) -> None:
    run = llmbench("run", "-m", "baseline:majority", "-t", "task.yaml", "--store", "db", "--json-dir", "out",
                   cwd=workdir)
    assert run.returncode == 0, run.stderr
    assert "accuracy" in run.stdout and "95% CI" in run.stdout and "cache 0 hit / 8 miss" in run.stdout
    listed = llmbench("runs", "--store", "db", cwd=workdir)
    run_id = next(ln.split()[1] for ln in listed.stdout.splitlines() if "cli_demo" in ln)
    shown = llmbench("show", run_id, "--store", "db", "--samples", "3", cwd=workdir)
    assert shown.returncode == 0 and "accuracy" in shown.stdout and "review 0" in shown.stdout
    (export,) = (workdir / "out").glob("*.json")
    data = json.loads(export.read_text())
    assert data["run"]["scoring_mode"] == "loglikelihood" and len(data["samples"]) == 8
    again = llmbench("run", "-m", "baseline:majority", "-t", "task.yaml", "--store", "db", cwd=workdir)
    assert "cache 8 hit / 0 miss" in again.stdout
