"""Strict verdict parsing: a judge's answer is a score on the declared scale, or A / B / tie.

Why strict: a lenient parser ("the first digit anywhere") turns "I'd give it 4, or maybe 2"
into a 4, and a judge that rambles gets scores it never gave. The verdict must be the first
non-empty line of the answer and match one of a few fixed shapes in full; anything else is
an *invalid* verdict, counted as such and never guessed.
"""

from __future__ import annotations

import re
from typing import Literal

Preference = Literal["A", "B", "tie"]

# "4", "4.", "4/5", "Score: 4", "score = 4", "Rating: 4/5", "**4**", "[[4]]"
_SCORE = re.compile(
    r"(?:(?:score|rating|grade)\s*[:=]?\s*)?(?:\*\*|\[\[)?(?P<value>\d{1,3})(?:\*\*|\]\])?"
    r"(?:\s*/\s*(?P<out_of>\d{1,3}))?\.?",
    re.IGNORECASE,
)
# "A", "B", "tie", "[[A]]", "Winner: B", "Verdict: tie", "Answer A", "**B**"
_PREFERENCE = re.compile(
    r"(?:(?:winner|verdict|answer|better|choice)\s*[:=]?\s*)?(?:\*\*|\[\[)?(?P<value>A|B|tie)(?:\*\*|\]\])?\.?",
    re.IGNORECASE,
)


def _first_line(text: str | None) -> str | None:
    if text is None:
        return None
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


def parse_score(text: str | None, lo: int, hi: int) -> int | None:
    """The integer score the judge gave on ``lo..hi``, or None when the answer is not a score
    on that scale (another shape, out of range, or "x/N" with N other than ``hi``)."""
    line = _first_line(text)
    if line is None:
        return None
    match = _SCORE.fullmatch(line)
    if match is None:
        return None
    value = int(match["value"])
    if match["out_of"] is not None and int(match["out_of"]) != hi:
        return None
    return value if lo <= value <= hi else None


def parse_preference(text: str | None) -> Preference | None:
    """"A", "B" or "tie" when the answer's first line is one of them (in a few fixed
    shapes), else None."""
    line = _first_line(text)
    if line is None:
        return None
    match = _PREFERENCE.fullmatch(line)
    if match is None:
        return None
    value = match["value"]
    if value.lower() == "tie":
        return "tie"
    return "A" if value.upper() == "A" else "B"
