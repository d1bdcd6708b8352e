"""``-t FILE.py`` loads a Python task (issue 22, item 7): before, it was read as YAML
("invalid YAML"); a ``@register_task`` class was unknown to the CLI; ``metrics = ("squad",)``
was a raw AttributeError; a task without ``primary_metric`` dropped off the leaderboard."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_inprocess import run_cli

BODY = '''
from llmbench.tasks import Task, register_task
from llmbench.types import Request, Sample


@register_task("{name}")
class Echo(Task):
    name = "{name}"
    kind = "qa"
    metrics = {metrics}
    scoring = ("generate",)
{extra}
    def load_split(self, split):
        return [Sample(id=str(i), input=f"q{{i}}", references=(f"q{{i}}",)) for i in range(4)]

    def build_requests(self, samples, mode, *, chat=False):
        return [Request(sample_id=s.id, kind="generate", prompt=s.input, input=s.input) for s in samples]

    def predict(self, sample, response, mode):
        return response.text or ""
'''


def _file(tmp_path: Path, name: str, metrics: str = '("squad",)', extra: str = "") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(BODY.format(name=name, metrics=metrics, extra=extra))
    return str(path)


def _run(tmp_path: Path, task: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli(["run", "-m", "baseline:copy", "-t", task, "--store", str(tmp_path / "s.db"),
                    "--resamples", "0", "--no-cache"], capsys)


def test_a_python_file_runs_and_a_metric_name_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(tmp_path, _file(tmp_path, "py_echo_a", extra='    primary_metric = "exact_match"\n'),
                          capsys)
    assert code == 0, err
    assert "exact_match" in out and "100.0" in out and "invalid YAML" not in err
    assert "note:" not in err


def test_without_primary_metric_the_first_metric_ranks_and_it_is_said(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(tmp_path, _file(tmp_path, "py_echo_b"), capsys)
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "'f1'" in notes[0] and "'squad'" in notes[0] and "primary_metric" in notes[0]


def test_a_registered_task_is_listed_and_runs_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, "py_echo_c", extra='    primary_metric = "f1"\n')
    code, out, _ = run_cli(["tasks", path], capsys)
    assert code == 0 and "py_echo_c" in out
    code, out, err = _run(tmp_path, f"{path}:py_echo_c", capsys)
    assert code == 0, err
    code, _, err = _run(tmp_path, f"{path}:other", capsys)
    assert code == 2 and "registers no task 'other'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("metrics", "extra", "expected"), [
    ("(42,)", "", "metrics[0] is 42"),
    ('("squad",)', "    kind = 'poetry'\n    metrics = ()\n", "no default metrics"),
    ('("squad",)', "    raise RuntimeError('boom')\n", "RuntimeError: boom"),
])
def test_a_bad_python_task_is_one_line(metrics: str, extra: str, expected: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    name = f"py_bad_{abs(hash((metrics, extra))) % 10**8}"
    code, _, err = _run(tmp_path, _file(tmp_path, name, metrics, extra), capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expected in lines[0] and "Traceback" not in err, err
