"""Response cache: the same ``llmbench run`` twice, cold then warm.

Two workloads, each run through the CLI with an empty response cache (cold), then the
identical command again (warm): the 6-layer GPT-2 on the synthetic multiple-choice task (500
samples) and generation task (200 samples), and a real model on real data, SmolLM2-135M on
rotten_tomatoes (500 test samples, loglikelihood; skipped with ``--quick``).
``bench/_timed.py`` (``BENCH_COUNT_CALLS=1``) counts the requests handed to the model
adapter and the model's forward passes. Reported: whole-process wall time, the evaluation
phase (``runner.evaluate``, summed over the tasks), the
cold/warm ratios and the model calls of each run (target: warm >= 20x faster, 0 calls).

    .venv/bin/python bench/cache.py
    .venv/bin/python bench/cache.py --quick
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

c.apply_offline_env()

TIMED = c.BENCH / "_timed.py"


def measure(argv: list[Any], env: dict[str, str], reset: Any, repeats: int) -> list[dict[str, Any]]:
    """``repeats`` pairs of (cold, warm) runs of ``argv``; ``reset()`` empties the response cache."""
    runs: list[dict[str, Any]] = []
    for rep in range(repeats):
        reset()
        for phase in ("cold", "warm"):
            res = c.run_proc(argv, env=env)
            ev = c.read_marker(res.stderr)
            counts = re.findall(r"cache (\d+)\s+hit\s+/\s+(\d+)\s+miss", res.stdout)
            hits, misses = sum(int(h) for h, _ in counts), sum(int(m) for _, m in counts)
            runs.append({"repeat": rep, "phase": phase, "wall_s": res.wall_s, "eval_s": ev.get("eval_s"),
                         "model_requests": ev.get("model_requests"), "model_forwards": ev.get("model_forwards"),
                         "hits": hits, "misses": misses, "maxrss_mb": res.maxrss_mb})
            print(f"  {phase}: wall {res.wall_s:.2f}s eval {ev.get('eval_s', 0):.3f}s requests "
                  f"{ev.get('model_requests')} forwards {ev.get('model_forwards')} hits {hits} misses {misses}",
                  flush=True)
    return runs


def summarise(label: str, runs: list[dict[str, Any]]) -> tuple[list[list[Any]], dict[str, bool]]:
    def med(phase: str, key: str) -> float:
        return c.median([r[key] for r in runs if r["phase"] == phase])

    def first(phase: str) -> list[Any]:
        return [next(r[k] for r in runs if r["phase"] == phase)
                for k in ("model_requests", "model_forwards", "hits", "misses")]

    cold_wall, warm_wall = med("cold", "wall_s"), med("warm", "wall_s")
    cold_eval, warm_eval = med("cold", "eval_s"), med("warm", "eval_s")
    warm_calls = max(r["model_requests"] + r["model_forwards"] for r in runs if r["phase"] == "warm")
    rows = [[label, "cold", cold_wall, cold_eval, *first("cold")],
            [label, "warm", warm_wall, warm_eval, *first("warm")],
            [label, "cold / warm", f"{cold_wall / warm_wall:.1f}x", f"{cold_eval / warm_eval:.1f}x", "", "", "", ""]]
    return rows, {"warm_20x_wall": cold_wall / warm_wall >= 20 and warm_calls == 0,
                  "warm_20x_eval": cold_eval / warm_eval >= 20 and warm_calls == 0,
                  "warm_zero_calls": warm_calls == 0}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 MC / 40 generation samples, no SmolLM2")
    ap.add_argument("--repeats", type=int, default=None, help="cold+warm pairs (default 2; quick 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smollm2", action=argparse.BooleanOptionalAction, default=None,
                    help="also SmolLM2-135M on rotten_tomatoes (default: unless --quick)")
    args = ap.parse_args(argv)
    n_mc, n_gen = (100, 40) if args.quick else (500, 200)
    repeats = args.repeats or (1 if args.quick else 2)
    with_smollm2 = args.smollm2 if args.smollm2 is not None else not args.quick

    model = c.ensure_models(args.seed, ["gpt2"])["gpt2"]
    mc = c.write_jsonl(c.DATA / f"peer_mc_{n_mc}.jsonl", c.make_mc_rows(n_mc, args.seed))
    gen = c.write_jsonl(c.DATA / f"peer_gen_{n_gen}.jsonl", c.make_gen_rows(n_gen, args.seed))
    t_mc = c.llmbench_mc_task("bench_mc", mc, c.TASKS / "cache" / "bench_mc.yaml")
    t_gen = c.llmbench_gen_task("bench_gen", gen, c.TASKS / "cache" / "bench_gen.yaml")
    work = c.OUT / "cache"

    def fresh_work() -> None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)

    print(f"GPT-2 6L, {n_mc} MC + {n_gen} generation samples", flush=True)
    env = c.bench_env(LLMBENCH_CACHE=str(work / "responses"), BENCH_COUNT_CALLS="1", COLUMNS="200")
    argv_gpt2 = [c.PY, TIMED, "llmbench", "run", "--model", f"hf:{model}", "--task", t_mc, "--task", t_gen,
                 "--model-arg", "max_batch_size=16", "--store", work / "store.db"]
    workloads = {"gpt2-6l synthetic": measure(argv_gpt2, env, fresh_work, repeats)}

    if with_smollm2:
        # A real model on real data. Its own cache folder keeps the de-quantised GGUF between
        # runs (converted once, untimed, by the warm-up run); only the responses are reset.
        real = c.OUT / "cache-smollm2"
        real.mkdir(parents=True, exist_ok=True)
        env_real = c.bench_env(LLMBENCH_CACHE=str(real), BENCH_COUNT_CALLS="1", COLUMNS="200")
        argv_real = [c.PY, TIMED, "llmbench", "run", "--model", "smollm2", "--task", "rotten_tomatoes",
                     "--limit", "500", "--store", real / "store.db"]

        def reset_responses() -> None:
            for f in real.glob("responses.sqlite*"):
                f.unlink()

        c.run_proc([*argv_real[:-2], "--limit", "1", "--no-cache", "--store", real / "store.db"], env=env_real)
        print("SmolLM2-135M-Instruct, rotten_tomatoes 500 (loglikelihood)", flush=True)
        workloads["smollm2 rotten_tomatoes 500"] = measure(argv_real, env_real, reset_responses, repeats)

    rows: list[list[Any]] = []
    targets: dict[str, dict[str, bool]] = {}
    for label, runs in workloads.items():
        more, targets[label] = summarise(label, runs)
        rows += more
    print("\n--- results ---")
    print(c.table(["workload", "run", "wall s", "eval phase s", "model requests", "forward passes", "cache hits",
                   "cache misses"], rows, title=f"Cache: the same run cold then warm (median of {repeats})"))
    for label, t in targets.items():
        print(f"target ({label}): warm rerun >= 20x faster, zero model calls — whole process: "
              f"{c.verdict(t['warm_20x_wall'])}; evaluation phase: {c.verdict(t['warm_20x_eval'])}")
    payload = {"quick": args.quick, "runs": workloads, "targets": targets}
    print(f"wrote {c.write_json('cache', payload)}")
    return payload


if __name__ == "__main__":
    main()
