"""The one root of every error that means "the user gave us something wrong".

This module imports nothing from the package, so every stage can raise a ``UserError``
subclass without import cycles, and the CLI boundary (``llmbench.cli.main``) needs exactly
one ``except UserError`` to turn them into one line and exit code 2. Anything that is not a
``UserError`` is a bug: the boundary says so in one line and exits 3.

Exit codes (documented in the README): 0 success, 1 a regression found by the gate, 2 a user
error or "cannot decide", 3 an internal error.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USER_ERROR = 2
#: "Cannot decide" (the gate without a baseline, ``select`` with no qualifying model) shares
#: the user-error code: neither is a regression, and CI must not read either as a pass.
EXIT_UNDECIDED = EXIT_USER_ERROR
EXIT_INTERNAL = 3
#: Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Bad input: printed as one line (what, where, how to fix), exit code 2."""

    exit_code = EXIT_USER_ERROR


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a plan, with a line saying what was saved (runs stored, answers cached);
    the CLI boundary prints it with the command that resumes, and exits 130."""

    def __init__(self, saved: str) -> None:
        super().__init__(saved)
        self.saved = saved


def validation_problem(err: Any) -> tuple[str, str, str]:
    """``(where, kind, message)`` of a pydantic ``ValidationError``'s first problem: the dotted
    location (``(top level)`` for a whole-object check), pydantic's error type
    (``extra_forbidden``, ``missing``, ...) and its message without pydantic's "Value error, "
    prefix. Duck-typed (``err.errors()``) so this module still imports nothing."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return loc, str(first["type"]), str(first["msg"]).removeprefix("Value error, ")


def validation_line(err: Any, *, subject: str, fix: str) -> str:
    """A pydantic ``ValidationError`` as one line: the first problem, where it is and how to fix
    it. ``subject`` says what was validated ("llmbench.evaluate"), ``fix`` where the value
    comes from ("the call's arguments")."""
    loc, kind, text = validation_problem(err)
    if kind == "extra_forbidden":
        return f"{subject}: unknown key '{loc}' — remove it or check its spelling in {fix}"
    if kind == "missing":
        return f"{subject}: missing required key '{loc}' — add it to {fix}"
    return f"{subject}: '{loc}': {text} — fix it in {fix}"


def one_line(text: object, limit: int | None = 400) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters with '…'.

    The single helper every error message and log line goes through, so a multi-line library
    message never breaks the "one line per error" promise. An exception with no message is
    named by its type.
    """
    flat = " ".join(str(text).split())
    if not flat and isinstance(text, BaseException):
        flat = type(text).__name__
    if limit is not None and len(flat) > limit:
        return flat[: max(limit - 1, 0)] + "…"
    return flat


class MissingExtraError(UserError):
    """An optional part of llmbench (an extra: ``hf``, ``serve``, ``ray``, ``postgres``) that a
    command needs is not installed; the message names the ``pip install`` that adds it."""


def require_extra(extra: str, what: str, *modules: str) -> None:
    """Raise a one-line ``MissingExtraError`` unless every module in ``modules`` is importable.

    Called where the core (tasks, metrics, store, reports, the OpenAI adapter, the CLI) hands
    over to a heavy optional part, before its first import, so a core-only install meets a
    missing extra as a user error naming the install command, never as a ModuleNotFoundError.
    ``modules`` are names written in the code, never read from data.
    """
    missing = [name for name in modules if find_spec(name) is None]
    if missing:
        raise MissingExtraError(f"{what} needs {', '.join(missing)}, which is not installed — "
                                f"pip install 'llmbench[{extra}]'")
