"""Scale-out on Ray, measured and simulated.

1. **A CPU-bound tiny model** (random GPT-2, 4 layers, 128 wide, greedy generation) on this
   machine: samples/s of the local executor and of Ray with 1 and 2 replicas (one CPU
   each), and the fixed costs apart: starting Ray, starting the replicas (process, imports,
   model load) and, locally, loading the model.
2. **Orchestration at scale without hardware:** a model that only waits
   (``llmbench.executors.simulate``: ``latency`` seconds per batch of ``batch`` requests,
   no CPU work) on 1, 8, 32 and 64 replicas with fractional CPU requests, through the
   whole runner (cache lookups, cache writes, scoring, SQLite store). Wall time (replicas
   already up) against the ideal ``samples × latency / (replicas × batch)``. Configurations
   whose ideal would exceed ``--max-ideal`` seconds run fewer samples (printed).
3. **The driver's rate:** the same runner path with a model that answers at once, in one
   process: answers/s through prompts, cache keys and lookups, cache writes, scoring and the
   SQLite store, and the driver's CPU per answer (all threads). Replicas × batch / latency
   above this rate leaves replicas waiting on the driver.

Targets (issue 24): 64 simulated replicas within 1.05× of the ideal; the driver at least
20,000 answers/s on SQLite. Each is printed with MET / NOT MET. ``--sequential`` runs the
runner with its pipeline off (``pipeline_depth=0``: build, answer, score and store one after
the other), the way to measure what the pipeline buys on the same machine.

    .venv/bin/python bench/scale.py            # 100,000 samples (several minutes)
    .venv/bin/python bench/scale.py --quick    # 5,000 samples, a smaller model run
    .venv/bin/python bench/scale.py --skip-cpu # the two targets only

Results go to ``bench/out/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))
import _common as c  # noqa: E402

#: Issue 24's targets.
TARGET_RATIO_64 = 1.05
TARGET_DRIVER_RATE = 20_000
#: The runner's pipeline depth for every run here (``--sequential``: 0).
PIPELINE: dict[str, int | None] = {"depth": None}

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def write_task(folder: Path, n: int, name: str) -> Path:
    """A summarization task of ``n`` short documents (generation, exact-match scored)."""
    rows = [{"id": f"s{i:06d}", "doc": f"the movie number {i} was great and the acting was wonderful.",
             "sum": "the movie was great."} for i in range(n)]
    (folder / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    task = folder / f"{name}.yaml"
    task.write_text(f"name: {name}\nkind: summarization\ndataset: {{path: {name}.jsonl}}\n"
                    "fields: {id: id, input: doc, target: sum}\nmetrics: [exact_match]\n"
                    "primary_metric: exact_match\ngeneration: {max_new_tokens: 16}\n")
    return task


def timed_run(task_path: Path, spec: str, options: dict[str, Any], executor_name: str, work: Path,
              *, use_cache: bool = True, store_url: str | None = None) -> dict[str, Any]:
    """One (model, task) run through the runner, with its phases timed apart."""
    from llmbench.cache import ResponseCache
    from llmbench.executors import get_executor
    from llmbench.runner import CHUNK_SAMPLES, PIPELINE_DEPTH, ModelEntry, RunConfig, evaluate
    from llmbench.store import ResultStore
    from llmbench.tasks import load_task

    tag = f"{executor_name}-{options.get('replicas', 1)}-{time.monotonic_ns()}"
    executor = get_executor(executor_name)
    t0 = time.perf_counter()
    adapter = executor.adapter(spec, options)
    adapter.prepare()  # Ray: start Ray (first time), start replicas, load; local: load the model
    t_prepare = time.perf_counter() - t0
    task = load_task(str(task_path))
    store = ResultStore(store_url or work / f"{tag}.db")
    cache = ResponseCache(work / f"cache-{tag}") if use_cache else None
    depth = PIPELINE_DEPTH if PIPELINE["depth"] is None else PIPELINE["depth"]
    t1, cpu1 = time.perf_counter(), time.process_time()
    try:
        result = evaluate(task, adapter, ModelEntry(spec=spec), RunConfig(n_resamples=0, use_cache=use_cache),
                          store=store, cache=cache, chunk_samples=executor.chunk_samples(adapter, CHUNK_SAMPLES),
                          pipeline_depth=depth)
    finally:
        if cache is not None:
            cache.close()
        adapter.close()
    t_run, cpu_run = time.perf_counter() - t1, time.process_time() - cpu1
    assert result.status == "complete" and result.cache_misses == result.n_samples, result
    return {"executor": executor_name, "replicas": options.get("replicas", 1), "samples": result.n_samples,
            "prepare_s": round(t_prepare, 2), "run_s": round(t_run, 2),
            "samples_per_s": round(result.n_samples / t_run, 1), "pipeline_depth": depth,
            "driver_cpu_us_per_answer": round(cpu_run / result.n_samples * 1e6, 1)}


def cpu_model(work: Path, quick: bool) -> list[dict[str, Any]]:
    import ray

    from llmbench.testing import build_tiny_gpt2

    model = build_tiny_gpt2(work / "gpt2", n_layer=4, n_embd=128)
    n = 64 if quick else 256
    task = write_task(work, n, "cpu_task")
    # One small run first: metric and torch imports and first-call costs are not throughput.
    timed_run(write_task(work, 8, "warm_task"), f"hf:{model}", {"max_batch_size": 16}, "local", work)
    import torch

    rows = [timed_run(task, f"hf:{model}", {"max_batch_size": 16}, "local", work)]
    rows[0]["threads"] = torch.get_num_threads()
    # A replica with num_cpus=1 computes with one thread (Ray sets OMP_NUM_THREADS); on a
    # machine shared with other work, two spinning OpenMP threads can be far slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows.append({**timed_run(task, f"hf:{model}", {"max_batch_size": 16}, "local", work), "threads": 1})
    finally:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray_start = time.perf_counter() - t0
    try:
        for replicas in (1, 2):
            row = timed_run(task, f"hf:{model}", {"max_batch_size": 16, "replicas": replicas, "num_cpus": 1},
                            "ray", work)
            rows.append({**row, "threads": 1})
    finally:
        ray.shutdown()
    for row in rows:
        row["ray_start_s"] = round(ray_start, 2) if row["executor"] == "ray" else 0.0
    return rows


def driver_rate(work: Path, n: int, store_url: str | None = None) -> dict[str, Any]:
    """Answers/s the driver builds, caches (SQLite), scores and stores when answers cost
    nothing; the best of three runs after a warm-up run (imports, first-call costs)."""
    task = write_task(work, n, "driver_task")
    timed_run(write_task(work, 500, "driver_warm"), "latency:driver", {"latency": 0.0, "batch": 64}, "local", work,
              store_url=store_url)
    runs = [timed_run(task, "latency:driver", {"latency": 0.0, "batch": 64}, "local", work, store_url=store_url)
            for _ in range(3)]
    best = max(runs, key=lambda r: r["samples_per_s"])
    return {"samples": best["samples"], "run_s": best["run_s"], "answers_per_s": best["samples_per_s"],
            "all_answers_per_s": [r["samples_per_s"] for r in runs],
            "driver_cpu_us_per_answer": min(r["driver_cpu_us_per_answer"] for r in runs),
            "pipeline_depth": best["pipeline_depth"], "store": "postgresql" if store_url else "sqlite"}


def simulated(work: Path, n: int, latency: float, batch: int, max_ideal: float,
              replica_counts: tuple[int, ...]) -> list[dict[str, Any]]:
    import ray

    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    cpus = float(ray.cluster_resources().get("CPU", 1))
    rows = []
    try:
        for replicas in replica_counts:
            per_replica = batch / latency
            samples = int(min(n, max_ideal * replicas * per_replica))
            task = write_task(work, samples, f"sim_{replicas}")
            num_cpus = round(min(1.0, 0.95 * cpus / replicas), 3)
            row = timed_run(task, "latency:sim", {"latency": latency, "batch": batch, "replicas": replicas,
                                                  "num_cpus": num_cpus}, "ray", work)
            ideal = samples * latency / (replicas * batch)
            row.update(num_cpus=num_cpus, ideal_s=round(ideal, 2), ratio=round(row["run_s"] / ideal, 3))
            rows.append(row)
            print(f"  {replicas:3d} replicas ({num_cpus:g} CPU each): {samples} samples in {row['run_s']:.1f} s, "
                  f"ideal {ideal:.1f} s, ×{row['ratio']:.2f}; replicas started in {row['prepare_s']:.1f} s",
                  flush=True)
    finally:
        ray.shutdown()
    return rows


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """Issue 24's two targets, printed MET / NOT MET (n/a where not measured)."""
    rate = report["driver"]["answers_per_s"]
    at64 = next((r for r in report.get("simulated", []) if r["replicas"] == 64), None)
    rate_ok = rate >= TARGET_DRIVER_RATE
    ratio_ok = None if at64 is None else at64["ratio"] <= TARGET_RATIO_64
    load = os.getloadavg()
    print(f"\ntarget: driver >= {TARGET_DRIVER_RATE:,} answers/s on SQLite: {c.verdict(rate_ok)} ({rate:,.0f}/s)")
    shown = "not run" if at64 is None else f"x{at64['ratio']:.3f}"
    print(f"target: 64 simulated replicas <= {TARGET_RATIO_64}x the ideal: {c.verdict(ratio_ok)} ({shown})")
    print(f"pipeline {report['pipeline']} · load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on "
          f"{os.cpu_count()} CPUs (a busy machine makes both numbers worse)")
    return {"driver_rate": rate, "driver_rate_met": rate_ok, "ratio_64": None if at64 is None else at64["ratio"],
            "ratio_64_met": ratio_ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5,000 samples and a shorter CPU run")
    parser.add_argument("--samples", type=int, default=None, help="simulated samples (default 100,000)")
    parser.add_argument("--latency", type=float, default=0.5, help="simulated seconds per batch")
    parser.add_argument("--batch", type=int, default=8, help="simulated requests per batch")
    parser.add_argument("--max-ideal", type=float, default=None,
                        help="cap a configuration's ideal seconds by running fewer samples (default 200; quick 30)")
    parser.add_argument("--replicas", default="1,8,32,64", help="replica counts to simulate")
    parser.add_argument("--skip-cpu", action="store_true", help="only the simulation and the driver rate")
    parser.add_argument("--cpu-only", action="store_true", help="only the CPU-bound model")
    parser.add_argument("--pg-url", default=None,
                        help="also measure the driver rate with the results store on this PostgreSQL URL "
                             "(an empty database; the response cache is SQLite either way)")
    parser.add_argument("--driver-only", action="store_true", help="only the driver rate(s)")
    parser.add_argument("--sequential", action="store_true",
                        help="the runner without its pipeline (pipeline_depth=0), to compare on the same machine")
    args = parser.parse_args()
    if args.sequential:
        PIPELINE["depth"] = 0
    n = args.samples or (5_000 if args.quick else 100_000)
    max_ideal = args.max_ideal or (30.0 if args.quick else 200.0)

    from llmbench import registry

    registry.models.register("latency", "llmbench.executors.simulate:factory", origin="bench")
    work = Path(tempfile.mkdtemp(prefix="llmbench-scale-"))
    os.environ["LLMBENCH_CACHE"] = str(work / "cache")
    report: dict[str, Any] = {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg(),
                              "pipeline": "off (--sequential)" if args.sequential else "on"}
    try:
        if not (args.skip_cpu or args.driver_only):
            print("CPU-bound tiny model (GPT-2 4x128, 16 new tokens):", flush=True)
            report["cpu_model"] = cpu_model(work, args.quick)
            for row in report["cpu_model"]:
                print(f"  {row['executor']:5s} ×{row['replicas']} ({row['threads']} thread(s) each): "
                      f"{row['samples_per_s']:7.1f} samples/s; "
                      f"fixed: ray start {row['ray_start_s']:.1f} s, replicas/model {row['prepare_s']:.1f} s",
                      flush=True)
        if args.cpu_only:
            return
        print(f"Driver rate (prompts, cache, scoring, store), answers that cost nothing; pipeline "
              f"{report['pipeline']}:", flush=True)
        report["driver"] = driver_rate(work, min(n, 50_000))
        d = report["driver"]
        print(f"  SQLite: {d['answers_per_s']:.0f} answers/s over {d['samples']} answers (best of "
              f"{d['all_answers_per_s']}); driver CPU {d['driver_cpu_us_per_answer']:.0f} us/answer", flush=True)
        if args.pg_url:
            report["driver_pg"] = driver_rate(work, min(n, 50_000), args.pg_url)
            print(f"  PostgreSQL: {report['driver_pg']['answers_per_s']:.0f} answers/s", flush=True)
        if not args.driver_only:
            print(f"Simulated replicas: {args.latency} s per batch of {args.batch}, up to {n} samples:", flush=True)
            counts = tuple(int(x) for x in args.replicas.split(","))
            report["simulated"] = simulated(work, n, args.latency, args.batch, max_ideal, counts)
        report["load_avg_end"] = os.getloadavg()
        report["targets"] = targets(report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        OUT.mkdir(parents=True, exist_ok=True)
        out = OUT / ("scale-cpu.json" if args.cpu_only else "scale-driver.json" if args.driver_only
                     else "scale.json")
        out.write_text(json.dumps(report, indent=1))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
