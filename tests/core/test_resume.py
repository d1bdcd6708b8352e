"""An interrupted run (kill -9) started again with the same command resumes from the
cache, and its final scores equal an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmbench.store import ResultStore

pytestmark = pytest.mark.slow
LLMBENCH = [sys.executable, "-m", "llmbench"]


def _cached(cache_dir: Path) -> int:
    db = cache_dir / "responses.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_kill_and_resume(tiny_gpt2: Path, tmp_path: Path) -> None:
    # Large enough that even a fast CI machine is still working when the first cache commit lands
    # (commits come every 64 entries or every second).
    total = 200
    rows = [{"id": f"d{i}", "doc": f"the movie number {i} was great. " * (1 + i % 4), "sum": "the movie"}
            for i in range(total)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    task = tmp_path / "t.yaml"
    task.write_text("name: resume_demo\nkind: summarization\ndataset: {path: d.jsonl}\n"
                    "fields: {id: id, input: doc, target: sum}\n"
                    "generation: {max_new_tokens: 16}\n")
    cmd = [*LLMBENCH, "run", "-m", f"hf:{tiny_gpt2}", "-t", str(task), "--store", str(tmp_path / "db.sqlite"),
           "--model-arg", "max_batch_size=1", "--resamples", "100"]
    env = {**os.environ, "LLMBENCH_CACHE": str(tmp_path / "cache")}

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _cached(tmp_path / "cache") < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _cached(tmp_path / "cache")
    assert 1 <= done_before < total

    store = ResultStore(tmp_path / "db.sqlite")
    assert [r.status for r in store.runs()] == ["running"]  # shown as interrupted, never as complete

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    run = next(r for r in store.runs() if r.status == "complete")
    assert run.cache_hits >= done_before and run.cache_hits + run.cache_misses == total

    fresh_env = {**os.environ, "LLMBENCH_CACHE": str(tmp_path / "cache2")}
    straight_cmd = [*cmd[:-6], "--store", str(tmp_path / "db2.sqlite"), *cmd[-4:]]
    straight = subprocess.run(straight_cmd, env=fresh_env, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    ref_store = ResultStore(tmp_path / "db2.sqlite")
    ref = ref_store.runs()[0]
    assert ref.cache_hits == 0
    as_values = lambda s, rid: {m.value.name: (m.value.value, m.value.ci_low, m.value.ci_high)  # noqa: E731
                                for m in s.metrics(rid)}
    assert as_values(store, run.id) == as_values(ref_store, ref.id)
    assert [x.prediction for x in store.samples(run.id)] == [x.prediction for x in ref_store.samples(ref.id)]
