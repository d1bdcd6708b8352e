"""The results store: runs, per-sample records and metric values in a real database.

SQLite at ``results/llmbench.db`` by default; any SQLAlchemy URL (e.g. PostgreSQL) for
a shared server. A run row is written first with status ``running``; its per-sample
rows are appended as the run streams, and its metrics and final status are written in ONE
transaction at the end, so a crash or a kill never leaves a half-written run looking
complete (it stays ``running``, which readers show as interrupted or skip).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from llmbench.errors import UserError
from llmbench.types import MetricValue

DEFAULT_DB = Path("results/llmbench.db")

_meta = sa.MetaData()
runs_table = sa.Table(
    "runs", _meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("batch_id", sa.String(32), index=True, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("model_kind", sa.String(32), nullable=False, default="local"),
    sa.Column("model_identity", sa.JSON, nullable=False),
    sa.Column("task", sa.String(200), nullable=False, index=True),
    sa.Column("task_kind", sa.String(32), nullable=False),
    sa.Column("task_version", sa.Integer, nullable=False),
    sa.Column("task_fingerprint", sa.String(32), nullable=False),
    sa.Column("scoring_mode", sa.String(32), nullable=False),
    sa.Column("scoring_method", sa.String(64), nullable=False),
    sa.Column("primary_metric", sa.String(64), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("environment", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("n_samples", sa.Integer, default=0),
    sa.Column("n_errors", sa.Integer, default=0),
    sa.Column("cache_hits", sa.Integer, default=0),
    sa.Column("cache_misses", sa.Integer, default=0),
    sa.Column("usage", sa.JSON, nullable=False),
)
samples_table = sa.Table(
    "samples", _meta,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("sample_id", sa.String(200), nullable=False),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("prediction", sa.Text),
    sa.Column("references", sa.JSON, nullable=False),
    sa.Column("stats", sa.JSON, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("latency_s", sa.Float),
    sa.Column("prompt_tokens", sa.Integer),
    sa.Column("completion_tokens", sa.Integer),
    sa.Column("cost_usd", sa.Float),
)
metrics_table = sa.Table(
    "metrics", _meta,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("metric", sa.String(128), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("ci_low", sa.Float),
    sa.Column("ci_high", sa.Float),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("higher_is_better", sa.Boolean, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("metric_args", sa.JSON, nullable=False),
)


class RunInfo(BaseModel):
    """One stored run (a model on a task), as readers see it."""

    model_config = ConfigDict(frozen=True)

    id: str
    batch_id: str
    created_at: str
    finished_at: str | None
    status: str
    model: str
    model_kind: str
    model_identity: dict[str, Any]
    task: str
    task_kind: str
    task_version: int
    task_fingerprint: str
    scoring_mode: str
    scoring_method: str
    primary_metric: str
    config: dict[str, Any]
    environment: dict[str, Any]
    tags: list[str]
    n_samples: int = 0
    n_errors: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    usage: dict[str, Any] = Field(default_factory=dict)


class SampleRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    idx: int
    sample_id: str
    input: str
    prompt: str
    prediction: str | None
    references: list[str]
    stats: dict[str, Any]
    error: str | None = None
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None


class StoredMetric(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: MetricValue
    metric: str
    metric_args: dict[str, Any] = Field(default_factory=dict)


class StoreError(UserError):
    """The store cannot be opened or a reference does not resolve; one line."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def _url(location: str | Path) -> str:
    text = str(location)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class ResultStore:
    def __init__(self, location: str | Path = DEFAULT_DB) -> None:
        self.url = _url(location)
        try:
            self.engine = sa.create_engine(self.url)
            if self.engine.dialect.name == "sqlite":
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            _meta.create_all(self.engine)
        except sa.exc.SQLAlchemyError as err:
            raise StoreError(f"cannot open results store '{location}': {err.__class__.__name__}: "
                             f"{str(err).splitlines()[0]} — check --store") from None

    # -- writing ------------------------------------------------------------------------
    def begin_run(self, info: RunInfo) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs_table.insert().values(**info.model_dump()))

    def add_samples(self, run_id: str, samples: Sequence[SampleRecord]) -> None:
        """Append per-sample rows to a run that is still ``running`` (one transaction).

        The runner streams a large run chunk by chunk so it never holds every record; the
        rows of an unfinished run are there but the run does not look complete until
        ``finish_run`` flips its status, and every reader skips or flags ``running`` runs.
        """
        if not samples:
            return
        with self.engine.begin() as conn:
            self._insert_samples(conn, run_id, samples)

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        metrics: Sequence[StoredMetric],
        counts: dict[str, Any],
        samples: Sequence[SampleRecord] = (),
    ) -> None:
        """Write the metrics, counts and final status (plus any last ``samples``) atomically."""
        with self.engine.begin() as conn:
            conn.execute(metrics_table.delete().where(metrics_table.c.run_id == run_id))
            self._insert_samples(conn, run_id, samples)
            if metrics:
                conn.execute(metrics_table.insert(), [
                    {"run_id": run_id, "metric": m.metric, "metric_args": m.metric_args,
                     **m.value.model_dump()} for m in metrics
                ])
            conn.execute(runs_table.update().where(runs_table.c.id == run_id).values(
                status=status, finished_at=now_iso(), **counts))

    @staticmethod
    def _insert_samples(conn: sa.Connection, run_id: str, samples: Sequence[SampleRecord]) -> None:
        # In slices: one executemany over 100k rows holds every row's dict and bound
        # parameters at once (hundreds of MB).
        for start in range(0, len(samples), _INSERT_ROWS):
            conn.execute(samples_table.insert(), [{"run_id": run_id, **s.model_dump()}
                                                  for s in samples[start : start + _INSERT_ROWS]])

    def mark(self, run_id: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs_table.update().where(runs_table.c.id == run_id).values(status=status))

    # -- reading ------------------------------------------------------------------------
    def runs(self, *, task: str | None = None, model: str | None = None,
             tag: str | None = None, status: str | None = None) -> list[RunInfo]:
        q = sa.select(runs_table).order_by(runs_table.c.created_at, runs_table.c.id)
        if task:
            q = q.where(runs_table.c.task == task)
        if model:
            q = q.where(runs_table.c.model == model)
        if status:
            q = q.where(runs_table.c.status == status)
        with self.engine.connect() as conn:
            rows = [RunInfo.model_validate(dict(r._mapping)) for r in conn.execute(q)]
        return [r for r in rows if tag is None or tag in r.tags]

    def run(self, run_id: str) -> RunInfo:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs_table).where(runs_table.c.id == run_id)).first()
            if row is None:
                row = conn.execute(sa.select(runs_table).where(runs_table.c.id.startswith(run_id))).first()
        if row is None:
            raise StoreError(f"no run '{run_id}' in {self.url} — see `llmbench runs`")
        return RunInfo.model_validate(dict(row._mapping))

    def metrics(self, run_id: str) -> list[StoredMetric]:
        q = sa.select(metrics_table).where(metrics_table.c.run_id == run_id)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        fields = set(MetricValue.model_fields)
        return [StoredMetric(value=MetricValue(**{k: v for k, v in r.items() if k in fields}),
                             metric=r["metric"], metric_args=r["metric_args"] or {}) for r in rows]

    def samples(self, run_id: str) -> list[SampleRecord]:
        q = sa.select(samples_table).where(samples_table.c.run_id == run_id).order_by(samples_table.c.idx)
        with self.engine.connect() as conn:
            return [SampleRecord.model_validate({k: v for k, v in r._mapping.items() if k != "run_id"})
                    for r in conn.execute(q)]

    def export_json(self, run_id: str) -> dict[str, Any]:
        info = self.run(run_id)
        return {
            "run": info.model_dump(),
            "metrics": [m.model_dump() for m in self.metrics(info.id)],
            "samples": [s.model_dump() for s in self.samples(info.id)],
        }

    def write_json(self, run_id: str, out: Path) -> Path:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.export_json(run_id), indent=1, default=str), encoding="utf-8")
        tmp.replace(out)
        return out


_INSERT_ROWS = 2000


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def group_by_batch(runs: Iterable[RunInfo]) -> dict[str, list[RunInfo]]:
    out: dict[str, list[RunInfo]] = {}
    for r in runs:
        out.setdefault(r.batch_id, []).append(r)
    return out
