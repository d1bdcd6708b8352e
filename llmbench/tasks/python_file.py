"""Python task files named on the command line (``llmbench run -t my_tasks.py``).

A ``.py`` path the user types is code the user chose to run, as ``python my_tasks.py``
would run it; it is imported like a script, once per process. This is not the rule that
"nothing read from a task file, a data row or the results database decides what code is
imported": no YAML key, data value or stored name can lead here, only the command line
(or a plugin's entry point, which the user installed).

Importing the file registers its ``@register_task`` classes, so ``-t NAME`` and
``llmbench tasks`` see them for the rest of the command. ``-t FILE.py`` alone runs the one
task the file defines; a file with several is ``-t FILE.py:NAME``.

A Python task is checked as a YAML task is, before any model loads: ``metrics`` must be
metric names or ``MetricRef``s (``metrics = ("squad",)`` is accepted and converted, other
values are one line; none at all means the kind's defaults, as in a task file), and a task
without ``primary_metric`` ranks by its first metric's headline value — and says so on
stderr, since a task without one used to drop off the leaderboard silently.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from llmbench import registry
from llmbench.errors import one_line
from llmbench.tasks import kinds
from llmbench.tasks.base import Task, TaskError
from llmbench.tasks.spec import MetricRef

_IMPORTED: dict[Path, list[str]] = {}


def split_ref(ref: str) -> tuple[Path, str | None] | None:
    """``FILE.py`` or ``FILE.py:NAME`` as (path, name); None for any other reference."""
    head, sep, name = ref.rpartition(".py:")
    if sep and name and "/" not in name:
        return Path(head + ".py"), name
    return (Path(ref), None) if ref.endswith(".py") else None


def import_task_file(path: Path) -> list[str]:
    """Import ``path`` (once per process) and return the task names it registered."""
    resolved = path.resolve()
    if resolved in _IMPORTED:
        return _IMPORTED[resolved]
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise TaskError(f"Python task file '{path}' {what} — check the path (or `llmbench tasks`)")
    before = set(registry.tasks.names())
    module_name = f"llmbench_task_file_{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise TaskError(f"'{path}' cannot be imported as Python — give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's code: its failure is theirs, in one line
        sys.modules.pop(module_name, None)
        raise TaskError(f"importing the Python task file '{path}' failed: {type(err).__name__}: "
                        f"{one_line(err, 200)} — fix the file (run `python {path}` to see the traceback)") from None
    names = sorted(set(registry.tasks.names()) - before)
    _IMPORTED[resolved] = names
    return names


def task_name_in_file(path: Path, name: str | None) -> str:
    """The registered name ``-t FILE.py[:NAME]`` means."""
    names = import_task_file(path)
    if name is not None:
        if name not in names:
            raise TaskError(f"'{path}' registers no task '{name}' (it registers {', '.join(names) or 'none'}) — "
                            "check the name in @register_task")
        return name
    if len(names) != 1:
        found = f"several tasks ({', '.join(names)})" if names else "no task"
        raise TaskError(f"'{path}' registers {found} — decorate one Task class with @register_task(\"NAME\")"
                        + (f", and pick one with -t {path}:NAME" if names else ""))
    return names[0]


def checked(task: Task, origin: str) -> Task:
    """A Python task held to the rules a task file is checked by when it loads."""
    where = f"task '{getattr(task, 'name', '?')}' ({origin})"
    refs: list[MetricRef] = []
    for i, m in enumerate(tuple(task.metrics) if isinstance(task.metrics, tuple | list) else (task.metrics,)):
        if isinstance(m, str):
            m = MetricRef(name=m)
        if not isinstance(m, MetricRef):
            raise TaskError(f"{where}: metrics[{i}] is {m!r} — list metric names or MetricRef(name=..., args=...), "
                            "e.g. metrics = (\"squad\",)")
        refs.append(m)
    if not refs and getattr(task, "kind", None) in kinds.DEFAULT_METRICS:  # as a task file without metrics:
        task.metrics = kinds.DEFAULT_METRICS[task.kind]                    # the kind's defaults
        task.primary_metric = task.primary_metric or kinds.DEFAULT_PRIMARY[task.kind]
        return task
    if not refs:
        raise TaskError(f"{where}: metrics is empty and kind {getattr(task, 'kind', None)!r} has no default "
                        "metrics — list at least one metric, e.g. metrics = (\"accuracy\",)")
    task.metrics = tuple(refs)
    if not task.primary_metric:
        first = refs[0].name
        task.primary_metric = kinds.metric_primary(first, refs[0].args, getattr(task, "labels", None))
        # Straight to stderr (not logging, which a library such as Ray may reconfigure): one
        # line, printed for the CLI and the Python API alike.
        print(f"note: {where} has no primary_metric; ranking by '{task.primary_metric}' of its first metric "
              f"'{first}' — set primary_metric to choose", file=sys.stderr)
    return task
