"""Fixed cost: what a run spends before its first request — import, task load, model load.

Measured on a tiny GPT-2 (2 layers, 32 wide) and a 20-sample multiple-choice task, in
fresh processes:

* ``llmbench run`` through its CLI (``bench/_timed.py``): fork to the start of the
  evaluation phase, i.e. interpreter start, imports, argument parsing, task load and
  model load (target < 2.5 s); median of ``--repeats`` runs;
* the same split into phases in a child process: ``import llmbench.cli.main`` (+ the run
  module it uses), task load + samples, model load;
* the floor: a bare process that only imports torch and transformers and loads the same
  model and tokenizer with ``from_pretrained`` (what any harness must do before its first
  forward pass); the difference is what llmbench itself adds;
* the whole-process floor: ``llmbench run`` of one sample, fork to exit, against a bare
  process that also runs one forward pass and exits normally (target: <= 1.15x);
* lm-eval 0.4.13 the same way (if its venv exists or ``--lmeval``), for reference;
* ``python -X importtime``: the ten most expensive top-level imports of ``llmbench run``,
  to spot what could be imported lazily.

    .venv/bin/python bench/fixed_cost.py
    .venv/bin/python bench/fixed_cost.py --quick
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

c.apply_offline_env()

TIMED = c.BENCH / "_timed.py"

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import llmbench.cli.main, llmbench.cli.run  # what `llmbench run` imports before doing anything
t1 = time.perf_counter()
from llmbench.tasks import load_task
task = load_task(sys.argv[1]); task.samples()
t2 = time.perf_counter()
from llmbench.models import load_adapter
adapter = load_adapter(sys.argv[2], {}); adapter.identity(); adapter.prepare()  # weights load lazily
t3 = time.perf_counter()
print("BENCH_JSON " + json.dumps({"import_s": t1 - t0, "task_s": t2 - t1, "model_s": t3 - t2}))
"""

BARE = r"""
import os, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
AutoTokenizer.from_pretrained(sys.argv[1]); AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
os._exit(0)  # fork -> loaded, without the interpreter teardown (llmbench's clock stops at its first request)
"""


# The whole-process floor (issue 17): what any harness must do to answer one sample —
# start Python, import torch + transformers, load the folder, run one forward pass, exit.
BARE_FORWARD = r"""
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
with torch.inference_mode():
    model(**tok("Review: the movie was great\nLabel: positive", return_tensors="pt"))
"""


def cli_fixed(argv: list[Any], key: str = "eval_start") -> tuple[float, float]:
    """(seconds from fork to the evaluation phase, whole-process wall)."""
    res = c.run_proc(argv)
    ev = c.read_marker(res.stderr)
    startup = res.wall_s - ev["exit"]  # interpreter start before _timed.py's clock
    return startup + ev[key], res.wall_s


def importtime(argv: list[Any], top: int = 10) -> list[tuple[str, float]]:
    res = c.run_proc([c.PY, "-X", "importtime", *argv[1:]])
    cum: dict[str, float] = {}
    for line in res.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(2)) == 1:  # top-level imports only (one space of indent)
            cum[m.group(3)] = cum.get(m.group(3), 0.0) + int(m.group(1)) / 1e6
    return sorted(cum.items(), key=lambda kv: -kv[1])[:top]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats instead of 7, no lm-eval")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--lmeval", action=argparse.BooleanOptionalAction, default=None,
                    help="also time lm-eval (default: when bench/.venv-lmeval exists and not --quick)")
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    with_lmeval = args.lmeval if args.lmeval is not None else (not args.quick and c.lmeval_python().exists())

    model = c.ensure_tiny_gpt2()
    data = c.write_jsonl(c.DATA / "fixed_mc_20.jsonl", c.make_mc_rows(20, 0))
    task = c.llmbench_mc_task("bench_fixed_mc", data, c.TASKS / "fixed" / "bench_fixed_mc.yaml")
    lm_dir = c.lmeval_task_dir(data, data, c.TASKS / "fixed-lmeval", mc="bench_fixed_mc", gen="bench_fixed_gen")
    work = c.OUT / "fixed"
    work.mkdir(parents=True, exist_ok=True)
    llm_argv = [c.PY, TIMED, "llmbench", "run", "--model", f"hf:{model}", "--task", task, "--no-cache",
                "--store", work / "store.db"]
    lm_argv = [c.lmeval_python(), TIMED, "lmeval", "--model", "hf", "--model_args",
               f"pretrained={model},dtype=float32", "--tasks", "bench_fixed_mc", "--include_path", lm_dir,
               "--batch_size", "16", "--device", "cpu", "--output_path", work / "lmeval"]

    one_argv = [*llm_argv[:-2], "--limit", "1", "--store", work / "store-one.db"]
    c.run_proc(llm_argv)  # warm-up: page cache, bytecode
    c.run_proc(one_argv)
    one: list[float] = []
    bare_forward: list[float] = []
    fixed, walls, phases = [], [], []
    lm_fixed: list[float] = []
    bare: list[float] = []
    if with_lmeval:
        c.run_proc(lm_argv)
    for _ in range(repeats):
        f, w = cli_fixed(llm_argv, key="first_request")
        fixed.append(f)
        walls.append(w)
        ph = c.run_proc([c.PY, "-c", CHILD, task, f"hf:{model}"])
        phases.append(c.read_marker(ph.stdout))
        bare.append(c.run_proc([c.PY, "-c", BARE, model]).wall_s)
        one.append(c.run_proc(one_argv).wall_s)
        bare_forward.append(c.run_proc([c.PY, "-c", BARE_FORWARD, model]).wall_s)
        if with_lmeval:
            lm_fixed.append(cli_fixed(lm_argv)[0])
    imports = importtime(llm_argv)

    med = {k: c.median([p[k] for p in phases]) for k in ("import_s", "task_s", "model_s")}
    rows = [["llmbench run: fork -> first request", c.median(fixed), f"min {min(fixed):.3f} max {max(fixed):.3f}"],
            ["  import llmbench.cli.main + run_cli", med["import_s"], ""],
            ["  task load + samples", med["task_s"], ""],
            ["  model load (config, identity, weights)", med["model_s"], ""],
            ["llmbench run: whole process (20 samples)", c.median(walls), ""],
            ["floor: python + import torch, transformers + from_pretrained", c.median(bare),
             f"llmbench adds {c.median(fixed) - c.median(bare):+.3f} s"]]
    floor_ratio = c.median(one) / c.median(bare_forward)
    rows += [["llmbench run, 1 sample: whole process (fork -> exit)", c.median(one),
              f"min {min(one):.3f} max {max(one):.3f}"],
             ["floor: python + import torch, transformers + from_pretrained + 1 forward + exit",
              c.median(bare_forward), f"llmbench / floor = {floor_ratio:.2f}x"]]
    if lm_fixed:
        rows.append(["lm-eval: fork -> evaluate()", c.median(lm_fixed),
                     f"{c.median(lm_fixed) / c.median(fixed):.1f}x llmbench's"])
    print("\n--- results ---")
    print(c.table(["phase", "median s", "note"], rows,
                  title=f"Fixed cost, tiny GPT-2 (median of {repeats} fresh processes)"))
    print()
    print(c.table(["top-level import (llmbench run)", "cumulative s"], [[n, s] for n, s in imports],
                  title="python -X importtime, largest top-level imports of one `llmbench run` (one run)"))
    ok = c.median(fixed) < 2.5
    floor_ok = floor_ratio <= 1.15
    print(f"\ntarget: fixed cost < 2.5 s: {c.verdict(ok)} ({c.median(fixed):.2f} s)")
    print(f"target: one-sample run <= 1.15x the bare process: {c.verdict(floor_ok)} ({floor_ratio:.2f}x)")
    payload = {"quick": args.quick, "repeats": repeats, "fixed_s": fixed, "wall_s": walls, "phases": phases,
               "lmeval_fixed_s": lm_fixed, "bare_load_s": bare, "one_sample_s": one, "bare_forward_s": bare_forward,
               "floor_ratio": floor_ratio, "imports": imports,
               "targets": {"fixed_lt_2.5s": ok, "floor_le_1.15x": floor_ok},
               "ts": time.time()}
    print(f"wrote {c.write_json('fixed_cost', payload)}")
    return json.loads(json.dumps(payload, default=str))


if __name__ == "__main__":
    main()
