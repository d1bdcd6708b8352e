"""The CLI's error boundary: every user-error class is one line and exit 2; a bug is one line, exit 3.

Each case drives the real command line (``llmbench.cli.main.main``, the console script's body)
into one ``UserError`` subclass. A subclass added later without a case here fails
``test_every_user_error_class_has_a_case``, so the promise cannot silently erode.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_inprocess import run_cli

import llmbench
from llmbench.errors import UserError

ROWS = [{"id": f"r{i}", "text": f"review {i}", "label": ["negative", "positive"][i % 2]} for i in range(6)]
TASK = ("name: cli_demo\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n")


def one_line(code: int, err: str, expected_code: int = 2) -> str:
    assert code == expected_code, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "task.yaml").write_text(TASK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def _store(work: Path) -> str:
    return str(work / "runs.db")


def _write(work: Path, name: str, text: str) -> str:
    (work / name).write_text(text)
    return str(work / name)


# One case per user-error class: (class name, argv builder, a fragment the line must hold).
CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("ModelError", lambda w: ["run", "-m", "hf:/no/such/model", "-t", "task.yaml", "--store", _store(w)],
     "/no/such/model"),
    ("RegistryError", lambda w: ["run", "-m", "baseline:majority", "-t", "no_such_task", "--store", _store(w)],
     "no_such_task"),
    ("RunError", lambda w: ["run", "-m", "baseline:majority", "-t", "task.yaml", "--scoring", "classify",
                            "--store", _store(w)], "classify"),
    ("StoreError", lambda w: ["show", "nope", "--store", _write(w, "empty.db", "")], "no llmbench tables"),
    # LLMBENCH_CACHE (set by the fixture to w/cache) names a file, not a folder
    ("CacheError", lambda w: ["run", "-m", "baseline:majority", "-t", "task.yaml", "--store", _store(w)]
     if _write(w, "cache", "not a folder") else [], "LLMBENCH_CACHE"),
    ("SuiteError", lambda w: ["run", "--suite", _write(w, "s.yaml", "name: s\nmodels: 3\n"), "--store", _store(w)],
     "s.yaml"),
    ("TaskError", lambda w: ["run", "-m", "baseline:majority", "-t", _write(w, "t.yaml", TASK + "colour: red\n"),
                             "--store", _store(w)], "colour"),
    ("DataError", lambda w: ["run", "-m", "baseline:majority", "--store", _store(w), "-t",
                             _write(w, "t.yaml", TASK.replace("input: text", "input: txet"))], "txet"),
    ("MetricError", lambda w: ["run", "-m", "baseline:majority", "--store", _store(w), "-t",
                               _write(w, "t.yaml", TASK + "metrics: [{name: accuracy, args: {foo: 1}}]\n")],
     "foo"),
    ("ReportError", lambda w: ["gate", "--baseline", "a", "--candidate", "b", "--alpha", "2",
                               "--store", _store(w)], "--alpha"),
    ("MismatchError", lambda w: ["gate", "--baseline", "a", "--candidate", "b", "--alpha", "2",
                                 "--store", _store(w)], "--alpha"),
    ("DatasetError", lambda w: ["run", "-m", "baseline:majority", "--store", _store(w), "-t",
                                _write(w, "t.yaml", TASK.replace("path: rows.jsonl", "path: 'builtin: nope'"))],
     "nope"),
    ("FinetuneError", lambda w: ["finetune", "--task", "task.yaml", "--base", "minilm", "--epochs", "0",
                                 "--out", str(w / "out")], "epochs"),
    ("ExecutorError", lambda w: ["run", "-m", "baseline:majority", "-t", "task.yaml", "--executor", "spark",
                                 "--store", _store(w)], "spark"),
    ("JudgeError", lambda w: ["judge", "rubric", "x", "--judge", "baseline:lead", "--scale", "5-1",
                              "--store", _store(w)], "--scale"),
    ("UserError", lambda w: ["run", "-m", "baseline:majority", "-t", "task.yaml", "--model-arg", "x=[",
                             "--store", _store(w)], "--model-arg"),
    ("LmEvalError", lambda w: ["run", "-m", "baseline:majority", "--store", _store(w), "-t",
                               "lm-eval:" + _write(w, "lm.yaml", "task: t\nprocess_docs: !function utils.f\n")],
     "process_docs"),
    ("BridgeError", lambda w: ["import", "lm-eval", str(w / "no_output"), "--store", _store(w)], "no_output"),
    ("PerturbationError", lambda w: ["run", "-m", "baseline:majority", "-t", "task.yaml", "--perturb", "typos",
                                     "--store", _store(w)], "typos"),
    ("PlanError", lambda w: ["plan", "-t", "task.yaml", "--detect", "0", "--store", _store(w)], "--detect"),
]


def _user_error_classes() -> set[str]:
    for mod in pkgutil.walk_packages(llmbench.__path__, "llmbench."):
        if mod.name.startswith(("llmbench.__main__", "llmbench.testing")):
            continue
        try:
            importlib.import_module(mod.name)
        except ImportError:  # an optional extra (e.g. a server dependency) not installed
            continue
    seen: set[str] = set()
    todo: list[type[BaseException]] = [UserError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("llmbench") and cls.__name__ not in seen:
            seen.add(cls.__name__)
            todo.extend(cls.__subclasses__())
    return seen


def test_a_missing_extra_is_one_line_naming_its_install(work: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """MissingExtraError: the dev venv has every extra, so Ray is hidden from the check."""
    import llmbench.errors

    real = llmbench.errors.find_spec
    monkeypatch.setattr(llmbench.errors, "find_spec", lambda name: None if name == "ray" else real(name))
    code, _, err = run_cli(["run", "-m", "baseline:majority", "-t", "task.yaml", "--executor", "ray",
                            "--store", _store(work)], capsys)
    assert "pip install 'llmbench[ray]'" in one_line(code, err)


# Classes whose CLI case needs a monkeypatch, tested above instead of in CASES.
DEDICATED = {"MissingExtraError"}


def test_every_user_error_class_has_a_case() -> None:
    covered = {name for name, _, _ in CASES} | DEDICATED
    missing = _user_error_classes() - covered
    assert not missing, f"user-error classes with no CLI case in this file: {sorted(missing)}"


@pytest.mark.parametrize(("name", "argv", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_user_error_is_one_line_exit_2(name: str, argv: Callable[[Path], list[str]], fragment: str,
                                       work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(argv(work), capsys)
    line = one_line(code, err)
    assert fragment in line


def test_markup_in_a_message_is_printed_as_text(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A label such as ``[/INST]`` in an error message must not crash rich's markup parser."""
    bad = _write(work, "t.yaml", TASK + "metrics: ['[/INST]']\n")
    code, _, err = run_cli(["run", "-m", "baseline:majority", "-t", bad, "--store", _store(work)], capsys)
    assert "[/INST]" in one_line(code, err)


def test_usage_error_is_one_line_exit_2(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["run", "--no-such-flag"], capsys)
    assert "--no-such-flag" in one_line(code, err)


def _explode(*_: object, **__: object) -> None:
    raise RuntimeError("boom\nsecond line")


def test_internal_error_is_one_line_exit_3(work: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import llmbench.cli.run

    monkeypatch.setattr(llmbench.cli.run, "execute_plan", _explode)
    code, _, err = run_cli(["run", "-m", "baseline:majority", "-t", "task.yaml", "--store", _store(work)], capsys)
    line = one_line(code, err, expected_code=3)
    assert "internal error" in line and "RuntimeError: boom second line" in line and "--debug" in line


def test_debug_shows_the_traceback(work: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import llmbench.cli.run

    monkeypatch.setattr(llmbench.cli.run, "execute_plan", _explode)
    code, _, err = run_cli(["--debug", "run", "-m", "baseline:majority", "-t", "task.yaml",
                            "--store", _store(work)], capsys)
    assert code == 3 and "Traceback" in err and "RuntimeError: boom" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"llmbench {llmbench.__version__}"
