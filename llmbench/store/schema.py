"""The store's schema version: read it, refuse a newer one, upgrade an older one in place.

Migrations are Alembic scripts shipped inside the package (``migrations/versions``) and run
programmatically on the store's own connection; no ``alembic.ini`` is needed. Creation and
upgrade are race-free: the version is read again *under a lock* that only one process holds
at a time (``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on PostgreSQL),
and the DDL runs in that same transaction, so eight processes opening one brand-new store
create it exactly once and the other seven find it at the newest revision.

Alembic (with mako and pygments, about 0.1 s) is imported only when a store is upgraded or
at a revision other than ``HEAD``: opening a current store, what every command does, is one
SELECT, and an empty database gets the code's tables and the ``HEAD`` stamp directly, which
is Alembic's own recipe for a new database (``create_all``, then ``stamp head``). Tests keep
``HEAD`` equal to the newest migration script and the migrations' schema equal to the code's
(Alembic's ``compare_metadata`` finds no difference), so both ways give the same store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from llmbench.store.errors import StoreError
from llmbench.store.models import metadata

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")

#: The revision a store made before versioning (tables, no ``alembic_version``) is at.
LEGACY_REVISION = "0001"

#: The newest revision in ``migrations/versions`` (a test checks it against Alembic's own
#: answer, so adding a migration without moving this fails the suite).
HEAD = "0004"

#: Any 64-bit number names the PostgreSQL advisory lock; this one spells "llmb".
_PG_LOCK_KEY = 0x6C6C6D62

#: Alembic's version table, declared as Alembic creates it (``alembic.runtime.migration``).
_version_table = sa.Table(
    "alembic_version", sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


@cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def script_head() -> str:
    """The newest revision as Alembic reads it from the shipped scripts (what ``HEAD`` must be)."""
    rev = _script().get_current_head()
    assert rev is not None, "no migrations shipped"
    return rev


def known_revisions() -> set[str]:
    return {s.revision for s in _script().walk_revisions()}


def current_revision(conn: sa.Connection) -> str | None:
    """The store's revision; ``LEGACY_REVISION`` for an unversioned store with our tables,
    ``None`` for an empty database."""
    tables = set(sa.inspect(conn).get_table_names())
    if "alembic_version" in tables:
        versions = [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
        if len(versions) == 1:
            return str(versions[0])
        if not versions and not tables & {"runs", "samples", "metrics"}:
            return None
        raise StoreError(f"the store's schema version is unreadable ({len(versions)} rows in alembic_version)"
                         " — restore it from a backup")
    if "runs" in tables:
        return LEGACY_REVISION
    return None


def check_known(rev: str | None, where: str) -> None:
    """Refuse a store written by a newer llmbench: its columns mean things this code does not
    know, and writing to it could corrupt the newer code's runs."""
    if rev is not None and rev != HEAD and rev not in known_revisions():
        raise StoreError(f"results store {where} has schema revision {rev}, newer than this llmbench knows "
                         f"(up to {HEAD}) — upgrade llmbench (pip install -U llmbench) or use another --store")


def ensure_current(engine: sa.Engine, where: str, *, create: bool = True) -> bool:
    """Bring the store to ``HEAD``: create it when empty, upgrade it when older, refuse it
    when newer. The common case (already current) is one read and takes no lock. With
    ``create=False`` an empty database is left alone; returns whether the store has tables."""
    with engine.connect() as conn:
        rev = current_revision(conn)
    check_known(rev, where)
    if rev == HEAD:
        return True
    if rev is None and not create:
        return False
    with _migration_lock(engine) as conn:
        rev = current_revision(conn)  # again: another process may have migrated meanwhile
        check_known(rev, where)
        if rev == HEAD:
            return True
        if rev is None:  # empty: the code's tables at HEAD, as the migrations would leave them
            metadata.create_all(conn)
            _version_table.create(conn)
            conn.execute(_version_table.insert().values(version_num=HEAD))
            return True
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        if rev is not None and not sa.inspect(conn).has_table("alembic_version"):
            command.stamp(config, rev)  # an unversioned store made by older code
        command.upgrade(config, "head")
    return True


@contextmanager
def _migration_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection inside a transaction that no other process can be in at the same time;
    committed on success, rolled back on error."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # pysqlite opens transactions lazily and never around DDL: take the write lock
            # ourselves, so the version check and the DDL are one atomic step.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
