"""Stop strings, applied the same way by every backend.

A generation must end at the first stop string whichever backend made it: a local model
overshoots (generation halts only at a token boundary after the stop text appeared), an
API applies at most four stop sequences, and some compatible servers keep the stop text.
Cutting the answer here afterwards makes all of them agree, so a score never depends on
which backend produced the text.
"""

from __future__ import annotations

from collections.abc import Sequence


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any non-empty stop string."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=len(text))
    return text[:cut]
