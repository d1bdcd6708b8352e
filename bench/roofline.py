"""How far each harness is from this machine's limit: a measured roofline per model.

For each model this measures, in one process with the benchmarks' thread count:

* **prefill peak**: the best forward tokens/s of a plain ``model(input_ids)`` (full logits,
  no cache) over batch shapes rows × 32 tokens, rows in 1, 16, 64 — the "naive forward
  bound" a harness that runs every token through the whole model once would sit at;
* **decode peak** at each batch size: tokens/s of one-token steps on a KV cache (what
  generation runs), since a decode step does rows tokens of work, not rows × length.

Each is measured with ``nn.Linear`` as PyTorch runs it and again with the linear layers
packed for oneDNN (``llmbench.models.hf.cpu_linear``, what llmbench runs on CPU in float32);
the peak at each shape is the faster of the two (both are kept under ``kernels``).

``bound_s(...)`` turns a task's token counts into the seconds those peaks allow: prompt
tokens at the prefill peak, generated tokens at the decode peak of the batch size. A
harness's *efficiency* is ``bound_s / its model phase`` (1.0 = at the naive bound; above
1.0 means it skips work the naive forward does, such as the output projection where no
log-probability is needed). ``peer_lmeval.py`` reads ``bench/out/roofline.json`` for its
fraction columns.

    .venv/bin/python bench/roofline.py --models gpt2 smollm2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

c.apply_offline_env()

ROWS = (1, 16, 64)
PREFILL_LEN = 32
DECODE_CTX = 32  # prompt tokens in the cache when the decode steps are timed
DECODE_STEPS = 16


def model_path(name: str, seed: int = 0) -> Path:
    if name == "smollm2":
        return c.ensure_smollm2()
    return c.ensure_models(seed, [name])[name]


def _best(fn: Any, repeats: int, budget_s: float) -> float:
    """The shortest of ``repeats`` timed calls (stops early past ``budget_s``): the peak is
    the least-disturbed run, which on a shared machine is the honest estimate of the limit."""
    best = float("inf")
    spent = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
        if spent > budget_s:
            break
    return best


def measure(path: Path, repeats: int = 3, budget_s: float = 20.0) -> dict[str, Any]:
    """Prefill and decode tokens/s of a causal or seq2seq checkpoint."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    torch.set_num_threads(int(c.threads()))
    config = AutoConfig.from_pretrained(path)
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = auto.from_pretrained(path, dtype=torch.float32).eval()
    vocab = int(config.vocab_size)
    kernels = {"torch": _peaks(model, seq2seq, vocab, repeats, budget_s)}
    from llmbench.models.hf.cpu_linear import pack_linears

    if pack_linears(model, "onednn"):  # the kernel llmbench runs by default (cpu_linear)
        kernels["onednn"] = _peaks(model, seq2seq, vocab, repeats, budget_s)
    # The limit is the best kernel at each shape.
    prefill = {rows: max(k["prefill_tps"][rows] for k in kernels.values()) for rows in ROWS}
    decode = {rows: max(k["decode_tps"][rows] for k in kernels.values()) for rows in ROWS}
    return {"path": str(path), "params": c.param_count(path) if (path / "model.safetensors").exists() else None,
            "seq2seq": seq2seq, "prefill_tps": prefill, "decode_tps": decode,
            "prefill_peak_tps": max(prefill.values()), "threads": c.threads(), "kernels": kernels}


def _peaks(model: Any, seq2seq: bool, vocab: int, repeats: int, budget_s: float) -> dict[str, dict[int, float]]:
    import torch

    gen = torch.Generator().manual_seed(0)
    prefill: dict[int, float] = {}
    decode: dict[int, float] = {}
    with torch.inference_mode():
        for rows in ROWS:
            ids = torch.randint(3, vocab, (rows, PREFILL_LEN), generator=gen)
            dec = torch.zeros((rows, 1), dtype=torch.long) if seq2seq else None

            def run(ids: torch.Tensor = ids, dec: torch.Tensor | None = dec) -> None:
                if dec is None:
                    model(input_ids=ids, use_cache=False)
                else:
                    model(input_ids=ids, decoder_input_ids=dec, use_cache=False)

            run()  # warm-up: first-call allocations
            prefill[rows] = rows * PREFILL_LEN / _best(run, repeats, budget_s)
            decode[rows] = rows / _decode_step(model, seq2seq, rows, vocab, gen, repeats, budget_s)
    return {"prefill_tps": prefill, "decode_tps": decode}


def _decode_step(model: Any, seq2seq: bool, rows: int, vocab: int, gen: Any, repeats: int,
                 budget_s: float) -> float:
    """Seconds of one decode step (rows × 1 new token on a cache of ``DECODE_CTX``),
    the best of ``repeats`` averages over ``DECODE_STEPS`` steps."""
    import torch

    ids = torch.randint(3, vocab, (rows, DECODE_CTX), generator=gen)
    step = torch.randint(3, vocab, (rows, 1), generator=gen)

    def run() -> None:
        if seq2seq:
            enc = model.get_encoder()(input_ids=ids)
            dec = torch.zeros((rows, 1), dtype=torch.long)
            out = model(encoder_outputs=enc, decoder_input_ids=dec, use_cache=True)
            for _ in range(DECODE_STEPS):
                out = model(encoder_outputs=enc, decoder_input_ids=step, past_key_values=out.past_key_values,
                            use_cache=True)
            return
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        for _ in range(DECODE_STEPS):
            out = model(input_ids=step, past_key_values=out.past_key_values, use_cache=True)

    def prefill_only() -> None:
        if seq2seq:
            enc = model.get_encoder()(input_ids=ids)
            model(encoder_outputs=enc, decoder_input_ids=torch.zeros((rows, 1), dtype=torch.long), use_cache=True)
        else:
            model(input_ids=ids, use_cache=True, logits_to_keep=1)

    run()
    total = _best(run, repeats, budget_s)
    base = _best(prefill_only, repeats, budget_s)
    return max(total - base, 1e-9) / DECODE_STEPS


def bound_s(peaks: dict[str, Any], *, prompt_tokens: int, generated_tokens: int = 0,
            batch_size: int = 16) -> float:
    """Seconds the measured peaks allow for a task's tokens (see the module docstring)."""
    decode = {int(k): float(v) for k, v in peaks["decode_tps"].items()}
    rows = min(decode, key=lambda r: (abs(r - batch_size), r))
    return prompt_tokens / float(peaks["prefill_peak_tps"]) + generated_tokens / decode[rows]


def load(name: str) -> dict[str, Any] | None:
    """The peaks of ``name`` from ``bench/out/roofline.json``, if measured."""
    import json

    path = c.OUT / "roofline.json"
    if not path.exists():
        return None
    models: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")).get("models", {})
    return models.get(name)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["gpt2", "smollm2"], choices=["gpt2", "t5", "smollm2"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    import json

    path = c.OUT / "roofline.json"
    old: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")).get("models", {}) if path.exists() else {}
    results = {name: measure(model_path(name), args.repeats) for name in args.models}
    rows = [[f"{name} ({kernel})", r["params"] or "-", f"{max(k['prefill_tps'].values()):.0f}",
             *(f"{k['prefill_tps'][b]:.0f}" for b in ROWS), *(f"{k['decode_tps'][b]:.0f}" for b in ROWS)]
            for name, r in results.items() for kernel, k in [*r["kernels"].items(), ("peak", r)]]
    print("\n--- results ---")
    print(c.table(["model", "params", "prefill peak tok/s", *(f"prefill bs{b}" for b in ROWS),
                   *(f"decode bs{b}" for b in ROWS)], rows,
                  title=f"Roofline: forward tokens/s on this machine ({c.threads()} torch thread(s))"))
    payload = {"models": {**old, **results}}
    print(f"wrote {c.write_json('roofline', payload)}")
    return payload


if __name__ == "__main__":
    main()
