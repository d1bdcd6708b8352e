"""llmbench against lm-evaluation-harness 0.4.13 on the same models and data.

Both harnesses run through their own CLI (wrapped by ``bench/_timed.py``, which adds a timer
around each one's evaluation function) on

* a seeded 6-layer GPT-2 and a seeded 6-layer T5, with a locally trained tokenizer
  (``bench/out/models/``), and
* the same jsonl files: a 2-class multiple-choice task (500 samples, loglikelihood) and a
  short-generation task (200 samples, greedy, stop at a newline, 32 new tokens),

at batch sizes 1, 16 and 64, one harness right after the other for each cell so that both
see the same machine load. Reported per cell: whole-process wall time (fork to exit:
import, task load, model load, evaluation, writing results) and the evaluation phase alone,
their lm-eval / llmbench ratios, and whether both harnesses give the same accuracy and
(for generation) exactly the same output for every sample.

    .venv/bin/python bench/peer_lmeval.py                 # full: 2 models x 2 tasks x 3 batch sizes
    .venv/bin/python bench/peer_lmeval.py --quick         # 100/40 samples, batch size 16 only

lm-eval is installed on first use into ``bench/.venv-lmeval`` (CPU torch pinned, same
transformers as llmbench). Everything runs offline (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

c.apply_offline_env()

TIMED = c.BENCH / "_timed.py"


def prepare(n_mc: int, n_gen: int, seed: int, models: list[str]) -> dict[str, Any]:
    models = c.ensure_models(seed, models)
    mc = c.write_jsonl(c.DATA / f"peer_mc_{n_mc}.jsonl", c.make_mc_rows(n_mc, seed))
    gen = c.write_jsonl(c.DATA / f"peer_gen_{n_gen}.jsonl", c.make_gen_rows(n_gen, seed))
    tasks = {
        "mc": c.llmbench_mc_task("bench_mc", mc, c.TASKS / "peer" / "bench_mc.yaml"),
        "gen": c.llmbench_gen_task("bench_gen", gen, c.TASKS / "peer" / "bench_gen.yaml"),
    }
    lm_dir = c.lmeval_task_dir(mc, gen, c.TASKS / "peer-lmeval")
    return {"models": models, "tasks": tasks, "lmeval_dir": lm_dir, "data": {"mc": mc, "gen": gen}}


# ------------------------------------------------------------------------------ one run


def run_lmeval(py: Path, model: str, path: Path, task: str, bs: int, lm_dir: Path, out: Path) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    margs = f"pretrained={path},dtype=float32"
    if model == "t5":
        margs += ",backend=seq2seq"
    res = c.run_proc([py, TIMED, "lmeval", "--model", "hf", "--model_args", margs,
                      "--tasks", f"bench_{task}", "--include_path", lm_dir, "--batch_size", str(bs),
                      "--device", "cpu", "--output_path", out, "--log_samples"])
    phases = c.read_marker(res.stderr)
    samples_file = next(out.rglob(f"samples_bench_{task}_*.jsonl"))
    results_file = next(out.rglob("results_*.json"))
    results = json.loads(results_file.read_text())["results"][f"bench_{task}"]
    metric = "acc,none" if task == "mc" else "exact_match,strip"
    outputs: dict[str, str] = {}
    for line in samples_file.read_text().splitlines():
        s = json.loads(line)
        doc_id = s["doc"]["id"]
        if task == "mc":
            lls = [float(r[0]) for r in s["filtered_resps"]]
            outputs[doc_id] = c.LABELS[max(range(len(lls)), key=lambda i: lls[i])]
        else:
            outputs[doc_id] = str(s["filtered_resps"][0]).strip()
    return {"wall_s": res.wall_s, "eval_s": phases.get("eval_s"), "phases": phases,
            "maxrss_mb": res.maxrss_mb, "score": float(results[metric]), "outputs": outputs}


def run_llmbench(path: Path, task_file: Path, task: str, bs: int, out: Path) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    res = c.run_proc([c.PY, TIMED, "llmbench", "run", "--model", f"hf:{path}", "--task", task_file,
                      "--model-arg", f"max_batch_size={bs}", "--no-cache",
                      "--store", out / "store.db", "--json-dir", out / "json"])
    phases = c.read_marker(res.stderr)
    export = json.loads(next((out / "json").glob("*.json")).read_text())
    metric = "accuracy" if task == "mc" else "exact_match"
    score = next(m["value"]["value"] for m in export["metrics"] if m["value"]["name"] == metric)
    if task == "gen":
        score /= 100  # SQuAD scale [0, 100] -> lm-eval's [0, 1]
    outputs = {s["sample_id"]: (s["prediction"] or "").strip() for s in export["samples"]}
    return {"wall_s": res.wall_s, "eval_s": phases.get("eval_s"), "phases": phases,
            "maxrss_mb": res.maxrss_mb, "score": float(score), "outputs": outputs}


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 MC / 40 generation samples, batch size 16")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    ap.add_argument("--models", nargs="+", default=["gpt2", "t5"], choices=["gpt2", "t5"])
    ap.add_argument("--tasks", nargs="+", default=["mc", "gen"], choices=["mc", "gen"])
    ap.add_argument("--repeats", type=int, default=1, help="runs per cell (median reported)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n_mc, n_gen = (100, 40) if args.quick else (500, 200)
    sizes = args.batch_sizes or ([16] if args.quick else [1, 16, 64])

    py = c.ensure_lmeval()
    prep = prepare(n_mc, n_gen, args.seed, args.models)
    work = c.OUT / "peer"
    # Warm-up (untimed): page cache, the datasets arrow cache lm-eval builds for the jsonl
    # files, and Python bytecode of both venvs. Timed runs are then steady-state.
    print("warming up both harnesses ...", flush=True)
    first = args.models[0]
    for task in args.tasks:
        run_lmeval(py, first, prep["models"][first], task, 64, prep["lmeval_dir"], work / "warm-lmeval")
    run_llmbench(prep["models"][first], prep["tasks"][args.tasks[0]], args.tasks[0], 64, work / "warm-llmbench")

    cells: list[dict[str, Any]] = []
    for model in args.models:
        path = prep["models"][model]
        for task in args.tasks:
            ref_outputs: dict[str, dict[str, str]] = {}
            for bs in sizes:
                runs: dict[str, list[dict[str, Any]]] = {"lmeval": [], "llmbench": []}
                for _ in range(args.repeats):
                    runs["lmeval"].append(run_lmeval(py, model, path, task, bs, prep["lmeval_dir"],
                                                     work / "lmeval"))
                    runs["llmbench"].append(run_llmbench(path, prep["tasks"][task], task, bs,
                                                         work / "llmbench"))
                lm, lb = runs["lmeval"][-1], runs["llmbench"][-1]
                same_out = sum(lm["outputs"].get(k) == v for k, v in lb["outputs"].items())
                ref_outputs.setdefault("lmeval", lm["outputs"])
                ref_outputs.setdefault("llmbench", lb["outputs"])
                cell = {
                    "model": model, "task": task, "batch_size": bs, "n": len(lb["outputs"]),
                    "lmeval_wall_s": c.median([r["wall_s"] for r in runs["lmeval"]]),
                    "llmbench_wall_s": c.median([r["wall_s"] for r in runs["llmbench"]]),
                    "lmeval_eval_s": c.median([r["eval_s"] for r in runs["lmeval"]]),
                    "llmbench_eval_s": c.median([r["eval_s"] for r in runs["llmbench"]]),
                    "lmeval_score": lm["score"], "llmbench_score": lb["score"],
                    "same_outputs": same_out, "lmeval_maxrss_mb": lm["maxrss_mb"],
                    "llmbench_maxrss_mb": lb["maxrss_mb"],
                    "lmeval_phases": lm["phases"], "llmbench_phases": lb["phases"],
                    # answers identical to this harness's own at the first batch size
                    "lmeval_batch_invariant": lm["outputs"] == ref_outputs["lmeval"],
                    "llmbench_batch_invariant": lb["outputs"] == ref_outputs["llmbench"],
                }
                cell["wall_ratio"] = cell["lmeval_wall_s"] / cell["llmbench_wall_s"]
                cell["eval_ratio"] = cell["lmeval_eval_s"] / cell["llmbench_eval_s"]
                cells.append(cell)
                print(f"  {model} {task} bs={bs}: lm-eval {cell['lmeval_wall_s']:.1f}s / llmbench "
                      f"{cell['llmbench_wall_s']:.1f}s (x{cell['wall_ratio']:.2f}), scores "
                      f"{lm['score']:.3f} / {lb['score']:.3f}, same outputs {same_out}/{cell['n']}",
                      flush=True)

    rows = [[x["model"], x["task"], x["batch_size"], x["n"], x["lmeval_wall_s"], x["llmbench_wall_s"],
             f"{x['wall_ratio']:.2f}x", x["lmeval_eval_s"], x["llmbench_eval_s"], f"{x['eval_ratio']:.2f}x",
             f"{x['lmeval_score']:.3f}/{x['llmbench_score']:.3f}", f"{x['same_outputs']}/{x['n']}",
             "yes" if x["lmeval_batch_invariant"] and x["llmbench_batch_invariant"] else "NO"]
            for x in cells]
    print("\n--- results ---")
    print(c.table(["model", "task", "bs", "n", "lm-eval wall s", "llmbench wall s", "wall ratio",
                   "lm-eval eval s", "llmbench eval s", "eval ratio", "score lm-eval/llmbench",
                   "same answers", "batch-invariant"], rows,
                  title="Peer: lm-evaluation-harness 0.4.13 vs llmbench (ratio = lm-eval / llmbench; "
                        "higher is better for llmbench)"))
    target_cells = [x for x in cells if x["batch_size"] == 16]
    speed_ok = all(x["wall_ratio"] >= 2.0 for x in target_cells) if target_cells else None
    scores_ok = all(abs(x["lmeval_score"] - x["llmbench_score"]) < 1e-9 and x["same_outputs"] == x["n"]
                    for x in cells)
    invariant_ok = all(x["llmbench_batch_invariant"] for x in cells)
    print(f"\ntarget: >= 2x faster end to end than lm-eval at batch size 16: {c.verdict(speed_ok)}")
    print(f"target: same scores and same answers as lm-eval: {c.verdict(scores_ok)}")
    print(f"target: llmbench answers identical at batch sizes {sizes}: {c.verdict(invariant_ok)}")
    payload = {"quick": args.quick, "n_mc": n_mc, "n_gen": n_gen, "batch_sizes": sizes,
               "lmeval_version": c.LMEVAL_VERSION, "cells": cells,
               "targets": {"speed_2x_bs16": speed_ok, "same_scores": scores_ok, "batch_invariant": invariant_ok}}
    print(f"wrote {c.write_json('peer_lmeval', payload)}")
    return payload


if __name__ == "__main__":
    main()
