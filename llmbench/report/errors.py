"""The user errors of the report commands (one line each; the CLI exits with code 2)."""

from __future__ import annotations

from llmbench.errors import UserError


class ReportError(UserError):
    """A reference does not resolve, two selections share nothing, or an option is wrong."""


class MismatchError(ReportError):
    """Two runs were made under different task versions, prompts or scoring modes.

    Comparing them would mix a change of the *benchmark* with a change of the *model*. The
    gate now records this as a reason in its ``cannot_decide`` decision (so ``--json-out``
    holds it) rather than raising; the class stays for code that raises or catches it.
    """
