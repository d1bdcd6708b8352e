"""Answer extraction by a regular expression from a task file (lm-eval's ``regex`` filter).

A leaf module: a task's ``extract:`` (``tasks.answers``) and lm-eval's per-filter
``exact_match`` (``metrics.lmeval``) both apply it, and the stages may not import each other.

The pattern is data someone else may have written, so it runs with a time bound: the
``regex`` module (a dependency of nltk, so of every llmbench install) takes a ``timeout`` on
each call and raises ``TimeoutError`` instead of backtracking for ever (``(a+)+$`` on a long
run of ``a``). A run whose pattern times out on an answer stops with one line naming the
pattern and the sample: silently scoring such an answer as the fallback would make a score
depend on the machine's speed. The text searched is one generated answer (bounded by
``max_new_tokens``) and the bound is per call.

The semantics are lm-eval 0.4.13's ``RegexFilter``: ``findall`` over the answer; no match is
the ``fallback``; otherwise match ``group_select`` (Python indexing, so -1 is the last match);
a pattern with several groups gives a tuple per match, of which the first non-empty group is
taken (none: the fallback); the result is stripped. A ``group_select`` beyond the matches
(lm-eval raises ``IndexError``) is the fallback here.
"""

from __future__ import annotations

from typing import Any

import regex  # no stubs (pyproject's ignore_missing_imports); `re` has no timeout

TIMEOUT_S = 1.0


class ExtractError(ValueError):
    """A pattern that does not compile or that ran past the time bound (one line)."""


def compile_pattern(pattern: str) -> Any:
    """The compiled pattern, or ``ExtractError`` naming the problem."""
    try:
        return regex.compile(pattern)
    except (regex.error, TypeError, ValueError, OverflowError) as err:
        raise ExtractError(f"regex {pattern!r} does not compile ({err})") from None


def extract(text: str, compiled: Any, *, group_select: int = 0, fallback: str = "[invalid]") -> str:
    """lm-eval's ``RegexFilter`` on one answer (see the module docstring)."""
    try:
        matches = compiled.findall(text, timeout=TIMEOUT_S)
    except TimeoutError:
        raise ExtractError(f"regex {compiled.pattern!r} ran over {TIMEOUT_S:g} s on one answer (catastrophic "
                           "backtracking?)") from None
    if not matches:
        return fallback
    try:
        match = matches[group_select]
    except IndexError:
        return fallback
    if isinstance(match, tuple):
        match = next((m for m in match if m), fallback)
    return str(match).strip()
