"""``llmbench.yamlfile.read_mapping``: the one reader of task and suite files, one line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmbench.errors import UserError
from llmbench.yamlfile import read_mapping


class _Bad(UserError):
    pass


def _read(path: Path) -> dict:
    return read_mapping(path, what="suite", keys="name:, models:", error=_Bad)


@pytest.mark.parametrize(("body", "message"), [
    (b"name: s\nmodels: [a\n", ":3: invalid YAML"),  # the line the parser stopped at
    (b"name: s\ndescription: caf\xe9\n", ":2: not UTF-8 text (byte 0xe9) — save the suite file as UTF-8"),
    (b"- a\n- b\n", ": a suite file must be a YAML mapping (name:, models:, ...)"),
    (b"", ": a suite file must be a YAML mapping"),
])
def test_each_mistake_is_one_line_naming_file_and_line(tmp_path: Path, body: bytes, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(body)
    with pytest.raises(_Bad) as info:
        _read(path)
    assert str(info.value).startswith(f"{path}{message}") and "\n" not in str(info.value)


def test_missing_file_and_a_good_one(tmp_path: Path) -> None:
    with pytest.raises(_Bad, match=r"cannot read suite file .* — check the path"):
        _read(tmp_path / "nope.yaml")
    (tmp_path / "ok.yaml").write_text("name: s\nmodels: [a]\n")
    assert _read(tmp_path / "ok.yaml") == {"name": "s", "models": ["a"]}


def test_tasks_and_suites_share_it(tmp_path: Path) -> None:
    from llmbench.suite import SuiteError, load_suite
    from llmbench.tasks import TaskError, load_task_file

    path = tmp_path / "x.yaml"
    path.write_bytes(b"name: x\ndescription: caf\xe9\n")
    with pytest.raises(TaskError, match=r"x.yaml:2: not UTF-8 text \(byte 0xe9\) — save the task file"):
        load_task_file(path)
    with pytest.raises(SuiteError, match=r"x.yaml:2: not UTF-8 text \(byte 0xe9\) — save the suite file"):
        load_suite(path)
