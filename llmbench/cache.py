"""The response cache in front of every adapter (SQLite, one row per answered request).

The key covers everything that determines an answer: the adapter's identity (model id,
revision or weights hash, backend, dtype), the task name and version, and the full
rendered request (prompt, continuations, decoding settings). Entries are committed
in small groups as they arrive, so a run killed with -9 keeps all but the last moments
of its work and the same command resumes from there. Failed responses are never cached.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from llmbench.types import Request, Response


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


class ResponseCache:
    def __init__(self, path: Path | None = None, *, commit_every: int = 64, commit_seconds: float = 1.0):
        self.path = path or default_cache_dir() / "responses.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL)")
        self._pending = 0
        self._last_commit = time.monotonic()
        self._commit_every = commit_every
        self._commit_seconds = commit_seconds

    def get_many(self, keys: Iterable[str]) -> dict[str, Response]:
        keys = list(keys)
        found: dict[str, Response] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._conn.execute(
                f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk
            ):
                found[key] = Response.model_validate_json(blob).model_copy(update={"cached": True})
        return found

    def put(self, key: str, response: Response) -> None:
        if response.error is not None:
            return
        self._conn.execute(
            "INSERT OR REPLACE INTO responses (key, response) VALUES (?, ?)",
            (key, response.model_copy(update={"cached": False}).model_dump_json(exclude_defaults=True)),
        )
        self._pending += 1
        if self._pending >= self._commit_every or time.monotonic() - self._last_commit > self._commit_seconds:
            self.flush()

    def flush(self) -> None:
        self._conn.commit()
        self._pending = 0
        self._last_commit = time.monotonic()

    def close(self) -> None:
        self.flush()
        self._conn.close()
