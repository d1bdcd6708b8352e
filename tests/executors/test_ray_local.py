"""The Ray executor on one local Ray instance (2 CPUs, dashboard off, started once for the
module): results identical to the local executor, a replica killed mid-run, the driver
killed mid-run, and a worker's error reaching the console as a local run's would."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ray_helpers import assert_same_runs, served, write_task  # noqa: E402

from llmbench.cache import ResponseCache  # noqa: E402
from llmbench.cli.run import execute_plan  # noqa: E402
from llmbench.executors import get_executor  # noqa: E402
from llmbench.executors.ray import RayModel  # noqa: E402
from llmbench.plan import plan_from_suite  # noqa: E402
from llmbench.runner import ModelEntry, RunConfig, evaluate  # noqa: E402
from llmbench.store import ResultStore  # noqa: E402
from llmbench.tasks import load_task  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[str]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _quiet_console():  # type: ignore[no-untyped-def]
    from io import StringIO

    from rich.console import Console

    return Console(file=StringIO(), width=200)


def test_suite_two_models_three_tasks_identical_to_local(tiny_gpt2: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tiny models (a GPT-2 on three tasks, a majority baseline that learns from the train
    split) give the same metrics, rows and identities on 2 replicas as in one process.

    The GPT-2 runs with ``max_batch_size: 1``: a shard is a subset of the runner's chunk, so
    the requests that share a padded batch differ from a local run's, and a batched
    log-likelihood on CPU then differs in its last bits (about 1e-10; predictions and
    generations do not). Unbatched, every answer depends on its request alone. For the same
    reason the local run computes with one torch thread, as a replica with ``num_cpus`` below
    2 does (Ray sets its OMP_NUM_THREADS from ``num_cpus``): CPU reductions split over more
    threads add in another order."""
    import torch

    suite = tmp_path / "s.yaml"
    suite.write_text(textwrap.dedent(f"""
        name: ray-equal
        limit: 12
        models:
          - spec: hf:{tiny_gpt2}
            label: gpt2
            options: {{replicas: 2, num_cpus: 0.5, max_batch_size: 1}}
          - spec: baseline:majority
            options: {{replicas: 2, num_cpus: 0.25}}
            tasks: [rotten_tomatoes]
        tasks: [rotten_tomatoes, flores_en_ms, stdlib_docstrings]
    """))
    stores = {}
    for name in ("local", "ray"):
        monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / f"cache-{name}"))
        plan = plan_from_suite(suite, limit=None, full=False, seed=None, tags=(), resamples=50, extra_options={})
        if name == "ray":
            import dataclasses

            plan = dataclasses.replace(plan, executor="ray")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            assert execute_plan(plan, store=str(tmp_path / f"{name}.db"), use_cache=True, json_dir=None,
                                console=_quiet_console()) == 0
        finally:
            torch.set_num_threads(threads)
        stores[name] = ResultStore(tmp_path / f"{name}.db")
    assert len(stores["ray"].runs()) == 4
    assert assert_same_runs(stores["local"], stores["ray"]) == 3 * 12 + 12
    # the placement options are not part of the stored run
    assert all("replicas" not in r.config["model"]["options"] for r in stores["ray"].runs())


def _evaluate(task_path: Path, spec: str, options: dict, executor: str, tmp: Path, *,
              on_progress=None) -> tuple[ResultStore, str, object]:  # type: ignore[no-untyped-def]
    ex = get_executor(executor)
    adapter = ex.adapter(spec, options)
    store = ResultStore(tmp / f"{executor}.db")
    cache = ResponseCache(tmp / f"cache-{executor}")
    try:
        result = evaluate(load_task(str(task_path)), adapter, ModelEntry(spec=spec), RunConfig(n_resamples=20),
                          store=store, cache=cache, on_progress=on_progress)
    finally:
        cache.close()
    return store, result.run_id, adapter


def test_replica_killed_mid_run_completes_nothing_lost_or_duplicated(tmp_path: Path) -> None:
    n = 240
    task = write_task(tmp_path, n)
    log = tmp_path / "served.log"
    options = {"latency": 0.05, "batch": 4, "log": str(log), "replicas": 2, "num_cpus": 0.5, "shard_size": 8}
    killed: dict[str, int] = {}
    holder: dict[str, RayModel] = {}
    done = 0

    def kill_one(k: int) -> None:
        nonlocal done
        done += k
        if not killed and done >= n // 4:
            handle = holder["adapter"].handles()[0]
            _, pid = ray.get(handle.where.remote())
            killed["pid"] = pid
            ray.kill(handle, no_restart=False)  # Ray restarts it; its shard runs again

    ex = get_executor("ray")
    adapter = ex.adapter("latency:slow", options)
    assert isinstance(adapter, RayModel)
    holder["adapter"] = adapter
    store = ResultStore(tmp_path / "ray.db")
    cache = ResponseCache(tmp_path / "cache-ray")
    try:
        result = evaluate(load_task(str(task)), adapter, ModelEntry(spec="latency:slow"), RunConfig(n_resamples=20),
                          store=store, cache=cache, on_progress=kill_one)
        _, new_pid = ray.get(adapter.handles()[0].where.remote())
    finally:
        cache.close()
        adapter.close()
    assert killed and new_pid != killed["pid"], "the replica was not killed and restarted"
    assert result.status == "complete" and result.n_samples == n and result.n_errors == 0
    rows = store.samples(result.run_id)
    assert sorted(r.idx for r in rows) == list(range(n))  # every sample once
    assert sum(adapter.log.answered.values()) == n  # the driver received each answer once
    assert {pid for _, pid in served(log)} >= {killed["pid"], new_pid}
    ref_store, ref_id, _ = _evaluate(task, "latency:slow", {"batch": 4}, "local", tmp_path)
    assert [(r.sample_id, r.prediction, r.stats) for r in rows] == \
        [(r.sample_id, r.prediction, r.stats) for r in ref_store.samples(ref_id)]


def test_user_error_in_a_replica_is_the_same_one_line(tmp_path: Path, local_ray: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from llmbench.cli.main import main

    task = write_task(tmp_path, 4)
    args = ["run", "-m", "latency:x", "-t", str(task), "--model-arg", "fail=this model cannot serve generate",
            "--store", str(tmp_path / "db.sqlite"), "--no-cache"]
    codes = {}
    for extra in ([], ["--executor", "ray", "--ray-address", local_ray]):
        with pytest.raises(SystemExit) as exit_:
            main([*args, *extra])
        codes[bool(extra)] = (exit_.value.code, capsys.readouterr().err.strip())
    assert codes[True] == codes[False]
    code, err = codes[True]
    assert code == 2 and err == "error: this model cannot serve generate", err


def _cached(cache_dir: Path) -> int:
    db = cache_dir / "responses.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _replica_pids(log: Path) -> set[int]:
    return {pid for _, pid in served(log)}


def _exited(pid: int) -> bool:
    """The process is gone, or a zombie its parent (the raylet) has not reaped: it writes nothing more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive (another user's): its state decides
    try:  # the state is the first field after the parenthesised command name
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _wait_gone(pids: set[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not all(_exited(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_driver_killed_mid_run_resumes_without_sending_a_request_twice(tmp_path: Path, local_ray: str) -> None:
    n = 300
    task = write_task(tmp_path, n)
    log = tmp_path / "served.log"
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent("""
        import sys
        from llmbench import registry
        registry.models.register("latency", "llmbench.executors.simulate:factory")
        from llmbench.cli.main import main
        main(sys.argv[1:])
    """))
    cmd = [sys.executable, str(driver), "run", "-m", "latency:slow", "-t", str(task), "--store",
           str(tmp_path / "db.sqlite"), "--resamples", "20", "--executor", "ray", "--ray-address", local_ray,
           "--model-arg", "latency=0.05", "--model-arg", "batch=4", "--model-arg", f"log={log}",
           "--model-arg", "replicas=2", "--model-arg", "num_cpus=0.5", "--model-arg", "shard_size=8"]
    env = {**os.environ, "LLMBENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    # interrupt once answers are cached and both replicas have answered, so every process that
    # can still append to the log is known by its pid
    while ((_cached(tmp_path / "cache") < 16 or len(_replica_pids(log)) < 2)
           and time.monotonic() < deadline and proc.poll() is None):
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the killed driver's replicas die with it (Ray ends a dead driver's actors); the log is final
    # once both processes are gone: waited for, not guessed with a sleep
    replicas = _replica_pids(log)
    assert len(replicas) == 2, replicas
    assert _wait_gone(replicas, timeout=120), f"replicas {replicas} outlived their killed driver"
    cached = _cached(tmp_path / "cache")
    assert 16 <= cached < n
    before = len(served(log))

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    store = ResultStore(tmp_path / "db.sqlite")
    run = next(r for r in store.runs() if r.status == "complete")
    assert run.cache_hits == cached and run.cache_misses == n - cached
    again = Counter(sid for sid, _ in served(log)[before:])
    assert len(again) == n - cached and max(again.values()) == 1  # only the misses, each once
    first = {sid for sid, _ in served(log)[:before]}
    # what was cached before the kill was answered then and never sent again
    assert len(first - set(again)) >= cached
    assert sorted(r.idx for r in store.samples(run.id)) == list(range(n))


def test_pipelined_records_equal_sequential_local_with_one_or_many_replicas(tmp_path: Path) -> None:
    """The same rows and metrics from the sequential local run (no pipeline) and from the
    pipelined runner on 1 and on 3 replicas, over several chunks of several shards each;
    each replica streams, so every chunk went to the replicas whole."""
    from ray_helpers import metric_view, row_view

    n, chunk = 150, 32
    task_path = write_task(tmp_path, n)
    options = {"latency": 0.0, "batch": 4}
    views = {}
    for name, executor, extra, depth in (("seq", "local", {}, 0), ("ray1", "ray", {"replicas": 1}, 1),
                                         ("ray3", "ray", {"replicas": 3, "num_cpus": 0.5}, 1)):
        adapter = get_executor(executor).adapter("latency:p", {**options, **extra})
        store = ResultStore(tmp_path / f"{name}.db")
        try:
            result = evaluate(load_task(str(task_path)), adapter, ModelEntry(spec="latency:p"),
                              RunConfig(n_resamples=20), store=store, cache=None, chunk_samples=chunk,
                              pipeline_depth=depth)
        finally:
            adapter.close()
        assert result.status == "complete" and result.n_samples == n
        if isinstance(adapter, RayModel):
            assert sum(adapter.log.answered.values()) == n
            assert len(adapter.log.answered) == extra["replicas"]  # every replica answered
        views[name] = (row_view(store, result.run_id), metric_view(store, result.run_id))
    assert [r["idx"] for r in views["seq"][0]] == list(range(n))
    assert views["ray1"] == views["seq"]
    assert views["ray3"] == views["seq"]


def test_the_replicas_scoring_notes_are_the_runs_notes(tiny_sliding_mistral: Path, tmp_path: Path) -> None:
    """A fallback happens where the model runs, on the replicas: each returns its notes with
    its shard's answers and the run stores their union, as the local run stores its own."""
    rows = [{"id": f"r{i}", "text": f"the movie was great {i}", "label": ["negative", "positive"][i % 2]}
            for i in range(8)]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    task = tmp_path / "task.yaml"
    task.write_text("name: notes_demo\nkind: classification\ndataset: {path: rows.jsonl}\n"
                    "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n")
    spec = f"hf:{tiny_sliding_mistral}"
    notes = {}
    for executor, options in (("local", {}), ("ray", {"replicas": 2, "num_cpus": 0.5, "max_batch_size": 2})):
        store, run_id, adapter = _evaluate(task, spec, options, executor, tmp_path)
        try:
            if isinstance(adapter, RayModel):
                assert len(adapter.log.answered) == 2  # both replicas answered, both fell back
            notes[executor] = store.run(run_id).notes
        finally:
            adapter.close()  # type: ignore[attr-defined]
    assert len(notes["local"]) == 1 and "DynamicSlidingWindowLayer" in notes["local"][0]
    assert notes["ray"] == notes["local"]


def test_the_replicas_start_on_the_next_chunk_before_this_ones_last_answers(tmp_path: Path) -> None:
    """One dispatch loop over the chunks: chunk 1 is taken (and its shards sent) once chunk 0's
    shards are all sent, while its last ones are still out — with a ``run`` per chunk the
    replicas waited at every chunk's end. Each answer comes back once, under its own chunk."""
    from llmbench.types import Request

    adapter = get_executor("ray").adapter("latency:x", {"latency": 0.05, "batch": 4, "replicas": 2,
                                                         "num_cpus": 0.5})
    assert isinstance(adapter, RayModel)
    chunks = [[Request(kind="generate", sample_id=f"c{c}-{i}", input=f"q{c}-{i}", prompt=f"q{c}-{i}")
               for i in range(40)]
              for c in range(3)]
    yielded: list[tuple[int, int]] = []
    taken_after: list[int] = []  # answers already yielded when each chunk was taken

    def source() -> Iterator[list[Request]]:
        for chunk in chunks:
            taken_after.append(len(yielded))
            yield chunk
        taken_after.append(len(yielded))

    try:
        for c, j, response in adapter.run_chunks(source()):
            assert response.text == f"q{c}-{j}"
            yielded.append((c, j))
    finally:
        adapter.close()
    assert sorted(yielded) == [(c, j) for c in range(3) for j in range(40)]
    assert taken_after[1] < 40 and taken_after[2] < 80, taken_after  # taken before the previous chunk was back
