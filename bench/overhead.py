"""Harness overhead: llmbench's evaluation phase against a bare loop over the same model.

Both sides use the same loaded model object in one process and the same batches of
tokens (prompts tokenised and sorted longest first, ``batch size`` rows per batch):

* llmbench: ``llmbench.runner.evaluate`` — build requests, tokenise, batch, run the model,
  score, bootstrap confidence intervals, write the run to a (temporary) SQLite store;
* bare loop: the prompts tokenised *before* the clock starts, then only what any harness
  must do — for multiple choice one forward per batch and a log-softmax at the answer
  position (T5: encoder + one decoder step), for generation ``model.generate`` with
  transformers' own ``stop_strings`` criterion and a decode of the new tokens.

The ratio llmbench / bare is the harness overhead (target <= 1.15). The two sides run
alternately, ``--repeats`` times, and the medians are compared; the bare loop's answers are
checked against llmbench's so that both did the same work.

    .venv/bin/python bench/overhead.py                 # 500 MC / 200 generation samples, bs 16
    .venv/bin/python bench/overhead.py --quick
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

c.apply_offline_env()


def _batches(items: list[Any], key: Any, bs: int) -> list[list[Any]]:
    items = sorted(items, key=key)
    return [items[i : i + bs] for i in range(0, len(items), bs)]


def bare_mc(model: Any, tok: Any, rows: list[dict[str, Any]], bs: int, seq2seq: bool,
            render: Any = c.render_mc, labels: tuple[str, ...] = c.LABELS) -> tuple[float, dict[str, str]]:
    """Untimed: tokenise. Timed: one forward per batch + log-softmax of the answer token."""
    import torch

    conts = [tok(" " + lab, add_special_tokens=False)["input_ids"] for lab in labels]
    assert all(len(x) == 1 for x in conts), "bare loop assumes single-token labels"
    choice = torch.tensor([x[0] for x in conts])
    enc = [(r["id"], tok(render(r), add_special_tokens=seq2seq)["input_ids"]) for r in rows]
    pad_id = tok.pad_token_id
    tensors = []
    for batch in _batches(enc, lambda e: -len(e[1]), bs):
        width = max(len(ids) for _, ids in batch)
        ids = torch.full((len(batch), width), pad_id)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for k, (_, x) in enumerate(batch):
            sl = slice(0, len(x)) if seq2seq else slice(width - len(x), width)  # causal: left pad
            ids[k, sl] = torch.tensor(x)
            mask[k, sl] = 1
        tensors.append(([i for i, _ in batch], ids, mask))
    start_id = int(model.config.decoder_start_token_id) if seq2seq else 0
    out: dict[str, str] = {}
    t0 = time.perf_counter()
    with torch.inference_mode():
        for sample_ids, ids, mask in tensors:
            if seq2seq:
                dec = torch.full((ids.shape[0], 1), start_id)
                logits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits[:, -1]
            else:
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
                logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1).logits[:, -1]
            lp = logits.double().log_softmax(-1)[:, choice]
            for sid, k in zip(sample_ids, lp.argmax(-1).tolist(), strict=True):
                out[sid] = labels[k]
    return time.perf_counter() - t0, out


def bare_gen(model: Any, tok: Any, rows: list[dict[str, Any]], bs: int, seq2seq: bool, *,
             render: Any = c.render_gen, stop: str = "\n",
             max_new_tokens: int = c.MAX_NEW_TOKENS) -> tuple[float, dict[str, str]]:
    """Untimed: tokenise and pad. Timed: ``generate`` (greedy, stop_strings) + decode."""
    import torch

    tok.padding_side = "right" if seq2seq else "left"
    enc = [(r["id"], render(r)) for r in rows]
    lengths = {sid: len(tok(text, add_special_tokens=seq2seq)["input_ids"]) for sid, text in enc}
    tensors = []
    for batch in _batches(enc, lambda e: -lengths[e[0]], bs):
        t = tok([text for _, text in batch], return_tensors="pt", padding=True, add_special_tokens=seq2seq)
        tensors.append(([i for i, _ in batch], t["input_ids"], t["attention_mask"]))
    eos = model.generation_config.eos_token_id
    out: dict[str, str] = {}
    t0 = time.perf_counter()
    with torch.inference_mode():
        for sample_ids, ids, mask in tensors:
            gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, num_beams=1, stop_strings=[stop], tokenizer=tok,
                                 pad_token_id=tok.pad_token_id, eos_token_id=eos)
            new = gen[:, 1:] if seq2seq else gen[:, ids.shape[1]:]
            for sid, text in zip(sample_ids, tok.batch_decode(new, skip_special_tokens=True), strict=True):
                out[sid] = text.split(stop)[0].strip()
    return time.perf_counter() - t0, out


def llmbench_eval(adapter: Any, task: Any, spec: str, bs: int,
                  limit: int | None = None) -> tuple[float, dict[str, str], float]:
    """Time ``runner.evaluate`` alone (the adapter is loaded already); no response cache."""
    from llmbench.runner import ModelEntry, RunConfig, evaluate
    from llmbench.store import ResultStore

    with tempfile.TemporaryDirectory(dir=c.OUT) as tmp:
        store = ResultStore(str(Path(tmp) / "store.db"))
        entry = ModelEntry(spec=spec, options={"max_batch_size": bs})
        t0 = time.perf_counter()
        result = evaluate(task, adapter, entry, RunConfig(use_cache=False, limit=limit), store=store, cache=None)
        wall = time.perf_counter() - t0
        samples = store.samples(result.run_id)
        store.engine.dispose()
    score = next((m.value for m in result.metrics if m.name == result.primary_metric), result.metrics[0].value)
    return wall, {s.sample_id: (s.prediction or "").strip() for s in samples}, score


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 MC / 40 generation samples, 1 repeat")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=None, help="alternating runs per side (default 3; quick 1)")
    ap.add_argument("--models", nargs="+", default=["gpt2", "t5"], choices=["gpt2", "t5"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n_mc, n_gen = (100, 40) if args.quick else (500, 200)
    repeats = args.repeats or (1 if args.quick else 3)
    bs = args.batch_size

    from llmbench.models import load_adapter
    from llmbench.models.hf.adapter import HFAdapter
    from llmbench.tasks import load_task

    models = c.ensure_models(args.seed, args.models)
    mc_rows, gen_rows = c.make_mc_rows(n_mc, args.seed), c.make_gen_rows(n_gen, args.seed)
    mc = c.write_jsonl(c.DATA / f"peer_mc_{n_mc}.jsonl", mc_rows)
    gen = c.write_jsonl(c.DATA / f"peer_gen_{n_gen}.jsonl", gen_rows)
    task_files = {"mc": c.llmbench_mc_task("bench_mc", mc, c.TASKS / "overhead" / "bench_mc.yaml"),
                  "gen": c.llmbench_gen_task("bench_gen", gen, c.TASKS / "overhead" / "bench_gen.yaml")}
    cells = []
    for name in args.models:
        spec = f"hf:{models[name]}"
        adapter = load_adapter(spec, {"max_batch_size": bs})
        assert isinstance(adapter, HFAdapter), spec
        model, tok = adapter.runtime.model, adapter.runtime.tokenizer
        seq2seq = name == "t5"
        for task_name, rows, bare in (("mc", mc_rows, bare_mc), ("gen", gen_rows, bare_gen)):
            task = load_task(str(task_files[task_name]))
            task.samples()  # load the data once, like the CLI does before the evaluation phase
            llm_times, bare_times = [], []
            # Warm-up of both sides (allocator, first-call paths, and llmbench's one-time
            # imports such as scikit-learn for the metric, which fixed_cost.py and the peer
            # benchmark's whole-process times account for).
            bare(model, tok, rows[: 2 * bs], bs, seq2seq)
            llmbench_eval(adapter, task, spec, bs, limit=2 * bs)
            for _ in range(repeats):
                t_bare, bare_out = bare(model, tok, rows, bs, seq2seq)
                t_llm, llm_out, score = llmbench_eval(adapter, task, spec, bs)
                bare_times.append(t_bare)
                llm_times.append(t_llm)
            same = sum(bare_out.get(k) == v for k, v in llm_out.items())
            cell = {"model": name, "task": task_name, "batch_size": bs, "n": len(rows),
                    "bare_s": c.median(bare_times), "llmbench_s": c.median(llm_times),
                    "bare_runs": bare_times, "llmbench_runs": llm_times, "same_answers": same,
                    "llmbench_score": score}
            cell["ratio"] = cell["llmbench_s"] / cell["bare_s"]
            cells.append(cell)
            print(f"  {name} {task_name}: bare {cell['bare_s']:.2f}s llmbench {cell['llmbench_s']:.2f}s "
                  f"ratio {cell['ratio']:.3f} same answers {same}/{len(rows)}", flush=True)
        adapter.close()

    print("\n--- results ---")
    print(c.table(["model", "task", "bs", "n", "bare loop s", "llmbench eval s", "ratio", "same answers"],
                  [[x["model"], x["task"], x["batch_size"], x["n"], x["bare_s"], x["llmbench_s"],
                    f"{x['ratio']:.3f}", f"{x['same_answers']}/{x['n']}"] for x in cells],
                  title=f"Overhead: llmbench evaluation phase vs bare model loop (median of {repeats}, "
                        "alternating; ratio = llmbench / bare)"))
    ok = all(x["ratio"] <= 1.15 for x in cells)
    print(f"\ntarget: harness overhead <= 15% (ratio <= 1.15): {c.verdict(ok)}")
    payload = {"quick": args.quick, "repeats": repeats, "cells": cells, "targets": {"overhead_le_1.15": ok}}
    print(f"wrote {c.write_json('overhead', payload)}")
    return payload


if __name__ == "__main__":
    main()
