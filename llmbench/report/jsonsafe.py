"""JSON without NaN or Infinity, for every report that writes JSON.

A metric can be undefined (F1 of a label never predicted, a CI of one sample), and Python
writes that as ``NaN``, which strict JSON readers (browsers' ``JSON.parse``, jq) reject.
Kept in a leaf module that imports nothing from the package, so the leaderboard, the paired
statistics and the CLI can all use it without an import cycle.
"""

from __future__ import annotations

import math
from typing import Any


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None, recursively through dicts
    (keys become strings, as JSON needs), lists and tuples (which become lists)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj
