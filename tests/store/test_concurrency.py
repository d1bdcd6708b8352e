"""Eight ``llmbench run`` processes at once on one results store and one response cache.

Before: with four processes, 6 of 12 runs completed over 3 trials (``database is locked``
from a cache that held its write transaction open between commits, and ``table runs already
exists`` when processes created a new store together). Here: 8 processes per trial — four
baseline runs, two tiny local GPT-2 runs and two runs of a slow fake OpenAI-compatible API
(one answer every 0.15 s, so it writes the cache while the others do) — 3 trials on SQLite
(the first on a brand-new store and cache) and 3 on PostgreSQL. Every run must complete,
with exactly its samples (none lost, none twice) and the same metrics as a sequential run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import llmbench
from llmbench.store import ResultStore

pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from fault_server import ServerThread, fake_openai_app  # noqa: E402

N_ROWS = 24
TRIALS = 3


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tiny_gpt2: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("concurrency")
    for name, words in (("a", ("good", "bad")), ("b", ("fine", "awful"))):
        rows = [{"id": f"{name}{i}", "text": f"{words[i % 2]} film number {i}",
                 "label": ["positive", "negative"][i % 2]} for i in range(N_ROWS)]
        (root / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
        (root / f"{name}.yaml").write_text(
            f"name: conc_{name}\nkind: classification\ndataset: {{path: {name}.jsonl}}\n"
            "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
            "metrics: [accuracy]\n")
    with ServerThread(fake_openai_app(latency_s=0.15)) as server:
        api = ["--base-url", server.url, "--model-arg", "concurrency=1"]
        jobs = [
            ["-m", "baseline:majority", "-t", "a.yaml"],
            ["-m", "baseline:random", "-t", "a.yaml"],
            ["-m", "baseline:majority", "-t", "b.yaml"],
            ["-m", "baseline:random", "-t", "b.yaml"],
            ["-m", f"hf:{tiny_gpt2}", "-t", "a.yaml"],
            ["-m", f"hf:{tiny_gpt2}", "-t", "b.yaml"],
            ["-m", "openai:fake", "-t", "a.yaml", *api],
            ["-m", "openai:fake", "-t", "b.yaml", *api],
        ]
        yield {"root": root, "jobs": jobs, "reference": {}}


def _env(root: Path, cache: Path) -> dict[str, str]:
    return {**os.environ, "LLMBENCH_CACHE": str(cache), "OPENAI_API_KEY": "EMPTY", "HF_HUB_OFFLINE": "1",
            "COLUMNS": "200", "PYTHONPATH": os.pathsep.join([str(Path(llmbench.__file__).parents[1]), *sys.path])}


def _llmbench(root: Path, cache: Path, args: list[str], store: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "llmbench", "run", *args, "--store", store, "--resamples", "50"],
                            cwd=root, env=_env(root, cache), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _key(args: list[str]) -> tuple[str, str]:
    return args[1].split("/")[-1], args[3]


def _scores(store: ResultStore, run_id: str) -> list[tuple[str, float, float | None, float | None, int]]:
    return sorted((m.value.name, m.value.value, m.value.ci_low, m.value.ci_high, m.value.n)
                  for m in store.metrics(run_id))


def _reference(world: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """Each job alone, one after another, on its own store and cache: the scores to match."""
    if not world["reference"]:
        root: Path = world["root"]
        store = str(root / "sequential.db")
        for args in world["jobs"]:
            proc = _llmbench(root, root / "sequential-cache", args, store)
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, out
        db = ResultStore(store, create=False)
        world["reference"] = {(r.model.split("/")[-1], f"{r.task.removeprefix('conc_')}.yaml"): _scores(db, r.id)
                              for r in db.runs()}
        assert len(world["reference"]) == len(world["jobs"])
    return world["reference"]


def _trials(world: dict[str, Any], store: str, cache: Path) -> int:
    """Run TRIALS rounds of all jobs at once; return how many trials had every run complete."""
    root: Path = world["root"]
    reference = _reference(world)
    seen: set[str] = set()
    good = 0
    for trial in range(TRIALS):
        started = time.monotonic()
        procs = [_llmbench(root, cache, args, store) for args in world["jobs"]]
        outputs = [p.communicate(timeout=300)[0] for p in procs]
        codes = [p.returncode for p in procs]
        assert codes == [0] * len(procs), "\n---\n".join(o[-1500:] for o, c in zip(outputs, codes, strict=True) if c)
        db = ResultStore(store, create=False)
        new = [r for r in db.runs() if r.id not in seen]
        seen.update(r.id for r in new)
        assert len(new) == len(world["jobs"]) and all(r.status == "complete" for r in new)
        for r in new:
            samples = db.samples(r.id)
            ids = [s.sample_id for s in samples]
            assert r.n_samples == N_ROWS and len(ids) == N_ROWS == len(set(ids)), r.id  # none lost, none twice
            assert [s.idx for s in samples] == list(range(N_ROWS))
            key = (r.model.split("/")[-1], f"{r.task.removeprefix('conc_')}.yaml")
            assert _scores(db, r.id) == reference[key], key
        if trial:  # the first trial filled the cache: every later answer comes from it
            assert all(r.cache_hits == N_ROWS for r in new)
        db.close()
        good += 1
        print(f"trial {trial + 1}: {len(new)} runs complete in {time.monotonic() - started:.1f} s")
    return good


def test_eight_runs_at_once_on_sqlite(world: dict[str, Any], tmp_path: Path) -> None:
    store = tmp_path / "shared.db"
    assert _trials(world, str(store), tmp_path / "cache") == TRIALS
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with sqlite3.connect(tmp_path / "cache" / "responses.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_eight_runs_at_once_on_postgresql(world: dict[str, Any], pg_server: Any, tmp_path: Path) -> None:
    assert _trials(world, pg_server.create_db(), tmp_path / "cache") == TRIALS
