"""The response cache in front of every adapter (SQLite, one row per answered request).

The key covers everything that determines an answer: the adapter's identity (model id,
revision or weights hash, backend, dtype, and every adapter option not declared neutral —
``models.base.answer_options`` derives that list from the options model, so a new option is
keyed unless declared neutral on purpose), the task name and version, and the full rendered
request (prompt, continuations, decoding settings, stride: every task setting reaches a model
only through it). Failed responses are never cached.

Several ``llmbench run`` processes share one cache file, so it never holds a write lock
while a model works: answers are buffered in memory and written in small groups (every
``commit_every`` answers or ``commit_seconds``), each group one short ``BEGIN IMMEDIATE``
transaction, retried when another process holds the lock longer than the busy timeout.
Reads run outside any transaction (WAL: they never wait for a writer). A run killed with
-9 loses at most its last unwritten group; the same command resumes from there.

A cache that cannot be used (``LLMBENCH_CACHE`` naming a file, a file that is not a
database or is damaged) is one ``CacheError`` line. It is not silently rebuilt: several
processes may share the file, and moving it aside under a running job would lose that job's
answers; deleting it is safe (it only holds answers that will be recomputed), and the
message says so.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from llmbench.errors import UserError, one_line
from llmbench.types import Request, Response

#: How long one cache write waits for another process's write before retrying.
BUSY_TIMEOUT_S = 30.0
#: Retries of a write after the busy timeout (with back-off) before giving up.
WRITE_ATTEMPTS = 5


class CacheError(UserError):
    """The response cache cannot be opened or written; one line with the fix."""


def default_cache_dir() -> Path:
    from llmbench.paths import cache_root  # the one rule, shared with the GGUF and arch caches

    return cache_root()


def request_key(identity: Mapping[str, Any], task: str, task_version: int, request: Request) -> str:
    blob = json.dumps(
        {"model": identity, "task": task, "task_version": task_version,
         "request": request.model_dump(mode="json", exclude={"sample_id"})},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def request_keys(identity: Mapping[str, Any], task: str, task_version: int, requests: Iterable[Request]) -> list[str]:
    """``request_key`` of each request, byte for byte, with the model identity and the task
    encoded once instead of once per request (the driver computes a key per sample)."""

    def dumps(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    # sort_keys orders the top level model, request, task, task_version: the request goes
    # between the encoded identity and the encoded task.
    head = '{"model":' + dumps(identity) + ',"request":'
    tail = ',"task":' + dumps(task) + ',"task_version":' + dumps(task_version) + "}"
    configs: dict[int, str] = {}  # each decoding setting encoded once (the requests keep them alive)

    def encoded(r: Request) -> str:
        if type(r) is not Request or not isinstance(r.prompt, str) or not _FAST_REQUEST:
            return dumps(r.model_dump(mode="json", exclude={"sample_id"}))
        config = configs.get(id(r.config))
        if config is None:
            config = configs[id(r.config)] = dumps(r.config.model_dump(mode="json"))
        conts = "null" if r.continuations is None else "[" + ",".join(map(_text, r.continuations)) + "]"
        stride = "" if r.stride is None else ',"stride":' + dumps(r.stride)
        return (f'{{"config":{config},"context":{_text(r.context)},"continuations":{conts},'
                f'"input":{_text(r.input)},"kind":{_text(r.kind)},"prompt":{_text(r.prompt)}{stride}}}')

    return [hashlib.sha256((head + encoded(r) + tail).encode()).hexdigest() for r in requests]


#: ``request_keys`` writes a text-prompt request's JSON itself, field by field in sorted order
#: (the driver computes a key per sample; ``model_dump`` plus a sorted ``json.dumps`` took
#: most of it), only while ``Request`` has exactly these fields: a new field takes the
#: general path until it is added here (a test compares both paths).
_FAST_FIELDS = frozenset({"sample_id", "config", "context", "continuations", "input", "kind", "prompt", "stride"})
_FAST_REQUEST = frozenset(Request.model_fields) == _FAST_FIELDS


def _text(value: str | None) -> str:
    """A string (or None) exactly as ``json.dumps`` writes it (ASCII, escaped)."""
    return "null" if value is None else json.encoder.encode_basestring_ascii(value)


#: Rows per INSERT statement. ``executemany`` steps SQLite once per row and lets go of the GIL
#: around each step; while the runner's builder and scorer threads compute, taking it back
#: waited for their switch interval every time: 50,000 answers took 4.2 s of cache writes in
#: the driver (0.7 s alone). One multi-row statement steps once (SQLite allows 32,766
#: parameters since 3.32; 256 rows take 512).
ROWS_PER_INSERT = 256


@functools.lru_cache(maxsize=8)
def _insert_sql(rows: int) -> str:
    return "INSERT OR REPLACE INTO responses (key, response) VALUES " + ",".join(["(?, ?)"] * rows)


class ResponseCache:
    """The cache of one process. The runner looks answers up from the thread that builds the
    next chunk while the model's answers are written from another, so every use of the one
    connection holds ``_lock`` (short: one lookup of up to 500 keys, or one group's write)."""

    def __init__(self, path: Path | None = None, *, commit_every: int = 256, commit_seconds: float = 1.0):
        self.path = path or default_cache_dir() / "responses.sqlite"
        self._lock = threading.Lock()
        self._pending: list[tuple[str, str]] = []
        self._last_commit = time.monotonic()
        self._commit_every = commit_every
        self._commit_seconds = commit_seconds
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise CacheError(f"response cache folder '{folder}' is not a folder (a file is in the way) — point "
                             "LLMBENCH_CACHE at a folder, or use --no-cache") from None
        except OSError as err:
            raise CacheError(f"cannot create the response cache folder '{folder}': {err.strerror} — point "
                             "LLMBENCH_CACHE at a writable folder, or use --no-cache") from None
        if self.path.is_dir():
            raise CacheError(f"response cache '{self.path}' is a folder — remove it, or use --no-cache")
        with self._errors():
            # isolation_level=None: no implicit transactions; writes open their own, briefly.
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                                         isolation_level=None)
            self._retry(lambda: self._conn.execute("PRAGMA journal_mode=WAL"))
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._retry(lambda: self._conn.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL)"))

    def get_many(self, keys: Iterable[str]) -> dict[str, Response]:
        keys = list(keys)
        found: dict[str, Response] = {}
        with self._errors():
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                with self._lock:
                    rows = self._conn.execute(
                        f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk).fetchall()
                for key, blob in rows:
                    found[key] = Response.model_validate_json(blob).model_copy(update={"cached": True})
        return found

    def put(self, key: str, response: Response) -> None:
        """Remember an answer; written with the next group (no lock is taken here)."""
        if response.error is not None:
            return
        # ``cached`` is never stored (a cached answer read back says so itself)
        self._pending.append((key, response.model_dump_json(exclude_defaults=True, exclude={"cached"})))
        if len(self._pending) >= self._commit_every or time.monotonic() - self._last_commit > self._commit_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the buffered answers in one short transaction."""
        rows, self._pending = self._pending, []
        self._last_commit = time.monotonic()
        if not rows:
            return

        def write() -> None:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(rows), ROWS_PER_INSERT):
                    part = rows[start:start + ROWS_PER_INSERT]
                    self._conn.execute(_insert_sql(len(part)), [value for row in part for value in row])
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

        with self._errors(), self._lock:
            self._retry(write)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._conn.close()

    @staticmethod
    def _retry(fn: Callable[[], object]) -> None:
        for attempt in range(WRITE_ATTEMPTS):
            try:
                fn()
                return
            except sqlite3.OperationalError as err:
                if ("locked" not in str(err) and "busy" not in str(err)) or attempt == WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(0.1 * 2**attempt)

    def _errors(self) -> _CacheErrors:
        return _CacheErrors(self.path)


class _CacheErrors:
    """sqlite3 errors of the cache as one ``CacheError`` line that names the file and the fix."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, _tb: object) -> None:
        if err is None or not isinstance(err, sqlite3.Error):
            return
        text = one_line(err, 200)
        low = text.lower()
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            fix = "it is damaged or not a cache file — delete it (it only holds cached answers, which are " \
                  "recomputed) or use --no-cache"
        elif "readonly" in low or "read-only" in low:
            fix = "it is read-only — make it writable, point LLMBENCH_CACHE elsewhere, or use --no-cache"
        elif "locked" in low or "busy" in low:
            fix = "another process kept it locked — try again, or use --no-cache"
        else:
            fix = "point LLMBENCH_CACHE at another folder, or use --no-cache"
        raise CacheError(f"response cache '{self.path}': {text} — {fix}") from err
