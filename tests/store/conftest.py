"""Both store backends: SQLite in a temp folder, and a real PostgreSQL server.

The PostgreSQL server is Debian's ``postgresql`` package (``make postgres``): a throwaway
cluster is ``initdb``-ed in a temp folder and started on 127.0.0.1 on a free port for the
session (as the ``postgres`` user when the tests run as root, since the server refuses to
run as root), and stopped at the end. Every test gets a database of its own. Without the
server binaries the PostgreSQL cases are skipped, never silently passed.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """A running throwaway cluster; ``url(db)`` for SQLAlchemy, ``create_db()`` for a fresh one."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="llmbench-pg-"))
        os.chmod(self.root, 0o755)  # the postgres user must reach its data folder
        self.data = self.root / "data"
        self.data.mkdir()
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.data, pw.pw_uid, pw.pw_gid)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=120)

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")
        # fsync off: a test cluster needs no durability; no unix socket, TCP on loopback only
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                  "-o", f"-h 127.0.0.1 -p {self.port} -k '' -F -c max_connections=200", "start")

    def stop(self) -> None:
        subprocess.run([*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                        "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_db(self) -> str:
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    bindir = _pg_bin()
    if bindir is None:
        missing = "no PostgreSQL server binaries (make postgres installs Debian's postgresql)"
        if os.environ.get("CI") == "true":  # CI must test the PostgreSQL backend, not skip it
            pytest.fail(f"{missing}; CI=true, so this is a failure, not a skip")
        pytest.skip(missing)
    server = PostgresServer(bindir)
    try:
        server.start()
    except subprocess.CalledProcessError as err:
        server.stop()
        pytest.fail(f"could not start PostgreSQL: {err.stderr.decode(errors='replace')[-500:]}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A location for a brand-new store on each backend (a path, or a fresh PostgreSQL DB)."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_db()
