"""The results store: runs, per-sample records and metric values in a real database.

SQLite at ``results/llmbench.db`` by default; any SQLAlchemy URL (e.g. PostgreSQL) for
a shared server. A run row is written first with status ``running``; its per-sample
rows are appended as the run streams, and its metrics and final status are written in ONE
transaction at the end, so a crash or a kill never leaves a half-written run looking
complete (it stays ``running``, which readers show as ``interrupted`` once its process is
gone; see ``lifecycle``).

Built for several ``llmbench run`` processes on one store: SQLite in WAL mode (readers never
block the writer) with a busy timeout, every write a short transaction of its own (never one
held across a model batch), and a schema that is created or upgraded under a lock
(``schema``). Every way opening can fail (no such folder, not a database, read-only, a newer
schema, a missing driver) is one ``StoreError`` line, raised when the store is opened —
which the CLI does before any model loads.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import sqlalchemy as sa

from llmbench.errors import one_line, validation_problem
from llmbench.store import lifecycle, schema
from llmbench.store.errors import StoreError
from llmbench.store.models import (
    RunInfo,
    SampleRecord,
    Status,
    StoredMetric,
    metadata,
    metrics_table,
    runs_table,
    samples_table,
)
from llmbench.store.refs import resolve_run
from llmbench.types import MetricValue

DEFAULT_DB = Path("results/llmbench.db")
#: The environment variable that names the store for every command and the Python API.
STORE_ENV = "LLMBENCH_STORE"

#: How long a SQLite write waits for another process's write to finish before giving up.
#: Writes are short (one chunk of sample rows at most), so this is a generous bound.
BUSY_TIMEOUT_S = 60.0
#: Seconds a PostgreSQL connection attempt may take (a port that never answers).
CONNECT_TIMEOUT_S = 5

_INSERT_ROWS = 2000
_T = TypeVar("_T")


def now_iso() -> str:
    # milliseconds: runs made in the same second (a suite, a test) still sort in the order made
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def url_of(location: str | Path) -> str:
    """The SQLAlchemy URL for ``--store``: a path means SQLite; ``postgresql://`` (and
    ``postgres://``) mean psycopg 3, the driver of the ``postgres`` extra, not SQLAlchemy's
    default psycopg2."""
    text = str(location)
    for plain in ("postgresql://", "postgres://"):
        if text.startswith(plain):
            return "postgresql+psycopg://" + text[len(plain):]
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser()}"


def shown(location: str | Path) -> str:
    """``location`` for a message: a URL without its password."""
    text = str(location)
    if "://" not in text:
        return f"'{text}'"
    try:
        return f"'{sa.engine.make_url(text).render_as_string(hide_password=True)}'"
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        return "(unparsable URL)"


def store_location(given: str | Path | None = None) -> str:
    """Where the store is: ``given`` (``--store``, ``store=``), else ``$LLMBENCH_STORE``, else
    ``results/llmbench.db``. The CLI and the Python API both ask here, so a run made by
    either lands where the other looks."""
    if given is not None and str(given):
        return str(given)
    return os.environ.get(STORE_ENV) or str(DEFAULT_DB)


def open_existing(location: str | Path | None = None) -> ResultStore:
    """The store a read command (``runs``, ``show``, ``report``, ``select``, ``gate``,
    ``load_runs``) reads: it must exist (a mistyped ``--store`` is an error, never a new
    empty database) and hold llmbench's tables. It is opened read-only in spirit: nothing
    is created, migrated away from under a writer, or switched to WAL, so a read-only file
    can be read. A file with no tables is named for what it usually is: a copy of a store
    taken without its ``-wal`` file while the data still sat there."""
    where = store_location(location)
    db = ResultStore(where, create=False)
    if db._empty:
        db.close()
        raise StoreError(f"results store {shown(where)} has no llmbench tables — it is empty, or a copy made "
                         f"without its '-wal' file (copy the store after the writing command has finished, "
                         f"or copy '{where}-wal' beside it)")
    return db


class ResultStore:
    """One results database. ``create=False`` (read commands) refuses a store that does not
    exist instead of creating an empty one; ``create=True`` (writers) also checks up front
    that the store can be written."""

    def __init__(self, location: str | Path = DEFAULT_DB, *, create: bool = True) -> None:
        self.location = str(location)
        self.where = shown(location)
        self.url = url_of(location)
        if "://" not in self.location:
            _check_path(Path(self.location).expanduser(), create=create, where=self.where)
        elif self.url.split("?")[0] in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
            raise StoreError(f"results store {self.where} is an in-memory database: every run would be lost "
                             "when the command ends — give a file path, e.g. results/llmbench.db")
        with _store_errors(self.where):
            self.engine = _engine(self.url, self.where, wal=create)
            # An empty database opened by a reader stays empty: a store with no runs.
            self._empty = not schema.ensure_current(self.engine, self.where, create=create)
            if create:
                self._probe_write()

    def _probe_write(self) -> None:
        """Write one row and roll it back: a read-only file, folder, mount, URI (``mode=ro``)
        or database role fails here, before a model loads, not at the first result. (Taking
        the write lock alone is not enough: SQLite grants it to a read-only WAL connection.)"""
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
            conn.rollback()

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One short write transaction, with the store's one-line errors."""
        with _store_errors(self.where), self.engine.begin() as conn:
            yield conn

    def _retrying(self, fn: Callable[[sa.Connection], _T]) -> _T:
        """Run ``fn`` in a write transaction, again (with back-off) when SQLite reports the
        store busy despite the busy timeout, e.g. a WAL snapshot that went stale."""
        for attempt in range(6):
            try:
                with self._write() as conn:
                    return fn(conn)
            except StoreError as err:
                if not isinstance(err.__cause__, sa.exc.OperationalError) or not _busy(err.__cause__) \
                        or attempt == 5:
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    # -- writing ------------------------------------------------------------------------
    def begin_run(self, info: RunInfo) -> None:
        """Insert the run as ``running``, stamped with this process (host, pid) and a first
        heartbeat, so readers can tell it live from interrupted."""
        row = info.model_dump()
        row.update(host=info.host or socket.gethostname(), pid=info.pid or os.getpid(),
                   heartbeat_at=info.heartbeat_at or now_iso())
        self._retrying(lambda conn: conn.execute(runs_table.insert().values(**row)))

    def add_samples(self, run_id: str, samples: Sequence[SampleRecord]) -> None:
        """Append per-sample rows to a run that is still ``running`` (one transaction, which
        also moves the run's heartbeat).

        The runner streams a large run chunk by chunk so it never holds every record; the
        rows of an unfinished run are there but the run does not look complete until
        ``finish_run`` flips its status, and every reader skips or flags ``running`` runs.
        """
        if not samples:
            return

        def write(conn: sa.Connection) -> None:
            self._insert_samples(conn, run_id, samples)
            conn.execute(runs_table.update().where(runs_table.c.id == run_id).values(heartbeat_at=now_iso()))

        self._retrying(write)

    def heartbeat(self, run_id: str) -> None:
        """Mark the run as alive now (one tiny autocommitted UPDATE)."""
        self._retrying(lambda conn: conn.execute(
            runs_table.update().where(runs_table.c.id == run_id).values(heartbeat_at=now_iso())))

    def finish_run(
        self,
        run_id: str,
        *,
        status: Status,
        metrics: Sequence[StoredMetric],
        counts: dict[str, Any],
        samples: Sequence[SampleRecord] = (),
        notes: Sequence[str] | None = None,
    ) -> None:
        """Write the metrics, counts and final status (plus any last ``samples``, and the
        run's ``notes`` unless None: then they stay as ``begin_run`` wrote them) atomically."""
        with self._write() as conn:
            conn.execute(metrics_table.delete().where(metrics_table.c.run_id == run_id))
            self._insert_samples(conn, run_id, samples)
            if metrics:
                conn.execute(metrics_table.insert(), [
                    {"run_id": run_id, "metric": m.metric, "metric_args": m.metric_args,
                     **m.value.model_dump()} for m in metrics
                ])
            now = now_iso()
            conn.execute(runs_table.update().where(runs_table.c.id == run_id).values(
                status=status, finished_at=now, heartbeat_at=now, **counts,
                **({} if notes is None else {"notes": list(notes)})))

    @staticmethod
    def _insert_samples(conn: sa.Connection, run_id: str, samples: Sequence[SampleRecord]) -> None:
        """One executemany per slice of rows, in the caller's transaction.

        The rows go to the driver as plain tuples with their JSON columns encoded here
        (``json.dumps``, as SQLAlchemy's JSON type would): the driver writes thousands of
        rows per second, and a per-row ``model_dump`` plus SQLAlchemy's per-row parameter
        processing cost more than the database's own insert. In slices: one executemany
        over 100k rows would hold every row's parameters at once (hundreds of MB)."""
        if not samples:
            return
        sql = _samples_insert_sql(conn.dialect)
        for start in range(0, len(samples), _INSERT_ROWS):
            conn.exec_driver_sql(sql, [_sample_row(run_id, s) for s in samples[start:start + _INSERT_ROWS]])

    def mark(self, run_id: str, status: Status, reason: str | None = None) -> None:
        """Set a final status (``failed``/``interrupted``) and why, e.g. after an error."""
        now = now_iso()
        self._retrying(lambda conn: conn.execute(runs_table.update().where(runs_table.c.id == run_id).values(
            status=status, reason=None if reason is None else one_line(reason, 1000),
            finished_at=now, heartbeat_at=now)))

    def prune(self, *, dry_run: bool = False) -> list[RunInfo]:
        """Delete the runs that hold no usable result — ``failed`` and ``interrupted`` (a
        ``running`` run whose process is gone) — with their samples and metrics, in one
        transaction. Never a ``complete`` or ``incomplete`` run, never a live one."""
        doomed = [r for r in self.runs() if lifecycle.state(r) in lifecycle.PRUNABLE]
        if not dry_run:
            # re-checked in the transaction: a run that finished meanwhile stays, whole
            self._delete([r.id for r in doomed], statuses=("running", *lifecycle.PRUNABLE))
        return doomed

    def delete(self, run_ids: Sequence[str]) -> None:
        """Delete these runs with their samples and metrics, in one transaction (what
        ``llmbench runs --rm`` does after resolving a reference; a live run is refused there)."""
        self._delete(list(run_ids))

    def _delete(self, ids: list[str], *, statuses: tuple[str, ...] | None = None) -> None:
        """Delete runs, samples and metrics in one transaction, 500 ids per statement. With
        ``statuses``, only the runs whose status is still one of them, read in that transaction,
        lose anything: a run that moved on keeps its row, samples and metrics."""

        def delete(conn: sa.Connection) -> None:
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                if statuses is not None:
                    part = list(conn.execute(sa.select(runs_table.c.id).where(
                        runs_table.c.id.in_(part), runs_table.c.status.in_(statuses))).scalars())
                conn.execute(samples_table.delete().where(samples_table.c.run_id.in_(part)))
                conn.execute(metrics_table.delete().where(metrics_table.c.run_id.in_(part)))
                conn.execute(runs_table.delete().where(runs_table.c.id.in_(part)))

        if ids:
            self._retrying(delete)

    # -- reading ------------------------------------------------------------------------
    def runs(self, *, task: str | None = None, model: str | None = None,
             tag: str | None = None, status: str | None = None) -> list[RunInfo]:
        if self._empty:
            return []
        q = sa.select(runs_table).order_by(runs_table.c.created_at, runs_table.c.id)
        if task:
            q = q.where(runs_table.c.task == task)
        if model:
            q = q.where(runs_table.c.model == model)
        if status:
            q = q.where(runs_table.c.status == status)
        with _store_errors(self.where), self.engine.connect() as conn:
            rows = [RunInfo.model_validate(dict(r._mapping)) for r in conn.execute(q)]
        return [r for r in rows if tag is None or tag in r.tags]

    def run(self, ref: str) -> RunInfo:
        """The one run ``ref`` names: its id or a unique prefix of it (an ambiguous prefix is
        an error listing the candidates, never a silent pick)."""
        return resolve_run(self, ref)

    def metrics(self, run_id: str) -> list[StoredMetric]:
        if self._empty:
            return []
        q = sa.select(metrics_table).where(metrics_table.c.run_id == run_id)
        with _store_errors(self.where), self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        fields = set(MetricValue.model_fields)
        return [StoredMetric(value=MetricValue(**{k: v for k, v in r.items() if k in fields}),
                             metric=r["metric"], metric_args=r["metric_args"] or {}) for r in rows]

    def samples(self, run_id: str) -> list[SampleRecord]:
        if self._empty:
            return []
        q = sa.select(samples_table).where(samples_table.c.run_id == run_id).order_by(samples_table.c.idx)
        with _store_errors(self.where), self.engine.connect() as conn:
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

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database file, so the file alone (``cp
        llmbench.db copy.db``) holds every run. Best effort: a reader holding an old
        snapshot leaves part of the log for the next checkpoint, and a read-only store has
        nothing to fold."""
        if self.engine.dialect.name != "sqlite" or self._empty:
            return
        with contextlib.suppress(sa.exc.SQLAlchemyError), self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Checkpoint (see ``checkpoint``) and release the connections; every command that
        wrote to the store calls this when it finishes."""
        self.checkpoint()
        self.engine.dispose()


#: The samples table's columns in insert order, and which of them hold JSON.
_SAMPLE_COLUMNS = tuple(c.name for c in samples_table.columns)
_JSON_COLUMNS = frozenset(c.name for c in samples_table.columns if isinstance(c.type, sa.JSON))


def _samples_insert_sql(dialect: sa.Dialect) -> str:
    """``INSERT INTO samples (...) VALUES (...)`` in the driver's own parameter style
    (SQLite ``?``, psycopg ``%s``); a JSON column's text is cast to JSON where the database
    has a JSON type (PostgreSQL), and stored as the text itself in SQLite."""
    quote = dialect.identifier_preparer.quote
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if mark is None:
        raise AssertionError(f"no insert for the parameter style {dialect.paramstyle}")
    cast = dialect.name != "sqlite"
    values = [f"CAST({mark} AS JSON)" if cast and name in _JSON_COLUMNS else mark for name in _SAMPLE_COLUMNS]
    return f"INSERT INTO {quote(samples_table.name)} ({', '.join(quote(n) for n in _SAMPLE_COLUMNS)}) " \
           f"VALUES ({', '.join(values)})"


def _sample_row(run_id: str, record: SampleRecord) -> tuple[Any, ...]:
    """A record as the insert's parameters: what ``{"run_id": ..., **record.model_dump()}``
    bound through the table's types gives, without building the dict."""
    row: list[Any] = []
    for name in _SAMPLE_COLUMNS:
        value = run_id if name == "run_id" else getattr(record, name)
        if name in _JSON_COLUMNS:
            value = _json_text(value.model_dump() if isinstance(value, pydantic.BaseModel) else value)
        elif isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
            value = _SURROGATE.sub("\ufffd", value)
        row.append(value)
    return tuple(row)


#: A lone UTF-16 surrogate: a Python string may hold one (an API's JSON "\ud800"), UTF-8 text
#: cannot, and the database driver failed the whole insert on it. A text column stores U+FFFD
#: in its place (what a UTF-8 decoder shows for bytes it cannot read); JSON columns keep it
#: escaped, exactly.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: JSON as ``json.dumps`` writes it for the database (NaN and ±Infinity as constants).
_JSON = pydantic.TypeAdapter(Any, config=pydantic.ConfigDict(ser_json_inf_nan="constants"))


def _json_text(value: Any) -> str:
    """``json.dumps(value)`` as the database reads it back — the same values, NaN and
    ±Infinity included — written by pydantic's serializer in one call (compact, UTF-8 kept):
    the driver stores three JSON columns per sample, and ``json.dumps`` took 6 µs of the GIL
    per sample where this takes 1. Text that UTF-8 cannot hold (a lone surrogate) and values
    the serializer does not know go through ``json.dumps`` as before."""
    try:
        return _JSON.dump_json(value).decode()
    except ValueError:  # pydantic's serialization error, UnicodeEncodeError
        return json.dumps(value)


def _check_path(path: Path, *, create: bool, where: str) -> None:
    """The cheap checks on a SQLite path, each with its own fix."""
    if path.is_dir():
        raise StoreError(f"results store {where} is a folder — give a file path, e.g. {path / 'llmbench.db'}")
    if not path.exists():
        if not create:
            raise StoreError(f"no results store at {where} — run `llmbench run ...` first or check --store")
        parent = path.parent
        if not parent.exists():
            if path == DEFAULT_DB:  # the default's own folder: ours to create
                parent.mkdir(parents=True, exist_ok=True)
            else:
                raise StoreError(f"results store {where}: folder '{parent}' does not exist — create it "
                                 f"(mkdir -p '{parent}') or give another --store")
        elif not parent.is_dir():
            raise StoreError(f"results store {where}: '{parent}' is not a folder — give another --store")
    elif create and not os.access(path, os.W_OK):
        raise StoreError(f"results store {where} is read-only — make it writable or give another --store")


def _engine(url: str, where: str, *, wal: bool) -> sa.Engine:
    """``wal``: switch a SQLite store to WAL (a writer's job: a reader never writes to the file)."""
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
            sa.event.listen(engine, "connect", _sqlite_pragmas if wal else _sqlite_reader_pragmas)
            return engine
        # A server that never answers (a firewalled port) would hold a command for minutes:
        # libpq's connect_timeout gives up after CONNECT_TIMEOUT_S, as one StoreError line.
        args = {"connect_timeout": CONNECT_TIMEOUT_S} if url.startswith("postgres") else {}
        return sa.create_engine(url, pool_pre_ping=True, connect_args=args)
    except sa.exc.NoSuchModuleError:
        raise StoreError(f"results store {where}: unknown database kind — use a file path or "
                         "postgresql://USER@HOST/DB") from None
    except ImportError as err:
        raise StoreError(f"results store {where} needs the database driver '{err.name or err}', which is not "
                         "installed — pip install 'llmbench[postgres]' (psycopg) for postgresql://") from None
    except (sa.exc.ArgumentError, ValueError) as err:  # a malformed URL (port 'abc', bad query)
        raise StoreError(f"results store {where} is not a valid database URL ({err}) — use a file path or "
                         "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB") from None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    for attempt in range(20):
        try:
            # WAL: readers never block the writer and the writer never blocks readers.
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as err:
            if "readonly" in str(err) or "read-only" in str(err):
                break  # a read-only store keeps its journal mode; writing is refused later
            if not _busy(err) or attempt == 19:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_reader_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _busy(err: BaseException) -> bool:
    text = str(err).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


@contextmanager
def _store_errors(where: str) -> Iterator[None]:
    """Database errors as one ``StoreError`` line that says what to do."""
    try:
        yield
    except sa.exc.IntegrityError as err:
        column = _foreign_required_column(err)
        if column is None:
            raise  # a bug in llmbench, not something the user can fix
        raise StoreError(f"results store {where} has a required column '{column}' that llmbench does not write "
                         "(the store was changed by another program) — drop that column or give another "
                         "--store") from err
    except (StoreError, sa.exc.DataError, sa.exc.ProgrammingError):
        raise  # the last two are bugs in llmbench, not something the user can fix
    except pydantic.ValidationError as err:  # a row llmbench did not write (a tags value of the wrong type)
        loc, _, text = validation_problem(err)
        raise StoreError(f"results store {where} holds a row llmbench cannot read ({loc}: {text}) — it was "
                         "edited by another program; restore a copy or give another --store") from err
    except sa.exc.SQLAlchemyError as err:
        raise StoreError(_describe(err, where)) from err
    except ImportError as err:
        raise StoreError(f"results store {where} needs the database driver '{err.name or err}', which is not "
                         "installed — pip install 'llmbench[postgres]' (psycopg) for postgresql://") from err


def _foreign_required_column(err: sa.exc.IntegrityError) -> str | None:
    """``table.column`` when an insert failed on a NOT NULL column that is none of llmbench's
    (SQLite: "NOT NULL constraint failed: runs.x"; PostgreSQL: 'null value in column "x" of
    relation "runs"'), else None."""
    text = str(getattr(err, "orig", None) or err)
    found = re.search(r"NOT NULL constraint failed: (\w+)\.(\w+)", text) or re.search(
        r'null value in column "(\w+)" of relation "(\w+)"', text)
    if found is None:
        return None
    table, column = found.groups() if "constraint failed" in text else found.groups()[::-1]
    known = metadata.tables.get(table)
    if known is not None and column in known.columns:
        return None
    return f"{table}.{column}"


def _describe(err: sa.exc.SQLAlchemyError, where: str) -> str:
    orig = getattr(err, "orig", None) or err
    text = one_line(orig, 300)
    low = text.lower()
    if "readonly" in low or "read-only" in low:
        return f"results store {where} is read-only — make it writable or give another --store"
    if "file is not a database" in low or "malformed" in low:
        return f"results store {where} is not a SQLite database (or is damaged): {text} — check --store"
    if "unable to open database file" in low:
        return f"cannot open results store {where}: {text} — check that its folder exists and is writable"
    if _busy(orig):
        return (f"results store {where} stayed locked by another process for {BUSY_TIMEOUT_S:.0f} s: {text} "
                "— try again when the other run has finished")
    if "no such table" in low or "no such column" in low or "undefinedcolumn" in low:
        return f"results store {where} does not have the expected tables: {text} — is it an llmbench store?"
    return f"results store {where}: {type(orig).__name__}: {text} — check --store"


def group_by_batch(runs: Iterable[RunInfo]) -> dict[str, list[RunInfo]]:
    out: dict[str, list[RunInfo]] = {}
    for r in runs:
        out.setdefault(r.batch_id, []).append(r)
    return out
