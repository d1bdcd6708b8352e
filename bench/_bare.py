"""A bare process: what any harness built on Hugging Face's model code pays end to end.

    python bench/_bare.py MODEL_DIR {mc,gen,rt,longgen} DATA.jsonl BATCH_SIZE
    python bench/_bare.py MODEL_DIR mmlu5 TEST.jsonl BATCH_SIZE DEV.jsonl

It imports torch and transformers, loads the tokenizer and the model, runs the task's rows
through the bare loops of ``overhead.py`` (multiple choice: one forward per batch and a
log-softmax at the answer position; generation: ``model.generate`` with transformers' own
``stop_strings``), prints the answers as one ``BENCH_JSON`` line and leaves with
``os._exit``, as llmbench's CLI does (no interpreter teardown). No task files, no store, no
scoring, no confidence intervals: ``peer_lmeval.py`` times it fork to exit beside both
harnesses, so "lm-eval / bare" is the most any harness could gain on that cell with this
model code and one torch thread, and "llmbench / bare" what llmbench spends above it.
For generation the bare loop is not a floor: llmbench's own decode loop drops finished rows
that ``generate`` keeps computing, and can be faster.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import overhead


def main() -> None:
    model_dir, task, data, bs = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    torch.set_num_threads(int(c.threads()))
    seq2seq = bool(AutoConfig.from_pretrained(model_dir).is_encoder_decoder)
    cls = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = cls.from_pretrained(model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    if task == "gen":
        _, out = overhead.bare_gen(model, tok, rows, bs, seq2seq)
    elif task == "longgen":
        _, out = overhead.bare_gen(model, tok, rows, bs, seq2seq, render=c.render_longgen, stop=c.LONGGEN_STOP,
                                   max_new_tokens=c.LONGGEN_MAX_NEW_TOKENS)
    elif task == "mmlu5":
        # every prompt in full (the five shots recomputed per question, as lm-eval does)
        dev = [json.loads(line) for line in Path(sys.argv[5]).read_text().splitlines() if line.strip()]
        for row, key in zip(rows, c.mmlu_keys([r["subject"] for r in rows]), strict=True):
            row["id"] = key
        _, out = overhead.bare_mc(model, tok, rows, bs, seq2seq, render=lambda r: c.render_mmlu5(r, dev),
                                  labels=c.MMLU_LETTERS)
    else:
        render = (lambda r: c.RT_TEMPLATE_BODY.format(x=r["text"])) if task == "rt" else c.render_mc
        _, out = overhead.bare_mc(model, tok, rows, bs, seq2seq, render=render)
    print("BENCH_JSON " + json.dumps({"outputs": out}), file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
