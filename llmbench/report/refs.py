"""Resolving what the user typed (run id, prefix, batch id, ``last:TAG``) to stored runs.

A *batch* is one ``llmbench run`` invocation (many models x tasks); nightly CI compares
whole batches, a developer usually two single runs. Both resolve to a ``Selection`` so
compare and gate treat them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmbench.report.errors import ReportError
from llmbench.store import ResultStore, RunInfo, group_by_batch

TAG_PREFIXES = ("last:", "prev:")


@dataclass(frozen=True)
class Selection:
    """The runs a reference resolved to, and how (for messages)."""

    ref: str
    how: str  # "run" | "batch" | "tag"
    runs: tuple[RunInfo, ...]

    @property
    def label(self) -> str:
        if self.how == "run":
            return f"run {self.runs[0].id}"
        batch = self.runs[0].batch_id
        return f"batch {batch}" if self.how == "batch" else f"{self.ref} (batch {batch})"

    @property
    def not_complete(self) -> list[RunInfo]:
        return [r for r in self.runs if r.status != "complete"]


def status_word(run: RunInfo) -> str:
    """The store writes 'running' first; a run still 'running' when read was interrupted
    (or is in progress right now) — either way its numbers are not final."""
    return "interrupted/running" if run.status == "running" else run.status


def batches_with_tag(runs: list[RunInfo], tag: str) -> list[list[RunInfo]]:
    """Batches containing a run tagged ``tag``, oldest first (by their first run)."""
    tagged = [r for r in runs if tag in r.tags]
    groups = group_by_batch(tagged)
    return sorted(groups.values(), key=lambda rs: min((r.created_at, r.id) for r in rs))


def resolve(store: ResultStore, ref: str) -> Selection:
    """Resolve ``ref``: ``last:TAG`` / ``prev:TAG``, a run id, a batch id, or a unique prefix
    of either. Ambiguity is an error listing the candidates, never a silent pick."""
    ref = ref.strip()
    if not ref:
        raise ReportError("empty run reference — give a run id, a batch id, or last:TAG / prev:TAG")
    runs = store.runs()
    for prefix in TAG_PREFIXES:
        if ref.startswith(prefix):
            return _by_tag(runs, ref, ref[len(prefix):], back=prefix == "prev:")
    by_id = {r.id: r for r in runs}
    if ref in by_id:
        return Selection(ref, "run", (by_id[ref],))
    batches = group_by_batch(runs)
    if ref in batches:
        return Selection(ref, "batch", tuple(batches[ref]))
    run_hits = [r for r in runs if r.id.startswith(ref)]
    batch_hits = [b for b in batches if b.startswith(ref)]
    if len(run_hits) == 1 and not [b for b in batch_hits if b != run_hits[0].batch_id]:
        return Selection(ref, "run", (run_hits[0],))
    if len(batch_hits) == 1 and not run_hits:
        return Selection(ref, "batch", tuple(batches[batch_hits[0]]))
    if run_hits or batch_hits:
        names = sorted({*(r.id for r in run_hits), *(f"batch {b}" for b in batch_hits)})
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        raise ReportError(f"'{ref}' is ambiguous: it matches {shown} — give more characters")
    raise ReportError(f"no run or batch '{ref}' in the store — see `llmbench runs` "
                      f"(or use last:TAG / prev:TAG)")


def _by_tag(runs: list[RunInfo], ref: str, tag: str, *, back: bool) -> Selection:
    if not tag:
        raise ReportError(f"'{ref}' names no tag — write e.g. last:nightly")
    groups = batches_with_tag(runs, tag)
    need = 2 if back else 1
    if len(groups) < need:
        have = f"only {len(groups)} batch" if groups else "no batch"
        raise ReportError(f"'{ref}': {have} tagged '{tag}' in the store — {ref} needs {need}")
    group = groups[-need]
    return Selection(ref, "tag", tuple(r for r in group if tag in r.tags))
