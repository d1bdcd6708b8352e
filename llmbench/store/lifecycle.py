"""What a stored run's status means *now*: ``running`` is only true while its process lives.

A run row says ``running`` from its first write until its last; a process killed with -9
never gets to change that. Readers therefore ask ``state``: on the host that wrote the
run, a ``running`` run whose process is gone is ``interrupted`` at once; elsewhere (a shared
PostgreSQL store), one whose heartbeat has not moved for ``STALE_AFTER_S`` is.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime

from llmbench.store.models import RunInfo

#: A live run moves its heartbeat with every answered chunk and at least every
#: ``HEARTBEAT_EVERY_S`` while answering; silence for this long means its process is gone.
STALE_AFTER_S = 15 * 60
HEARTBEAT_EVERY_S = 30.0

#: States ``llmbench runs --prune`` removes: they hold no result anyone should read.
PRUNABLE = ("failed", "interrupted")


def state(run: RunInfo, *, now: datetime | None = None) -> str:
    """``run.status``, except that a ``running`` run whose process is gone is ``interrupted``."""
    if run.status != "running":
        return run.status
    if run.heartbeat_at is None:  # written before heartbeats existed: no process can still own it
        return "interrupted"
    if run.host == socket.gethostname() and run.pid is not None and not _alive(run.pid):
        return "interrupted"
    age = ((now or datetime.now(UTC)) - datetime.fromisoformat(run.heartbeat_at)).total_seconds()
    return "running" if age < STALE_AFTER_S else "interrupted"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True
