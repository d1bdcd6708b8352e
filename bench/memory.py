"""Memory: peak RSS of ``llmbench run`` on a 100,000-sample classification task.

A generated 2-class task (jsonl, loglikelihood scoring) is run with the tiny GPT-2 through
the CLI, with a fresh response cache (the default setting, so the cache writes are part of
it). Its peak RSS (``ru_maxrss`` of the process) is compared with the model's own
footprint: a bare process that imports torch + transformers, loads the same model and
runs one forward on a batch of 64 prompts. Target: the difference is within 300 MB.
A 1,000-sample run shows how much of the difference grows with the number of samples.

    .venv/bin/python bench/memory.py
    .venv/bin/python bench/memory.py --quick      # 20,000 samples
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

c.apply_offline_env()

TIMED = c.BENCH / "_timed.py"

BARE = r"""
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1]); tok.padding_side = "left"
model = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
rows = [json.loads(line) for _, line in zip(range(64), open(sys.argv[2]))]
batch = tok([f"Review: {r['text']}" + "\nLabel:" for r in rows], return_tensors="pt", padding=True)
with torch.inference_mode():
    model(**batch)
"""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 samples instead of 100,000")
    ap.add_argument("--samples", type=int, default=None)
    args = ap.parse_args(argv)
    n = args.samples or (20_000 if args.quick else 100_000)

    model = c.ensure_tiny_gpt2()
    work = c.OUT / "memory"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results = []
    bare = c.run_proc([c.PY, "-c", BARE, model, c.write_jsonl(c.DATA / "memory_mc_1000.jsonl",
                                                              c.make_mc_rows(1000, 0))])
    for size in (1000, n):
        data = c.DATA / f"memory_mc_{size}.jsonl"
        if not data.exists():
            c.write_jsonl(data, c.make_mc_rows(size, 0))
        task = c.llmbench_mc_task(f"bench_mem_{size}", data, c.TASKS / "memory" / f"bench_mem_{size}.yaml")
        env = c.bench_env(LLMBENCH_CACHE=str(work / f"cache-{size}"))
        res = c.run_proc([c.PY, TIMED, "llmbench", "run", "--model", f"hf:{model}", "--task", task,
                          "--model-arg", "max_batch_size=64", "--store", work / f"store-{size}.db"], env=env)
        ev = c.read_marker(res.stderr)
        results.append({"samples": size, "maxrss_mb": res.maxrss_mb, "wall_s": res.wall_s, "eval_s": ev.get("eval_s"),
                        "over_bare_mb": res.maxrss_mb - bare.maxrss_mb})
        print(f"  {size} samples: peak RSS {res.maxrss_mb:.0f} MB ({res.maxrss_mb - bare.maxrss_mb:+.0f} MB over "
              f"the bare model), wall {res.wall_s:.1f}s", flush=True)

    rows = [["bare model: import + load + one forward (bs 64)", 0, bare.maxrss_mb, 0.0, bare.wall_s]]
    rows += [[f"llmbench run, {r['samples']:,} samples", r["samples"], r["maxrss_mb"], r["over_bare_mb"], r["wall_s"]]
             for r in results]
    print("\n--- results ---")
    print(c.table(["process", "samples", "peak RSS MB", "over bare MB", "wall s"], rows,
                  title="Memory: tiny GPT-2, generated 2-class task (loglikelihood), batch size 64"))
    big = results[-1]
    ok = big["over_bare_mb"] <= 300
    print(f"\ntarget: {n:,} samples within 300 MB of the model's own footprint: {c.verdict(ok)} "
          f"({big['over_bare_mb']:+.0f} MB)")
    payload = {"quick": args.quick, "bare_maxrss_mb": bare.maxrss_mb, "runs": results,
               "targets": {"within_300mb": ok}}
    print(f"wrote {c.write_json('memory', payload)}")
    return payload


if __name__ == "__main__":
    main()
