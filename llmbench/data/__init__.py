"""Builtin offline datasets of the default suite.

Each dataset is a module here exposing ``SPLITS: tuple[str, ...]`` and
``load(split) -> list[dict]`` (plain rows, each with a stable string ``"id"``). The
data is read at run time from installed packages (see each module's docstring for the
source and licence); nothing but our own QA annotations is stored in this repository.

Modules are imported lazily, so a missing optional data package only matters for the
dataset that needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

from llmbench.data._common import DatasetError

__all__ = ["BUILTIN_DATASETS", "DatasetError", "builtin_splits", "load_builtin"]

BUILTIN_DATASETS: dict[str, str] = {
    "rotten_tomatoes": "llmbench.data.rotten_tomatoes",
    "flores_en_ms": "llmbench.data.flores_en_ms",
    "flores_qa": "llmbench.data.flores_qa",
    "stdlib_docstrings": "llmbench.data.stdlib_docstrings",
}


def _module(name: str) -> Any:
    try:
        path = BUILTIN_DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown builtin dataset {name!r} (known: {', '.join(sorted(BUILTIN_DATASETS))})") from None
    return importlib.import_module(path)


def builtin_splits(name: str) -> tuple[str, ...]:
    """The splits of a builtin dataset (imports its module, reads no data)."""
    return tuple(_module(name).SPLITS)


def load_builtin(name: str, split: str) -> list[dict[str, Any]]:
    """Rows of one split of a builtin dataset; :class:`DatasetError` on any user error."""
    module = _module(name)
    if split not in module.SPLITS:
        raise DatasetError(f"split {split!r} not in {name} (has: {', '.join(module.SPLITS)})")
    return module.load(split)
