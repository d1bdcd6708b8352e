"""The error contract of task files: every user mistake is a ``TaskError`` with a one-line
message that names what to fix, and the CLI turns it into exit code 2 without a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmbench.tasks import TaskError, load_task

ROOT = Path(__file__).resolve().parents[2]

ROWS = [{"id": "r0", "text": "great film", "label": "positive"},
        {"id": "r1", "text": "dull film", "label": "neutral"}]
GOOD = """\
name: errs
kind: classification
dataset: {path: rows.jsonl}
fields: {id: id, input: text, target: label}
labels: [negative, positive]
"""
BAD_FILES = {
    "malformed_yaml": "name: errs\nkind: [classification\ndataset: {path: rows.jsonl}\n",
    "unknown_key": GOOD + "promt: {template: '{{ input }}'}\n",
    "missing_field": GOOD.replace("input: text", "input: review"),
    "label_not_in_labels": GOOD,  # row r1 is labelled 'neutral'
    "missing_data_file": GOOD.replace("rows.jsonl", "no_such_rows.jsonl"),
}


def write(tmp: Path, body: str, name: str = "task.yaml", rows: list[dict] | None = None) -> Path:
    (tmp / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in (rows or ROWS)) + "\n", encoding="utf-8")
    path = tmp / name
    path.write_text(body, encoding="utf-8")
    return path


def error_of(path: Path, *, load_rows: bool = True, data: str | None = None) -> str:
    with pytest.raises(TaskError) as err:
        task = load_task(str(path), data=data)
        if load_rows:
            task.samples()
    msg = str(err.value)
    assert msg and "\n" not in msg, f"not one line: {msg!r}"
    return msg


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, BAD_FILES["malformed_yaml"])
    msg = error_of(path, load_rows=False)
    assert msg.startswith(f"{path}:") and "invalid YAML" in msg and "fix the syntax" in msg
    assert msg.split(":")[1].isdigit()  # path:LINE


def test_a_task_file_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- name: errs\n- kind: qa\n")
    assert "must be a YAML mapping" in error_of(path, load_rows=False)


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, BAD_FILES["unknown_key"])
    msg = error_of(path, load_rows=False)
    assert msg == f"{path}: unknown key 'promt' — remove it or check its spelling"


@pytest.mark.parametrize(("body", "key"), [
    (GOOD.replace("{path: rows.jsonl}", "{path: rows.jsonl, splt: test}"), "dataset.splt"),
    (GOOD.replace("target: label}", "target: label, label: label}"), "fields.label"),
    (GOOD + "prompt: {template: '{{ input }}', fewshot: {kk: 2}}\n", "prompt.fewshot.kk"),
])
def test_unknown_nested_key_gives_its_dotted_path(tmp_path: Path, body: str, key: str) -> None:
    path = write(tmp_path, body)
    assert error_of(path, load_rows=False) == f"{path}: unknown key '{key}' — remove it or check its spelling"


def test_missing_required_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("fields: {id: id, input: text, target: label}\n", ""))
    assert error_of(path, load_rows=False).startswith(f"{path}: missing required key 'fields' — add it")


def test_missing_dataset_field_names_field_and_columns(tmp_path: Path) -> None:
    path = write(tmp_path, BAD_FILES["missing_field"])
    msg = error_of(path)
    assert "fields.input = 'review' is not in row 0 (columns: id, label, text)" in msg
    assert "task 'errs'" in msg and str(path) in msg


def test_missing_dotted_field(tmp_path: Path) -> None:
    rows = [{"q": "Who?", "ctx": "Ann ran.", "answers": {"text": ["Ann"], "answer_start": [0]}}]
    path = write(tmp_path, "name: qa\nkind: qa\ndataset: {path: rows.jsonl}\n"
                           "fields: {input: q, context: ctx, target: answers.txt}\n", rows=rows)
    assert "fields.target = 'answers.txt' is not in row 0 (columns: answers, ctx, q)" in error_of(path)


def test_label_not_in_labels(tmp_path: Path) -> None:
    path = write(tmp_path, BAD_FILES["label_not_in_labels"])
    msg = error_of(path)
    assert "row 1 has label 'neutral', not one of ['negative', 'positive']" in msg


def test_label_index_out_of_range(tmp_path: Path) -> None:
    rows = [{"id": "r0", "text": "x", "label": 1}, {"id": "r1", "text": "y", "label": 2}]
    path = write(tmp_path, GOOD, rows=rows)
    assert "row 1 has label index 2, but labels has 2 entries" in error_of(path)


def test_classification_without_labels(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("labels: [negative, positive]\n", ""))
    assert "labels: a classification task must list its labels" in error_of(path, load_rows=False)


def test_missing_data_file(tmp_path: Path) -> None:
    path = write(tmp_path, BAD_FILES["missing_data_file"])
    msg = error_of(path)
    assert f"data file '{tmp_path / 'no_such_rows.jsonl'}' does not exist" in msg


def test_missing_data_override(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    msg = error_of(path, load_rows=False, data=str(tmp_path / "nowhere.jsonl"))
    assert msg.startswith("--data: ") and "does not exist" in msg


def test_missing_task_file(tmp_path: Path) -> None:
    msg = error_of(tmp_path / "nope.yaml", load_rows=False)
    assert f"task file '{tmp_path / 'nope.yaml'}' does not exist" in msg


def test_bad_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    (tmp_path / "rows.jsonl").write_text('{"id": "r0", "text": "a", "label": "positive"}\n{"id": "r1",\n')
    assert f"{tmp_path / 'rows.jsonl'}:2: not valid JSON" in error_of(path)


def test_bad_prompt_template(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "prompt: {template: '{{ input '}\n")
    assert "prompt template error" in error_of(path, load_rows=False)


def test_template_naming_a_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "prompt: {template: '{{ row.title }}: {{ input }}'}\n", rows=ROWS[:1])
    task = load_task(str(path))
    with pytest.raises(TaskError, match="title"):
        task.prompt_for(task.samples()[0], chat=False)


# -- through the CLI: exit code 2, one line on stderr, no traceback ------------------------------

def llmbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("llmbench")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "llmbench"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, "NO_COLOR": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})


@pytest.mark.parametrize(("case", "expected"), [
    ("malformed_yaml", "invalid YAML"),
    ("unknown_key", "unknown key 'promt'"),
    # data errors surface after the runner has built the metrics (imports scikit-learn): a few seconds each
    pytest.param("missing_field", "fields.input = 'review' is not in row 0 (columns: id, label, text)",
                 marks=pytest.mark.slow),
    pytest.param("label_not_in_labels", "row 1 has label 'neutral'", marks=pytest.mark.slow),
    pytest.param("missing_data_file", "no_such_rows.jsonl' does not exist", marks=pytest.mark.slow),
])
def test_cli_exits_2_with_one_line(tmp_path: Path, case: str, expected: str) -> None:
    path = write(tmp_path, BAD_FILES[case], name=f"{case}.yaml")
    out = llmbench("run", "--model", "baseline:majority", "--task", str(path),
                   "--store", str(tmp_path / "db.sqlite"), "--no-cache", cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in out.stderr + out.stdout


def test_cli_missing_data_override_exits_2(tmp_path: Path) -> None:
    out = llmbench("run", "--model", "baseline:majority", "--task", str(ROOT / "llmbench" / "catalog" / "sst2.yaml"),
                   "--data", str(tmp_path / "nowhere.jsonl"), "--store", str(tmp_path / "db.sqlite"),
                   "--no-cache", cwd=tmp_path)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--data: " in lines[0] and "does not exist" in lines[0]
    assert "Traceback" not in out.stderr + out.stdout
