"""Finding and loading tasks: YAML files, built-in task names, and Python/plugin tasks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmbench import registry
from llmbench.errors import validation_problem
from llmbench.tasks.base import Task, TaskError, register_task
from llmbench.tasks.spec import TaskSpec
from llmbench.yamlfile import read_mapping

__all__ = ["Task", "TaskError", "TaskSpec", "builtin_task_dirs", "list_tasks", "load_task",
           "register_task"]


def builtin_task_dirs() -> list[Path]:
    """Where task files are looked up by name: $LLMBENCH_TASKS_PATH, then the catalog that
    ships inside the package (``llmbench/catalog``), so an installed wheel finds them too."""
    dirs = [Path(p) for p in os.environ.get("LLMBENCH_TASKS_PATH", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[1] / "catalog")
    return [d for d in dirs if d.is_dir()]


def _task_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in builtin_task_dirs():
        for f in sorted(d.glob("*.yaml")):
            found.setdefault(f.stem, f)
    return found


def load_task_file(path: Path, *, data: str | None = None) -> Task:
    from llmbench.tasks.yaml_task import YamlTask

    if path.is_dir():
        raise TaskError(f"task file '{path}' is a folder — give a .yaml file (or a task name from "
                        "`llmbench tasks`)")
    raw = read_mapping(path, what="task", keys="name:, kind:, dataset:", error=TaskError)
    if data is not None:
        raw = {**raw, "dataset": _override_data(raw.get("dataset") or {}, data, path)}
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as err:
        loc, kind, text = validation_problem(err)
        if kind == "extra_forbidden":
            msg = f"unknown key '{loc}' — remove it or check its spelling"
        elif kind == "missing":
            msg = f"missing required key '{loc}' — add it (see docs or a task in llmbench/catalog)"
        else:
            if loc == "(top level)":  # a whole-file check names its key at the start of its text
                msg = f"{text} — fix '{text.split(':', 1)[0]}' in the task file"
            else:
                msg = f"{loc}: {text} — fix '{loc}' in the task file"
        raise TaskError(f"{path}: {msg}") from None
    if spec.kind == "multiple_choice":
        from llmbench.tasks.multiple_choice import MultipleChoiceTask

        return MultipleChoiceTask(spec, path=path)
    if spec.kind == "language_modeling":
        from llmbench.tasks.language_modeling import LanguageModelingTask

        return LanguageModelingTask(spec, path=path)
    if spec.kind == "continuation":
        from llmbench.tasks.continuation import ContinuationTask

        return ContinuationTask(spec, path=path)
    return YamlTask(spec, path=path)


def _override_data(dataset: dict[str, Any], data: str, task_path: Path) -> dict[str, Any]:
    """``--data FILE`` points every split at one local file (offline tests of Hub tasks)."""
    file = Path(data).resolve()
    if not file.exists():
        raise TaskError(f"--data: '{data}' does not exist — give a local .jsonl/.json/.csv/.parquet file")
    if file.is_dir():
        raise TaskError(f"--data: '{data}' is a folder — give a local .jsonl/.json/.csv/.parquet file in it")
    keep = {k: v for k, v in dataset.items() if k in {"split", "format", "fewshot_split",
                                                      "train_split", "validation_split"}}
    splits = {keep.get(k) for k in ("split", "fewshot_split", "train_split", "validation_split")}
    splits |= {"test"}
    return {**keep, "data_files": {s: str(file) for s in splits if s}}


def load_task(ref: str, *, data: str | None = None) -> Task:
    """A task by file path (YAML, or Python: ``FILE.py[:NAME]``, see ``tasks.python_file``), an
    lm-evaluation-harness task file (``lm-eval:PATH``, translated by ``tasks.lmeval``), by built-in
    file name, or by registered (Python/plugin) name."""
    if ref.startswith("lm-eval:"):
        from llmbench.tasks.lmeval import load_lmeval

        return load_lmeval(ref.removeprefix("lm-eval:"), data=data)
    from llmbench.tasks import python_file

    py = python_file.split_ref(ref)
    if py is not None:
        if data is not None:
            raise TaskError(f"--data applies to task files (YAML); the Python task '{ref}' reads its own data")
        return _registered(python_file.task_name_in_file(*py), python_file)
    path = Path(ref)
    try:
        exists = path.exists()
    except OSError as err:  # a name too long for the file system (ENAMETOOLONG)
        raise TaskError(f"task '{ref[:60]}…' ({len(ref)} characters) cannot be a file here: {err.strerror} — "
                        "give a shorter path or a task name from `llmbench tasks`") from None
    if path.suffix in {".yaml", ".yml"} or exists:
        if not path.exists():
            raise TaskError(f"task file '{ref}' does not exist — check the path (or `llmbench tasks`)")
        return load_task_file(path, data=data)
    files = _task_files()
    if ref in files:
        return load_task_file(files[ref], data=data)
    if ref in registry.tasks:
        from llmbench.tasks import python_file

        return _registered(ref, python_file)
    known = sorted(set(files) | set(registry.tasks.names()))
    raise TaskError(f"unknown task '{ref}' — give a .yaml path or one of: {', '.join(known) or 'none'}")


def _registered(name: str, python_file: Any) -> Task:
    factory = registry.tasks.get(name)
    try:
        task = factory()
    except TaskError:
        raise
    except Exception as err:  # the task's own constructor: its author's mistake, in one line
        raise TaskError(f"task '{name}' ({registry.tasks.origin(name)}) failed to build: {type(err).__name__}: "
                        f"{err} — fix the task class") from None
    if not isinstance(task, Task):
        raise TaskError(f"task '{name}' ({registry.tasks.origin(name)}) did not build a Task")
    return python_file.checked(task, registry.tasks.origin(name))  # type: ignore[no-any-return]


def list_tasks() -> list[tuple[str, str]]:
    """(name, origin) for every task file found by name and every registered task."""
    out = [(name, str(path)) for name, path in _task_files().items()]
    out += [(name, registry.tasks.origin(name)) for name in registry.tasks.names()]
    return sorted(out)
