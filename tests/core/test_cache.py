"""The response cache: what its key covers, and that failures are never cached."""

from __future__ import annotations

from pathlib import Path

from llmbench.cache import ResponseCache, request_key
from llmbench.types import GenerationConfig, Request, Response

ID = {"backend": "hf", "path": "m", "weights": "abc"}
REQ = Request(sample_id="1", kind="generate", prompt="hi", config=GenerationConfig(max_new_tokens=5))


def test_key_covers_model_task_prompt_and_decoding() -> None:
    base = request_key(ID, "t", 1, REQ)
    assert base == request_key(ID, "t", 1, REQ.model_copy(update={"sample_id": "other"}))
    variants = [
        request_key({**ID, "weights": "def"}, "t", 1, REQ),
        request_key(ID, "t", 2, REQ),
        request_key(ID, "u", 1, REQ),
        request_key(ID, "t", 1, REQ.model_copy(update={"prompt": "hi!"})),
        request_key(ID, "t", 1, REQ.model_copy(update={"config": GenerationConfig(max_new_tokens=6)})),
        request_key(ID, "t", 1, REQ.model_copy(update={"config": GenerationConfig(max_new_tokens=5, temperature=0.7)})),
    ]
    assert len({base, *variants}) == 1 + len(variants)


def test_roundtrip_marks_cached_and_skips_errors(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put("k1", Response(text="out", latency_s=0.5))
    cache.put("k2", Response(error="boom"))
    cache.close()
    again = ResponseCache(tmp_path / "c.sqlite")
    got = again.get_many(["k1", "k2", "k3"])
    assert set(got) == {"k1"}
    assert got["k1"].text == "out" and got["k1"].cached and got["k1"].latency_s == 0.5


def test_no_write_lock_is_held_between_groups(tmp_path: Path) -> None:
    """Before: ``put`` opened a write transaction that stayed open until the next commit, so
    a second process writing the cache during a slow model batch waited (then failed with
    ``database is locked``). Now answers wait in memory and the file stays unlocked."""
    import sqlite3

    cache = ResponseCache(tmp_path / "c.sqlite", commit_every=64, commit_seconds=3600)
    cache.put("k1", Response(text="out"))  # buffered, below the group size
    other = sqlite3.connect(tmp_path / "c.sqlite", timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # would raise 'database is locked' if the cache held the lock
    other.execute("INSERT INTO responses VALUES ('k9', '{}')")
    other.execute("COMMIT")
    cache.flush()
    assert set(cache.get_many(["k1", "k9"])) == {"k1", "k9"}
    cache.close()


def test_a_write_waits_for_another_writer_then_succeeds(tmp_path: Path) -> None:
    import sqlite3
    import threading
    import time

    cache = ResponseCache(tmp_path / "c.sqlite", commit_every=1)
    other = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Thread(target=lambda: (time.sleep(0.5), other.execute("COMMIT")), daemon=True).start()
    cache.put("k1", Response(text="out"))  # blocks on the other writer, then commits
    assert "k1" in cache.get_many(["k1"])


def test_a_cache_that_cannot_be_used_is_one_line(tmp_path: Path) -> None:
    import pytest

    from llmbench.cache import CacheError

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(CacheError, match=r"is not a folder .* LLMBENCH_CACHE") as err:
        ResponseCache(tmp_path / "file" / "responses.sqlite")
    assert "\n" not in str(err.value)
    (tmp_path / "bad.sqlite").write_bytes(b"garbage, not SQLite" * 100)
    with pytest.raises(CacheError, match=r"bad.sqlite': file is not a database — .*delete it"):
        ResponseCache(tmp_path / "bad.sqlite")
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(CacheError, match="is a folder"):
        ResponseCache(tmp_path / "dir.sqlite")
