"""The results store: runs, per-sample records and metrics (SQLite or PostgreSQL).

``db`` holds ``ResultStore``; ``models`` the tables and typed rows; ``schema`` the Alembic
migrations; ``lifecycle`` what a run's status means now; ``refs`` the run-reference grammar.
"""

from llmbench.store.db import (
    BUSY_TIMEOUT_S,
    DEFAULT_DB,
    STORE_ENV,
    ResultStore,
    group_by_batch,
    new_id,
    now_iso,
    open_existing,
    store_location,
    url_of,
)
from llmbench.store.errors import StoreError
from llmbench.store.lifecycle import state
from llmbench.store.models import (
    AnswerInfo,
    RunInfo,
    RunUsage,
    SampleRecord,
    Status,
    StoredMetric,
    StoredRunConfig,
    metadata,
    metrics_table,
    runs_table,
    samples_table,
)
from llmbench.store.refs import Selection, resolve, resolve_run

__all__ = [
    "BUSY_TIMEOUT_S",
    "DEFAULT_DB",
    "STORE_ENV",
    "AnswerInfo",
    "ResultStore",
    "RunInfo",
    "RunUsage",
    "SampleRecord",
    "Selection",
    "Status",
    "StoreError",
    "StoredMetric",
    "StoredRunConfig",
    "group_by_batch",
    "metadata",
    "metrics_table",
    "new_id",
    "now_iso",
    "open_existing",
    "resolve",
    "resolve_run",
    "runs_table",
    "samples_table",
    "state",
    "store_location",
    "url_of",
]
