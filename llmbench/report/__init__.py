"""Reports over the results store: the static leaderboard, run-vs-run comparison and the gate.

Everything here only *reads* the store (one-way data flow): reports never re-run a model,
and a report is reproducible from the database alone. Paired statistics are recomputed from
the per-sample statistics the runner stored, with the same metric objects that produced them.
"""

from llmbench.report.errors import MismatchError, ReportError

__all__ = ["MismatchError", "ReportError"]
