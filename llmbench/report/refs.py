"""Run references for compare and gate: the store's one grammar (``llmbench.store.refs``),
with its errors as ``ReportError`` so the report commands keep their exit codes.

A *batch* is one ``llmbench run`` invocation (many models x tasks); nightly CI compares
whole batches, a developer usually two single runs. Both resolve to a ``Selection`` so
compare and gate treat them the same way.
"""

from __future__ import annotations

from llmbench.report.errors import ReportError
from llmbench.store import ResultStore, RunInfo, StoreError
from llmbench.store import refs as store_refs
from llmbench.store.lifecycle import state
from llmbench.store.refs import TAG_PREFIXES, Selection, batches_with_tag

__all__ = ["TAG_PREFIXES", "Selection", "batches_with_tag", "resolve", "status_word"]


def status_word(run: RunInfo) -> str:
    """The run's status now: ``running`` only while its process lives, else ``interrupted``."""
    return state(run)


def resolve(store: ResultStore, ref: str) -> Selection:
    """Resolve ``ref``: ``last:TAG`` / ``prev:TAG``, a run id, a batch id, or a unique prefix
    of either. Ambiguity is an error listing the candidates, never a silent pick."""
    try:
        return store_refs.resolve(store, ref)
    except StoreError as err:  # every reference error, and a store that cannot be read
        raise ReportError(str(err)) from None
