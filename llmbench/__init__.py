"""llmbench: evaluate language models on classification, translation, QA and summarization.

The Python API (``evaluate``, ``load_runs``, ``Run``, ``Runs``) lives in ``llmbench.api`` and
is imported on first use, so ``import llmbench`` (and the command line) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmbench._version import __version__

__all__ = ["Run", "Runs", "__version__", "evaluate", "load_runs"]

if TYPE_CHECKING:
    from llmbench.api import Run, Runs, evaluate, load_runs


def __getattr__(name: str) -> Any:
    if name in {"Run", "Runs", "evaluate", "load_runs"}:
        from llmbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'llmbench' has no attribute {name!r}")
