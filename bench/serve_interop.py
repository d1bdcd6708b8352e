"""Interop: lm-evaluation-harness 0.4.13 through ``llmbench serve`` against lm-eval on the model itself.

Other harnesses point their OpenAI-compatible clients at ``llmbench serve``; they must get the
numbers they would get from the checkpoint directly. For each checkpoint this script

* serves it with ``llmbench serve`` (with an API key, so the clients' bearer header is used),
* runs lm-eval's ``local-completions`` (default settings: ``tokenized_requests=True``, token-id
  prompts; again with ``tokenized_requests=False``, text prompts; and with ``batch_size=4``,
  batched token-id prompts) and ``local-chat-completions`` (``--apply_chat_template``),
* runs lm-eval's own ``hf`` model on the same folder (plain, and with the chat template),

on two tasks: ``interop_mc``, multiple choice whose choices are multi-byte text (accents, CJK,
Greek, emoji: byte-piece tokens), and ``interop_gen``, short generation that stops on EOS (the
trained model ends its answers with EOS; the stop string "\\n\\n" never comes). It compares
every log-likelihood (target: within 1e-4) and every answer (the chosen choice, the generated
text: target: all the same).

Checkpoints: ``tiny-random`` (llmbench.testing's random-init GPT-2: its greedy tokens are often
byte pieces), ``tiny-eos`` (a 2-layer GPT-2 trained here for a few hundred steps to answer and
end with EOS) and, with ``--smollm2``, SmolLM2-135M-Instruct (its de-quantised cache folder).
Run with one torch thread; the table is about correctness, not speed:

    OMP_NUM_THREADS=1 .venv/bin/python bench/serve_interop.py [--smollm2] [--n-mc 40 --n-gen 30]

lm-eval is installed on first use into ``bench/.venv-lmeval`` (``bench/_common.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

c.apply_offline_env()

WORK = c.OUT / "serve_interop"
NAME = "interop"
KEY = "interop-key"
TOL = 1e-4
CHAT_TEMPLATE = (  # for the tiny models, which ship none; SmolLM2 keeps its own
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
MULTIBYTE = ["café", "naïve", "東京", "😀", "crème brûlée", "Straße", "Ελλάδα", "señor", "日本語",
             "ok", "résumé", "🙂 yes", "façade", "Zürich", "déjà vu", "北京"]
MAX_GEN = 16

# -------------------------------------------------------------------------------- data


def make_rows(n_mc: int, n_gen: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    words = c._WORDS
    mc = []
    for i in range(n_mc):
        q = " ".join(rng.choice(words) for _ in range(rng.randint(3, 8)))
        choices = rng.sample(MULTIBYTE, 4)
        mc.append({"id": f"mc-{i}", "question": q, "choices": choices, "label": rng.randrange(4)})
    gen = []
    for i in range(n_gen):
        q = " ".join(rng.choice(words) for _ in range(rng.randint(3, 8)))
        gen.append({"id": f"gen-{i}", "question": q, "answer": answer_for(q)})
    return mc, gen


def answer_for(question: str) -> str:
    """What the trained model learns to answer: a multi-byte word picked by the question."""
    return MULTIBYTE[sum(map(ord, question.split()[0])) % len(MULTIBYTE)]


def task_dir(mc: Path, gen: Path, out: Path) -> Path:
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    common = {"dataset_path": "json", "test_split": "test", "metadata": {"version": 1.0},
              "doc_to_text": "Question: {{question}}\nAnswer:", "target_delimiter": " "}
    (out / "interop_mc.yaml").write_text(yaml.safe_dump({
        "task": "interop_mc", **common, "dataset_kwargs": {"data_files": {"test": str(mc)}},
        "output_type": "multiple_choice", "doc_to_choice": "{{choices}}", "doc_to_target": "{{label}}",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }, sort_keys=False, allow_unicode=True), encoding="utf-8")
    (out / "interop_gen.yaml").write_text(yaml.safe_dump({
        "task": "interop_gen", **common, "dataset_kwargs": {"data_files": {"test": str(gen)}},
        "output_type": "generate_until", "doc_to_target": "answer",
        "generation_kwargs": {"until": ["\n\n"], "max_gen_toks": MAX_GEN, "do_sample": False,
                              "temperature": 0.0},
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    }, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


# ------------------------------------------------------------------------------ models


def build_tiny_random(out: Path) -> Path:
    if (out / "config.json").exists():
        return out
    from llmbench.testing import random_gpt2

    model, tok = random_gpt2(seed=0)
    tok.chat_template = CHAT_TEMPLATE
    c._save(out, model.eval(), tok)
    return out


def build_tiny_eos(out: Path, steps: int = 400, seed: int = 0) -> Path:
    """A 2-layer GPT-2 trained to answer "Question: q\\nAnswer: a<eos>" (the answer picked by
    the question's first word), so greedy answers end on EOS; its tokenizer never saw the
    multi-byte words, so they are byte pieces."""
    if (out / "config.json").exists():
        return out
    import torch

    from llmbench.testing import random_gpt2

    model, tok = random_gpt2(seed=seed, n_layer=2, n_embd=64, n_head=2, vocab_size=400,
                             corpus=c.bench_corpus())
    tok.chat_template = CHAT_TEMPLATE
    rng = random.Random(seed + 7)
    texts = []
    for _ in range(4000):
        q = " ".join(rng.choice(c._WORDS) for _ in range(rng.randint(3, 8)))
        texts.append(f"Question: {q}\nAnswer: {answer_for(q)}{tok.eos_token}")
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    tok.padding_side = "right"
    for step in range(steps):
        batch = texts[(step * 32) % len(texts):][:32]
        enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False)
        labels = enc["input_ids"].clone()
        # each row's own EOS is a target (the model must learn to end); the pads after it are not
        labels[enc["attention_mask"] == 0] = -100
        loss = model(**enc, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    tok.padding_side = "left"
    c._save(out, model.eval(), tok)
    return out


def smollm2_folder() -> Path:
    from llmbench.models.hf.gguf import dequantized_dir
    from llmbench.models.packaged import SMOLLM2

    return dequantized_dir(SMOLLM2.path())


# ------------------------------------------------------------------------------ server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``llmbench serve`` in a subprocess, with an API key, until the block ends."""

    def __init__(self, path: Path) -> None:
        self.path, self.port = path, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = WORK / f"serve-{path.name}.log"

    def __enter__(self) -> Server:
        env = c.bench_env(LLMBENCH_SERVE_API_KEY=KEY)
        argv = [str(c.LLMBENCH), "serve", f"hf:{self.path}", "--port", str(self.port), "--name", NAME,
                "--model-arg", "device=cpu", "--model-arg", "dtype=float32"]
        self.fh = self.log.open("w")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llmbench serve exited: {self.log.read_text()[-2000:]}")
            try:
                req = urllib.request.Request(f"{self.url}/models",
                                             headers={"Authorization": f"Bearer {KEY}"})
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("llmbench serve did not start in 300 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.fh.close()


# ------------------------------------------------------------------------------ lm-eval

DRIVER = '''
import json, sys
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager
a = json.loads(sys.argv[1])
res = simple_evaluate(model=a["model"], model_args=a["model_args"], tasks=a["tasks"],
                      task_manager=TaskManager(include_path=a["include"]), batch_size=a["batch_size"],
                      log_samples=True, apply_chat_template=a["chat"], device="cpu")
out = {t: {str(s["doc_id"]): s["resps"] for s in rows} for t, rows in res["samples"].items()}
json.dump(out, open(a["out"], "w"), ensure_ascii=False)
'''


def lmeval(py: Path, label: str, model: str, model_args: str, tasks: list[str], include: Path, *,
           chat: bool = False, batch_size: int = 1) -> dict[str, dict[str, Any]]:
    out = WORK / f"{label}.json"
    driver = WORK / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    args = {"model": model, "model_args": model_args, "tasks": tasks, "include": str(include),
            "batch_size": batch_size, "chat": chat, "out": str(out)}
    env = c.bench_env(OPENAI_API_KEY=KEY)
    t0 = time.perf_counter()
    res = c.run_proc([py, driver, json.dumps(args)], env=env, timeout=3600, check=False)
    if res.rc != 0:
        raise RuntimeError(f"lm-eval {label} failed (rc={res.rc}):\n{(res.stderr or res.stdout)[-4000:]}")
    print(f"    {label}: {time.perf_counter() - t0:.0f} s", flush=True)
    data: dict[str, dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
    return data


def compare_mc(ref: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    """Per choice log-likelihood and greedy flag; per doc the chosen answer."""
    diff, same_answer, same_greedy, n = 0.0, 0, 0, 0
    for doc, choices in ref.items():
        r = [float(x[0][0]) for x in choices]
        g = [float(x[0][0]) for x in got[doc]]
        diff = max(diff, *(abs(a - b) for a, b in zip(r, g, strict=True)))
        same_answer += int(max(range(len(r)), key=r.__getitem__) == max(range(len(g)), key=g.__getitem__))
        same_greedy += int([bool(x[0][1]) for x in choices] == [bool(x[0][1]) for x in got[doc]])
        n += 1
    return {"n": n, "max_abs_ll": diff, "answers_equal": same_answer, "greedy_equal": same_greedy}


def compare_gen(ref: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    same = sum(int(ref[d][0][0] == got[d][0][0]) for d in ref)
    return {"n": len(ref), "max_abs_ll": None, "answers_equal": same, "greedy_equal": None}


def coverage(path: Path, mc_rows: list[dict[str, Any]], gen_rows: list[dict[str, Any]]) -> dict[str, int]:
    """How often the cases the fixes are about occur, read from the model itself: the token
    the model generates after a choice (lm-eval's max_tokens=1 request) is EOS or a byte
    piece of a character; a greedy answer ends on EOS or holds byte pieces."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    eos = {tok.eos_token_id, model.generation_config.eos_token_id} - {None}

    def piece(t: int) -> bool:
        return "\ufffd" in tok.decode([t])

    out = {"ll_requests": 0, "ll_next_eos": 0, "ll_next_byte_piece": 0, "gen": len(gen_rows),
           "gen_ends_on_eos": 0, "gen_with_byte_pieces": 0}
    with torch.inference_mode():
        for r in mc_rows:
            for ch in r["choices"]:
                ids = tok(f"Question: {r['question']}\nAnswer: {ch}", add_special_tokens=False)["input_ids"]
                nxt = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
                out["ll_requests"] += 1
                out["ll_next_eos"] += nxt in eos
                out["ll_next_byte_piece"] += piece(nxt)
        for r in gen_rows:
            ids = tok(f"Question: {r['question']}\nAnswer:", add_special_tokens=False)["input_ids"]
            gen = model.generate(torch.tensor([ids]), max_new_tokens=MAX_GEN, do_sample=False,
                                 pad_token_id=tok.pad_token_id or tok.eos_token_id)[0, len(ids):].tolist()
            out["gen_ends_on_eos"] += any(t in eos for t in gen)
            out["gen_with_byte_pieces"] += any(piece(t) for t in gen)
    return out


def run_model(py: Path, label: str, path: Path, include: Path) -> list[dict[str, Any]]:
    print(f"== {label}: {path}", flush=True)
    tasks = ["interop_mc", "interop_gen"]
    hf = lmeval(py, f"{label}-hf", "hf", f"pretrained={path},dtype=float32", tasks, include)
    hf_chat = lmeval(py, f"{label}-hf-chat", "hf", f"pretrained={path},dtype=float32", ["interop_gen"],
                     include, chat=True)
    rows = []
    with Server(path) as server:
        base = f"model={NAME},tokenizer={path},max_retries=1"
        comp = f"{base},base_url={server.url}/completions"
        runs = [
            ("local-completions tokenized", lmeval(py, f"{label}-lc-tok", "local-completions", comp, tasks,
                                                   include), hf),
            ("local-completions text", lmeval(py, f"{label}-lc-text", "local-completions",
                                              f"{comp},tokenized_requests=False", tasks, include), hf),
            ("local-completions tokenized batch 4", lmeval(py, f"{label}-lc-batch", "local-completions", comp,
                                                           ["interop_mc"], include, batch_size=4), hf),
            ("local-chat-completions", lmeval(py, f"{label}-chat", "local-chat-completions",
                                              f"{base},base_url={server.url}/chat/completions",
                                              ["interop_gen"], include, chat=True), hf_chat),
        ]
    for client, got, ref in runs:
        for task in got:
            cmp = (compare_mc if task == "interop_mc" else compare_gen)(ref[task], got[task])
            rows.append({"model": label, "client": client, "task": task, **cmp})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-mc", type=int, default=40)
    ap.add_argument("--n-gen", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smollm2", action="store_true", help="also SmolLM2-135M-Instruct (slower)")
    ap.add_argument("--only", choices=["tiny-random", "tiny-eos", "smollm2"], action="append")
    args = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    py = c.ensure_lmeval()
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", f"lm-eval[api]=={c.LMEVAL_VERSION}",
                    *c.LMEVAL_PINS], check=True)  # local-completions needs aiohttp, tenacity
    mc_rows, gen_rows = make_rows(args.n_mc, args.n_gen, args.seed)
    mc = c.write_jsonl(WORK / "mc.jsonl", mc_rows)
    gen = c.write_jsonl(WORK / "gen.jsonl", gen_rows)
    include = task_dir(mc, gen, WORK / "tasks")
    models = {"tiny-random": lambda: build_tiny_random(c.MODELS / "interop-tiny-random"),
              "tiny-eos": lambda: build_tiny_eos(c.MODELS / "interop-tiny-eos")}
    if args.smollm2:
        models["smollm2"] = smollm2_folder
    rows: list[dict[str, Any]] = []
    cover: dict[str, dict[str, int]] = {}
    for label, build in models.items():
        if args.only and label not in args.only:
            continue
        path = build()
        cover[label] = coverage(path, mc_rows, gen_rows)
        print(f"    coverage: {cover[label]}", flush=True)
        rows += run_model(py, label, path, include)
    table = c.table(
        ["model", "client", "task", "n", "max |Δ loglik|", "answers equal", "greedy flags equal"],
        [[r["model"], r["client"], r["task"], r["n"],
          "-" if r["max_abs_ll"] is None else f"{r['max_abs_ll']:.2e}", f"{r['answers_equal']}/{r['n']}",
          "-" if r["greedy_equal"] is None else f"{r['greedy_equal']}/{r['n']}"] for r in rows],
        title=f"lm-eval {c.LMEVAL_VERSION} via llmbench serve vs lm-eval's hf model (same checkpoint)")
    print(table)
    print(c.table(["model", "ll requests", "next token EOS", "next token a byte piece", "gen answers",
                   "ending on EOS", "with byte pieces"],
                  [[m, v["ll_requests"], v["ll_next_eos"], v["ll_next_byte_piece"], v["gen"],
                    v["gen_ends_on_eos"], v["gen_with_byte_pieces"]] for m, v in cover.items()],
                  title="How often the fixed cases occur (read from the model directly)"))
    ok = all((r["max_abs_ll"] is None or r["max_abs_ll"] <= TOL) and r["answers_equal"] == r["n"]
             and (r["greedy_equal"] is None or r["greedy_equal"] == r["n"]) for r in rows)
    print(f"target (every log-likelihood within {TOL:g}, every answer the same): {c.verdict(ok)}")
    path = c.write_json("serve_interop", {"rows": rows, "coverage": cover, "target_met": ok, "tolerance": TOL,
                                          "lmeval_version": c.LMEVAL_VERSION,
                                          "threads": os.environ.get("OMP_NUM_THREADS")})
    print(f"wrote {path}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
