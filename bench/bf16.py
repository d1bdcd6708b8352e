"""bfloat16 on CPU: what ``--model-arg dtype=bfloat16`` gains in speed and costs in accuracy.

For SmolLM2-135M-Instruct (the folder ``peer_lmeval.py`` uses) on the same local rows as the
peer benchmark — multiple choice: the Rotten Tomatoes slice (``rt``) and the 5-shot MMLU-format
task (``mmlu5``); generation: the short-answer task (``gen``) and long generation
(``longgen``) — this runs ``llmbench run`` (through ``_timed.py``, one torch thread, batch
size 16, no response cache) once with ``dtype=float32`` and once with ``dtype=bfloat16``, one
right after the other per task, and prints per task: the model phase (evaluation phase without
the weights' load) in each dtype and the speed-up, the score in each (accuracy / exact match)
and its difference, for multiple choice the largest |log-likelihood difference| over every
choice of every sample, and how many answers differ.

bf16 is fast on CPUs with bf16 instructions: AMX-BF16 (Intel Sapphire Rapids and later) or
AVX512-BF16 (Intel Cooper Lake, AMD Zen 4); without them torch emulates it and it is slower
than float32. The script prints which of these the CPU has. llmbench's ``dtype=auto`` stays
float32 on CPU; bfloat16 is a choice the user makes (README, "Model options").

    .venv/bin/python bench/bf16.py                       # all four tasks (~10 min idle, see README)
    .venv/bin/python bench/bf16.py --tasks rt --rows 32  # a quick check of the machinery
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import peer_lmeval

c.apply_offline_env()

MC_TASKS = ("rt", "mmlu5")
GEN_TASKS = ("gen", "longgen")
DTYPES = ("float32", "bfloat16")


def cpu_bf16() -> dict[str, Any]:
    """The CPU's bf16 support: the flags Linux reports and what torch's oneDNN build sees."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    import torch

    amx_tile = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return {"amx_bf16": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags,
            "torch_amx_tile": bool(amx_tile()) if amx_tile else None,
            "mkldnn_bf16": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())}


def task_files(tasks: list[str], rows: int | None, seed: int) -> dict[str, Path]:
    """The peer benchmark's rows and llmbench task files (``rows`` caps every task for a check)."""
    files: dict[str, Path] = {}
    out = c.TASKS / "bf16"
    if "rt" in tasks:
        n = rows or 500
        data = c.write_jsonl(c.DATA / f"peer_rt_{n}.jsonl", c.make_rt_rows(n))
        files["rt"] = c.llmbench_mc_task("bench_rt", data, out / "bench_rt.yaml",
                                         template=c.RT_TEMPLATE_BODY.format(x="{{ input }}"))
    if "mmlu5" in tasks:
        n = max(1, (rows or 100) // len(c.MMLU_SUBJECTS))
        test, dev = c.make_mmlu_rows(n, 5, seed)
        files["mmlu5"] = c.llmbench_mmlu5_task(c.write_jsonl(c.DATA / f"peer_mmlu5_{n}_test.jsonl", test),
                                               c.write_jsonl(c.DATA / f"peer_mmlu5_{n}_dev.jsonl", dev),
                                               out / "bench_mmlu5.yaml")
    if "gen" in tasks:
        n = rows or 200
        data = c.write_jsonl(c.DATA / f"peer_gen_{n}.jsonl", c.make_gen_rows(n, seed))
        files["gen"] = c.llmbench_gen_task("bench_gen", data, out / "bench_gen.yaml")
    if "longgen" in tasks:
        n = rows or 64
        data = c.write_jsonl(c.DATA / f"peer_longgen_{n}.jsonl", c.make_longgen_rows(n))
        files["longgen"] = c.llmbench_longgen_task("bench_longgen", data, out / "bench_longgen.yaml")
    return files


def compare(task: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One task's row: medians of the model phase, the last run's scores and answers."""
    fp, bf = runs["float32"][-1], runs["bfloat16"][-1]
    fp_s = c.median([r["phase_s"] for r in runs["float32"]])
    bf_s = c.median([r["phase_s"] for r in runs["bfloat16"]])
    row: dict[str, Any] = {
        "task": task, "kind": "multiple choice" if task in MC_TASKS else "generation", "n": len(fp["outputs"]),
        "fp32_phase_s": fp_s, "bf16_phase_s": bf_s, "speedup": fp_s / bf_s,
        "fp32_score": fp["score"], "bf16_score": bf["score"], "score_delta": bf["score"] - fp["score"],
        "answers_differ": sum(bf["outputs"].get(k) != v for k, v in fp["outputs"].items()),
    }
    if task in MC_TASKS:
        row["max_abs_dll"] = max((abs(a - b) for k, ll in fp["lls"].items()
                                  for a, b in zip(ll, bf["lls"][k], strict=True)), default=float("nan"))
    return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=[*MC_TASKS, *GEN_TASKS], choices=[*MC_TASKS, *GEN_TASKS])
    ap.add_argument("--rows", type=int, default=None,
                    help="rows per task for a quick check (default: rt 500, mmlu5 100, gen 200, longgen 64)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=1, help="runs per task and dtype (median model phase)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    cpu = cpu_bf16()
    print(f"CPU bf16 support: AMX-BF16 {cpu['amx_bf16']}, AVX512-BF16 {cpu['avx512_bf16']}, "
          f"torch AMX tiles {cpu['torch_amx_tile']}, oneDNN bf16 {cpu['mkldnn_bf16']}", flush=True)
    model = c.ensure_smollm2()
    files = task_files(args.tasks, args.rows, args.seed)
    work = c.OUT / "bf16"
    rows = []
    for task in args.tasks:
        runs: dict[str, list[dict[str, Any]]] = {d: [] for d in DTYPES}
        for _ in range(args.repeats):
            for dtype in DTYPES:  # one right after the other: both see the same machine load
                runs[dtype].append(peer_lmeval.run_llmbench(model, files[task], task, args.batch_size,
                                                            work / dtype, model_args=(f"dtype={dtype}",)))
        row = compare(task, runs)
        rows.append(row)
        print(f"  {task}: float32 {row['fp32_phase_s']:.1f}s / bfloat16 {row['bf16_phase_s']:.1f}s "
              f"(x{row['speedup']:.2f}), score {row['fp32_score']:.3f} / {row['bf16_score']:.3f}, "
              f"{row['answers_differ']}/{row['n']} answers differ", flush=True)

    print("\n--- results ---")
    print(c.table(
        ["task", "kind", "n", "model phase fp32 s", "model phase bf16 s", "speed-up fp32/bf16",
         "score fp32", "score bf16", "score delta (bf16 - fp32)", "max |d ll| (MC)", "answers that differ"],
        [[r["task"], r["kind"], r["n"], r["fp32_phase_s"], r["bf16_phase_s"], f"{r['speedup']:.2f}x",
          f"{r['fp32_score']:.4f}", f"{r['bf16_score']:.4f}", f"{r['score_delta']:+.4f}",
          f"{r['max_abs_dll']:.3g}" if "max_abs_dll" in r else "-", f"{r['answers_differ']}/{r['n']}"]
         for r in rows],
        title=f"bfloat16 vs float32 on CPU, SmolLM2-135M-Instruct, llmbench, batch size {args.batch_size}, "
              f"{c.threads()} torch thread(s) (score: accuracy for MC, exact match for generation)"))
    kinds = {r["kind"] for r in rows}
    measured = {"multiple choice", "generation"} <= kinds
    print(f"\ntarget (issue 24): speed-up and score delta of bf16 against fp32 measured for multiple choice "
          f"and generation: {c.verdict(measured)}")
    faster = [r["task"] for r in rows if r["speedup"] > 1]
    print(f"bf16 faster than fp32 on: {', '.join(faster) or 'none'} (no threshold: a measurement for the README)")
    payload = {"cpu": cpu, "batch_size": args.batch_size, "rows": rows, "targets": {"measured": measured}}
    print(f"wrote {c.write_json('bf16', payload)}")
    return payload


if __name__ == "__main__":
    main()
