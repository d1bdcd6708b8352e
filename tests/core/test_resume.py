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


#: A model that answers whatever it is handed as ONE batch (as a local model with a large
#: batch size does): it works through the samples one by one (logging each to ``log`` as
#: it is computed) but hands them back only when the whole batch is done.
SLOW_BATCH = '''
import sys, time
from llmbench import registry
from llmbench.models.base import ModelAdapter
from llmbench.types import Response

class SlowBatch(ModelAdapter):
    supports = frozenset({"generate"})
    def __init__(self, log, per_sample, streams):
        self.name, self.log, self.per_sample = "slowbatch", log, per_sample
        self.streams_answers = streams
    def identity(self):
        return {"backend": "slowbatch"}
    def run(self, requests):
        done = []
        for i, req in enumerate(requests):
            time.sleep(self.per_sample)
            with open(self.log, "a") as out:
                out.write(req.sample_id + "\\n")
            done.append((i, Response(text=req.input, finish_reason="stop")))
            if self.streams_answers:  # each answer handed back as it is computed
                yield done.pop()
        yield from done

registry.models.register("slowbatch", lambda name, options: SlowBatch(
    options["log"], float(options["per_sample"]), str(options.get("streams")) == "1"))
from llmbench.cli.main import main
main(sys.argv[1:])
'''


@pytest.mark.parametrize("streams", [False, True])
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path, streams: bool) -> None:
    """500 samples handed to a model that answers in one batch, or to one that streams its
    answers (it gets the whole chunk at once): without checkpoints a kill loses everything
    it computed; with them, the rerun takes >= 80% of it from the cache (a streaming
    model's answers are committed as they arrive, at least every second: at 50 answers/s
    the rerun misses at most about 50 of them, where commits of 256 only would miss ~200)."""
    per_sample, kill_at = (0.02, 450) if streams else (0.01, 300)
    total = 500
    rows = [{"id": f"q{i}", "q": f"question {i}", "a": f"question {i}"} for i in range(total)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "t.yaml").write_text("name: ckpt_demo\nkind: qa\ndataset: {path: d.jsonl}\n"
                                     "fields: {id: id, input: q, target: a}\n")
    log = tmp_path / "computed.log"
    cmd = [sys.executable, "-c", SLOW_BATCH, "run", "-m", "slowbatch:x", "-t", str(tmp_path / "t.yaml"),
           "--store", str(tmp_path / "db.sqlite"), "--resamples", "0", "--checkpoint-seconds", "0.25",
           "--model-arg", f"log={log}", "--model-arg", f"per_sample={per_sample}",
           "--model-arg", f"streams={int(streams)}"]
    env = {**os.environ, "LLMBENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    computed = lambda: len(log.read_text().splitlines()) if log.exists() else 0  # noqa: E731
    while computed() < kill_at and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    answered = computed()
    assert kill_at <= answered < total

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    run = next(r for r in ResultStore(tmp_path / "db.sqlite").runs() if r.status == "complete")
    assert run.cache_hits + run.cache_misses == total
    assert run.cache_hits >= (answered - 100 if streams else 0.8 * answered), (run.cache_hits, answered)


def test_ctrl_c_says_what_was_saved_and_how_to_resume(tmp_path: Path) -> None:
    rows = [{"id": f"q{i}", "q": f"question {i}", "a": f"question {i}"} for i in range(400)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "t.yaml").write_text("name: ctrlc_demo\nkind: qa\ndataset: {path: d.jsonl}\n"
                                     "fields: {id: id, input: q, target: a}\n")
    log = tmp_path / "computed.log"
    args = ["run", "-m", "slowbatch:x", "-t", str(tmp_path / "t.yaml"), "--store", str(tmp_path / "db.sqlite"),
            "--resamples", "0", "--checkpoint-seconds", "0.25", "--model-arg", f"log={log}",
            "--model-arg", "per_sample=0.01"]
    env = {**os.environ, "LLMBENCH_CACHE": str(tmp_path / "cache")}
    # Ctrl-C as a user at a terminal sends it: a test run started in the background (`make test &`,
    # nohup) inherits SIGINT *ignored*, which the child would keep (and rightly finish its run)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_BATCH, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while (not log.exists() or len(log.read_text().splitlines()) < 100) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    saved, resume = err.strip().splitlines()[-2:]
    assert saved.startswith("interrupted — 0 run(s) stored; 'slowbatch:x · ctrlc_demo' stopped after ")
    assert saved.endswith("/400 samples (their answers are in the response cache)")
    assert resume.endswith("resume from the cache: llmbench " + " ".join(args))
    assert [r.status for r in ResultStore(tmp_path / "db.sqlite").runs()] == ["interrupted"]
