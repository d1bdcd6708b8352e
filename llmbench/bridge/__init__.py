"""Other harnesses' results in llmbench's store, and llmbench's runs in theirs.

``lmeval``: import lm-evaluation-harness results (``results_*.json`` + ``--log_samples``
``samples_*.jsonl``) and export a stored run in that shape; ``inspect_log``: import
inspect_ai logs (``.eval`` zip or ``.json``). Imported runs are ordinary runs — written
through ``ResultStore``'s own methods, with per-sample records paired by the source's document
id — so ``compare``, ``gate``, ``select`` and the leaderboard read them like any other; the
producing harness and its version are part of the model identity and the run's tags.
"""

from __future__ import annotations

from llmbench.errors import UserError


class BridgeError(UserError):
    """A results file that cannot be imported or a run that cannot be exported; one line."""


__all__ = ["BridgeError"]
