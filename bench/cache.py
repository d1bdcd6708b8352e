"""Response cache: the same ``llmbench run`` twice, cold then warm.

One CLI process evaluates the 6-layer GPT-2 on the multiple-choice task (500 samples) and
the generation task (200 samples) with an empty response cache (cold), then the identical
command runs again (warm). ``bench/_timed.py`` (``BENCH_COUNT_CALLS=1``) counts the
requests handed to the model adapter and the model's forward passes. Reported: whole-process
wall time, the evaluation phase (``runner.evaluate``, summed over the two tasks), the
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 MC / 40 generation samples")
    ap.add_argument("--repeats", type=int, default=None, help="cold+warm pairs (default 2; quick 1)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n_mc, n_gen = (100, 40) if args.quick else (500, 200)
    repeats = args.repeats or (1 if args.quick else 2)

    model = c.ensure_models(args.seed, ["gpt2"])["gpt2"]
    mc = c.write_jsonl(c.DATA / f"peer_mc_{n_mc}.jsonl", c.make_mc_rows(n_mc, args.seed))
    gen = c.write_jsonl(c.DATA / f"peer_gen_{n_gen}.jsonl", c.make_gen_rows(n_gen, args.seed))
    t_mc = c.llmbench_mc_task("bench_mc", mc, c.TASKS / "cache" / "bench_mc.yaml")
    t_gen = c.llmbench_gen_task("bench_gen", gen, c.TASKS / "cache" / "bench_gen.yaml")
    work = c.OUT / "cache"

    runs: list[dict[str, Any]] = []
    for rep in range(repeats):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        env = c.bench_env(LLMBENCH_CACHE=str(work / "responses"), BENCH_COUNT_CALLS="1", COLUMNS="200")
        argv = [c.PY, TIMED, "llmbench", "run", "--model", f"hf:{model}", "--task", t_mc, "--task", t_gen,
                "--model-arg", "max_batch_size=16", "--store", work / "store.db"]
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

    def med(phase: str, key: str) -> float:
        return c.median([r[key] for r in runs if r["phase"] == phase])

    cold_wall, warm_wall = med("cold", "wall_s"), med("warm", "wall_s")
    cold_eval, warm_eval = med("cold", "eval_s"), med("warm", "eval_s")
    warm_calls = max(r["model_requests"] + r["model_forwards"] for r in runs if r["phase"] == "warm")
    rows = [["cold", cold_wall, cold_eval, *[next(r[k] for r in runs if r["phase"] == "cold")
                                             for k in ("model_requests", "model_forwards", "hits", "misses")]],
            ["warm", warm_wall, warm_eval, *[next(r[k] for r in runs if r["phase"] == "warm")
                                             for k in ("model_requests", "model_forwards", "hits", "misses")]],
            ["cold / warm", f"{cold_wall / warm_wall:.1f}x", f"{cold_eval / warm_eval:.1f}x", "", "", "", ""]]
    print("\n--- results ---")
    print(c.table(["run", "wall s", "eval phase s", "model requests", "forward passes", "cache hits",
                   "cache misses"], rows,
                  title=f"Cache: GPT-2 6L, {n_mc} MC + {n_gen} generation samples, cold then warm "
                        f"(median of {repeats})"))
    ok = cold_wall / warm_wall >= 20 and warm_calls == 0
    eval_ok = cold_eval / warm_eval >= 20 and warm_calls == 0
    print(f"\ntarget: warm rerun >= 20x faster, zero model calls — whole process: {c.verdict(ok)}; "
          f"evaluation phase: {c.verdict(eval_ok)}")
    payload = {"quick": args.quick, "runs": runs, "targets": {"warm_20x_wall": ok, "warm_20x_eval": eval_ok,
                                                              "warm_zero_calls": warm_calls == 0}}
    print(f"wrote {c.write_json('cache', payload)}")
    return payload


if __name__ == "__main__":
    main()
