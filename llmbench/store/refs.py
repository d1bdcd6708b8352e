"""One grammar for naming stored runs, used by ``show``, ``compare`` and ``gate``.

A reference is a run id, a batch id (one ``llmbench run`` invocation), a unique prefix of
either, ``last:TAG`` (the newest batch with a run tagged TAG) or ``prev:TAG`` (the one
before). Ambiguity is always an error that lists the candidates, never a silent pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from llmbench.store.errors import StoreError
from llmbench.store.models import RunInfo

TAG_PREFIXES = ("last:", "prev:")


class RunSource(Protocol):
    """What resolving needs from a store (``ResultStore`` is one; ``db`` imports this module)."""

    @property
    def where(self) -> str: ...

    def runs(self) -> list[RunInfo]: ...




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


def _by_batch(runs: list[RunInfo]) -> dict[str, list[RunInfo]]:
    out: dict[str, list[RunInfo]] = {}
    for r in runs:
        out.setdefault(r.batch_id, []).append(r)
    return out


def batches_with_tag(runs: list[RunInfo], tag: str) -> list[list[RunInfo]]:
    """Batches containing a run tagged ``tag``, oldest first (by their first run)."""
    groups = _by_batch([r for r in runs if tag in r.tags])
    return sorted(groups.values(), key=lambda rs: min((r.created_at, r.id) for r in rs))


def resolve(store: RunSource, ref: str) -> Selection:
    """Resolve ``ref`` against every run in ``store``."""
    return resolve_in(store.runs(), ref, where=store.where)


def resolve_in(runs: list[RunInfo], ref: str, *, where: str = "the store") -> Selection:
    ref = ref.strip()
    if not ref:
        raise StoreError("empty run reference — give a run id, a batch id, or last:TAG / prev:TAG")
    for prefix in TAG_PREFIXES:
        if ref.startswith(prefix):
            return _by_tag(runs, ref, ref[len(prefix):], back=prefix == "prev:")
    by_id = {r.id: r for r in runs}
    if ref in by_id:
        return Selection(ref, "run", (by_id[ref],))
    batches = _by_batch(runs)
    if ref in batches:
        return Selection(ref, "batch", tuple(batches[ref]))
    run_hits = [r for r in runs if r.id.startswith(ref)]
    batch_hits = [b for b in batches if b.startswith(ref)]
    # A single-run batch has the run's id as its batch id: one thing, not two.
    if len(run_hits) == 1 and not [b for b in batch_hits if b != run_hits[0].batch_id]:
        return Selection(ref, "run", (run_hits[0],))
    if len(batch_hits) == 1 and not run_hits:
        return Selection(ref, "batch", tuple(batches[batch_hits[0]]))
    if run_hits or batch_hits:
        names = sorted({*(r.id for r in run_hits), *(f"batch {b}" for b in batch_hits)})
        listed = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
        raise StoreError(f"'{ref}' is ambiguous: it matches {listed} — give more characters")
    raise StoreError(f"no run or batch '{ref}' in {where} — see `llmbench runs` (or use last:TAG / prev:TAG)")


def resolve_run(store: RunSource, ref: str) -> RunInfo:
    """The single run ``ref`` names; a batch or tag of several runs is an error listing them."""
    sel = resolve(store, ref)
    if len(sel.runs) != 1:
        listed = ", ".join(r.id for r in sel.runs[:6]) + (", ..." if len(sel.runs) > 6 else "")
        raise StoreError(f"'{ref}' names {sel.label} with {len(sel.runs)} runs ({listed}) — give one run id")
    return sel.runs[0]


def _by_tag(runs: list[RunInfo], ref: str, tag: str, *, back: bool) -> Selection:
    if not tag:
        raise StoreError(f"'{ref}' names no tag — write e.g. last:nightly")
    groups = batches_with_tag(runs, tag)
    need = 2 if back else 1
    if len(groups) < need:
        have = f"only {len(groups)} batch" if groups else "no batch"
        raise StoreError(f"'{ref}': {have} tagged '{tag}' in the store — {ref} needs {need}")
    group = groups[-need]
    return Selection(ref, "tag", tuple(r for r in group if tag in r.tags))
