"""Fidelity: llmbench's multiple choice and perplexity against lm-evaluation-harness 0.4.13.

Correctness only, no timing. On the same model and the same rows, per sample:

* multiple choice (``mmlu``, ``arc_easy``, ``hellaswag`` catalog tasks on the local rows in
  the Hub's format under ``tests/fixtures/multiple_choice/``, read with ``--data``): the prompt
  (llmbench's rendered prompt vs lm-eval's context), each choice's log-likelihood (largest
  difference), and ``acc``/``acc_norm``/``acc_bytes`` must be equal on every sample;
* language modelling (documents of FLORES+ devtest English sentences, some longer than the
  window so that rolling windows are exercised: both harnesses run with ``max_length=64``):
  each document's log-likelihood (relative difference) and word/byte counts per sample, and
  ``word_perplexity``, ``byte_perplexity``, ``bits_per_byte`` of the corpus. Two exact checks
  separate the arithmetic from the model: llmbench's metric on lm-eval's own per-document
  log-likelihoods must give lm-eval's corpus values to the last digit, and llmbench's windows
  run with lm-eval's float32 log-softmax must give lm-eval's per-document totals exactly (llmbench
  itself sums in float64, so its totals differ from lm-eval's by float32 rounding only).

lm-eval runs its own CLI (``bench/.venv-lmeval``, see ``_common.ensure_lmeval``) on task files
written here that mirror its own ``mmlu``/``arc_easy``/``hellaswag`` configs with local data
(HellaSwag's ``utils.py`` is copied from the installed lm-eval, unchanged); llmbench runs the
catalog tasks in-process through the same task -> adapter -> metric code the runner calls.

    OMP_NUM_THREADS=1 .venv/bin/python bench/peer_mc.py              # tiny random GPT-2
    OMP_NUM_THREADS=1 .venv/bin/python bench/peer_mc.py --smollm2    # + SmolLM2-135M-Instruct
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

c.apply_offline_env()

FIXTURES = c.ROOT / "tests" / "fixtures" / "multiple_choice"
ROWS = {"mmlu": FIXTURES / "mmlu_rows.jsonl", "arc_easy": FIXTURES / "arc_rows.jsonl",
        "hellaswag": FIXTURES / "hellaswag_rows.jsonl"}
WINDOW = 64  # both harnesses' max_length for perplexity: most documents need several windows

# lm-eval task files: its own configs (lm_eval/tasks/{mmlu/default,arc,hellaswag}) with local data.
_LMEVAL_MC = {
    "mmlu": {
        "description": "The following are multiple choice questions (with answers) about "
                       "{{subject.replace('_', ' ')}}.\n\n",
        "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n"
                       "D. {{choices[3]}}\nAnswer:",
        "doc_to_choice": ["A", "B", "C", "D"], "doc_to_target": "answer"},
    "arc_easy": {"doc_to_text": "Question: {{question}}\nAnswer:",
                 "doc_to_target": "{{choices.label.index(answerKey)}}", "doc_to_choice": "{{choices.text}}"},
    "hellaswag": {"process_docs": "!function utils.process_docs", "doc_to_text": "{{query}}",
                  "doc_to_target": "{{label}}", "doc_to_choice": "choices"},
}


def _yaml(spec: dict[str, Any]) -> str:
    """YAML with the ``!function`` tag lm-eval reads left unquoted."""
    lines = []
    for key, value in spec.items():
        if isinstance(value, str) and value.startswith("!function "):
            lines.append(f"{key}: {value}")
        else:
            lines.append(f"{key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def lmeval_tasks(out: Path, docs: Path) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    lm_tasks = c.lmeval_python().parent.parent / "lib"
    utils = next(lm_tasks.rglob("lm_eval/tasks/hellaswag/utils.py"))
    shutil.copy(utils, out / "utils.py")
    for name, extra in _LMEVAL_MC.items():
        spec = {"task": f"peer_{name}", "dataset_path": "json",
                "dataset_kwargs": {"data_files": {"test": str(ROWS[name])}}, "test_split": "test",
                "output_type": "multiple_choice", **extra,
                "metric_list": [{"metric": m} for m in ("acc", "acc_norm", "acc_bytes")]}
        (out / f"peer_{name}.yaml").write_text(_yaml(spec))
    ppl = {"task": "peer_ppl", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(docs)}},
           "test_split": "test", "output_type": "loglikelihood_rolling", "doc_to_text": "",
           "doc_to_target": "{{text}}",
           "metric_list": [{"metric": m} for m in ("word_perplexity", "byte_perplexity", "bits_per_byte")]}
    (out / "peer_ppl.yaml").write_text(_yaml(ppl))
    return out


def make_docs(n: int) -> Path:
    """FLORES+ English devtest lines grouped into documents of 1-6 sentences (a few span
    several 64-token windows), with one document of odd whitespace (word counting)."""
    from llmbench.data.flores_en_ms import read_lines

    lines = read_lines("flores_en_ms", "eng")
    rows, i, k = [], 0, 0
    while len(rows) < n:
        size = 1 + k % 6
        rows.append({"id": f"d{k}", "text": " ".join(lines[i : i + size])})
        i, k = i + size, k + 1
    rows.append({"id": "ws", "text": "  Two  spaces\tand a tab\nand a newline. "})
    return c.write_jsonl(c.DATA / f"peer_ppl_{n}.jsonl", rows)


def llmbench_ppl_task(docs: Path) -> Path:
    path = c.TASKS / "peer_mc" / "peer_ppl.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"name: peer_ppl\nkind: language_modeling\ndataset: {{path: {docs}}}\n"
                    "fields: {id: id, input: text}\n")
    return path


# ------------------------------------------------------------------------------ runs


def run_lmeval(model: Path, tasks: list[str], task_dir: Path, out: Path, *, max_length: int | None = None,
               batch_size: int = 4) -> dict[str, dict[str, dict[str, Any]]]:
    """Per task: doc id -> lm-eval's logged sample."""
    shutil.rmtree(out, ignore_errors=True)
    margs = f"pretrained={model},dtype=float32" + (f",max_length={max_length}" if max_length else "")
    c.run_proc([c.lmeval_python(), "-m", "lm_eval", "--model", "hf", "--model_args", margs,
                "--tasks", ",".join(f"peer_{t}" for t in tasks), "--include_path", task_dir,
                "--batch_size", str(batch_size), "--device", "cpu", "--output_path", out, "--log_samples"])
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for task in tasks:
        samples = next(out.rglob(f"samples_peer_{task}_*.jsonl"))
        found[task] = {}
        for line in samples.read_text().splitlines():
            s = json.loads(line)
            found[task][str(s["doc_id"])] = s
    return found


def run_llmbench(model: Path, task_ref: str, data: Path | None, *, max_length: int | None = None
                 ) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Every sample's prompt, answer and metric stats, and the corpus values, from the task,
    adapter and metric code the runner wires (task.build_requests -> adapter.run ->
    task.predict -> metric.answer_stats -> metric.aggregate)."""
    from llmbench.metrics import get_metric
    from llmbench.models.hf.adapter import HFAdapter, HFConfig
    from llmbench.runner import prompt_text
    from llmbench.tasks import load_task

    task = load_task(task_ref, data=str(data) if data else None)
    samples = task.samples()
    adapter = HFAdapter(HFConfig(path=str(model), dtype="float32", device="cpu", max_batch_size=4,
                                 max_length=max_length))
    mode = task.choose_mode(adapter.supports)
    assert mode is not None
    requests = task.build_requests(samples, mode)
    responses = dict(adapter.run(requests))
    metric = get_metric(task.metrics[0].name, **task.metrics[0].args)
    out, stats = [], []
    for i, (sample, request) in enumerate(zip(samples, requests, strict=True)):
        response = responses[i]
        assert response.error is None, response.error
        prediction = task.predict(sample, response, mode)
        s = metric.answer_stats(prediction=prediction, sample=sample, response=response)
        stats.append(s)
        out.append({"id": sample.id, "index": i, "prompt": prompt_text(request),
                    "logprobs": list(response.logprobs or ()), "stats": s})
    adapter.close()
    values = {v.name: v.value for v in metric.aggregate(stats, n_resamples=0)}
    return out, values


# ------------------------------------------------------------------------------ compare


def compare_mc(task: str, ours: list[dict[str, Any]], theirs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    n = len(ours)
    same = {"prompt": 0, "acc": 0, "acc_norm": 0, "acc_bytes": 0}
    worst_ll = 0.0
    for mine in ours:
        ref = theirs[str(mine["index"])]
        args = ref["arguments"]
        context = args["gen_args_0"]["arg_0"] if isinstance(args, dict) else args[0][0]
        same["prompt"] += int(context == mine["prompt"])
        lls = [float(r[0][0]) if isinstance(r[0], list) else float(r[0]) for r in ref["resps"]]
        worst_ll = max([worst_ll, *(abs(a - b) for a, b in zip(lls, mine["logprobs"], strict=True))])
        for key in ("acc", "acc_norm", "acc_bytes"):
            same[key] += int(float(ref[key]) == float(mine["stats"][key]))
    return {"task": task, "n": n, **{f"same_{k}": v for k, v in same.items()}, "max_abs_ll_diff": worst_ll}


def compare_ppl(ours: list[dict[str, Any]], values: dict[str, float], theirs: dict[str, dict[str, Any]],
                results: dict[str, float]) -> dict[str, Any]:
    same_words = same_bytes = 0
    worst_rel = 0.0
    for mine in ours:
        ref = theirs[str(mine["index"])]
        ll, words = ref["word_perplexity"]
        _, n_bytes = ref["byte_perplexity"]
        same_words += int(words == mine["stats"]["words"])
        same_bytes += int(n_bytes == mine["stats"]["bytes"])
        worst_rel = max(worst_rel, abs(ll - mine["stats"]["loglikelihood"]) / max(1e-12, abs(ll)))
    # llmbench's metric on lm-eval's own per-document log-likelihoods: the reduce step alone,
    # which must give lm-eval's numbers to the last digit (the models' totals differ only by
    # lm-eval's float32 log-softmax against llmbench's float64)
    from llmbench.metrics.perplexity import Perplexity

    their_stats = [{"loglikelihood": theirs[str(m["index"])]["word_perplexity"][0], "tokens": m["stats"]["tokens"],
                    "words": theirs[str(m["index"])]["word_perplexity"][1],
                    "bytes": theirs[str(m["index"])]["byte_perplexity"][1]} for m in ours]
    on_theirs = {k: float(v[0]) for k, v in Perplexity().score(their_stats).items()}
    corpus = {name: {"lmeval": results[name], "llmbench": values[name],
                     "rel_diff": abs(results[name] - values[name]) / abs(results[name]),
                     "metric_on_lmeval_lls": on_theirs[name], "metric_exact": on_theirs[name] == results[name]}
              for name in ("word_perplexity", "byte_perplexity", "bits_per_byte")}
    return {"n": len(ours), "same_words": same_words, "same_bytes": same_bytes,
            "max_rel_ll_diff": worst_rel, "corpus": corpus}


def lmeval_results(out: Path, task: str) -> dict[str, float]:
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"][f"peer_{task}"]
    return {k.split(",")[0]: float(v) for k, v in results.items() if "," in k and "stderr" not in k}


def check_model(label: str, model: Path, task_dir: Path, docs: Path, ppl_task: Path) -> dict[str, Any]:
    work = c.OUT / "peer_mc" / label
    mc_tasks = list(_LMEVAL_MC)
    print(f"[{label}] lm-eval: multiple choice ...", flush=True)
    theirs = run_lmeval(model, mc_tasks, task_dir, work / "lmeval-mc")
    rows = []
    for task in mc_tasks:
        print(f"[{label}] llmbench: {task} ...", flush=True)
        ours, _ = run_llmbench(model, task, ROWS[task])
        rows.append(compare_mc(task, ours, theirs[task]))
    print(f"[{label}] lm-eval: perplexity (max_length={WINDOW}) ...", flush=True)
    # batch size 1: no padding, so lm-eval's float32 totals are reproducible window by window
    theirs_ppl = run_lmeval(model, ["ppl"], task_dir, work / "lmeval-ppl", max_length=WINDOW, batch_size=1)
    print(f"[{label}] llmbench: perplexity ...", flush=True)
    ours_ppl, values = run_llmbench(model, str(ppl_task), None, max_length=WINDOW)
    ppl = compare_ppl(ours_ppl, values, theirs_ppl["ppl"], lmeval_results(work / "lmeval-ppl", "ppl"))
    ppl["float32"] = float32_check(model, theirs_ppl["ppl"])
    return {"model": label, "mc": rows, "ppl": ppl}


def float32_check(model: Path, theirs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where llmbench's totals differ from lm-eval's, is it only lm-eval's float32 log-softmax?
    llmbench's own windows (``rolling_windows``), one unpadded forward per window as lm-eval at
    batch size 1, with the log-softmax and the sum in float32 as lm-eval does them: how many
    documents then give lm-eval's total exactly."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmbench.models.hf.rolling import rolling_windows

    tok = AutoTokenizer.from_pretrained(model)
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    exact, worst = 0, 0.0
    with torch.inference_mode():
        for ref in theirs.values():
            total = 0.0
            ids = tok(ref["doc"]["text"], add_special_tokens=False)["input_ids"]
            for ctx, cont in rolling_windows(ids, prefix, WINDOW):
                logits = lm(input_ids=torch.tensor([(ctx + cont)[:-1]])).logits[0, -len(cont):]
                total += float(logits.log_softmax(-1).gather(-1, torch.tensor(cont)[:, None]).sum())
            ll = float(ref["word_perplexity"][0])
            exact += int(total == ll)
            worst = max(worst, abs(total - ll) / abs(ll))
    return {"n": len(theirs), "exact": exact, "max_rel_diff": worst}


def report(checks: list[dict[str, Any]]) -> tuple[str, bool]:
    mc_rows, ppl_rows, ok = [], [], True
    for check in checks:
        for r in check["mc"]:
            mc_rows.append([check["model"], r["task"], r["n"], r["same_prompt"], r["same_acc"], r["same_acc_norm"],
                            r["same_acc_bytes"], f"{r['max_abs_ll_diff']:.1e}"])
            ok &= all(r[f"same_{k}"] == r["n"] for k in ("prompt", "acc", "acc_norm", "acc_bytes"))
        p = check["ppl"]
        ok &= p["same_words"] == p["n"] and p["same_bytes"] == p["n"]
        for name, v in p["corpus"].items():
            ppl_rows.append([check["model"], name, repr(v["lmeval"]), repr(v["llmbench"]), f"{v['rel_diff']:.1e}",
                             "equal" if v["metric_exact"] else repr(v["metric_on_lmeval_lls"])])
            ok &= v["metric_exact"]
        f32 = p["float32"]
        ppl_rows.append([check["model"], f"per document (n={p['n']})",
                         f"words equal {p['same_words']}/{p['n']}", f"bytes equal {p['same_bytes']}/{p['n']}",
                         f"max ll rel diff {p['max_rel_ll_diff']:.1e}",
                         f"float32 totals equal {f32['exact']}/{f32['n']}"])
        ok &= p["max_rel_ll_diff"] < 1e-4 and f32["exact"] == f32["n"]
    text = c.table(["model", "task", "n", "same prompt", "same acc", "same acc_norm", "same acc_bytes",
                    "max |Δll|"], mc_rows, title="Multiple choice, per sample (llmbench vs lm-eval 0.4.13)")
    text += "\n\n" + c.table(["model", "value", "lm-eval", "llmbench", "rel. diff",
                              "llmbench metric on lm-eval's lls"], ppl_rows,
                             title=f"Perplexity (rolling windows, max_length={WINDOW})")
    return text, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smollm2", action="store_true", help="also SmolLM2-135M-Instruct (its de-quantised folder)")
    ap.add_argument("--docs", type=int, default=24, help="perplexity documents")
    args = ap.parse_args(argv)
    c.ensure_lmeval()
    from llmbench.testing import build_tiny_gpt2

    tiny = c.MODELS / "peer-mc-tiny-gpt2"
    if not (tiny / "config.json").exists():
        build_tiny_gpt2(tiny)
    models = {"tiny-gpt2": tiny}
    if args.smollm2:
        from llmbench.models.hf.gguf import dequantized_dir
        from llmbench.models.packaged import SMOLLM2

        models["smollm2"] = dequantized_dir(SMOLLM2.path())
    docs = make_docs(args.docs)
    task_dir = lmeval_tasks(c.TASKS / "peer_mc-lmeval", docs)
    ppl_task = llmbench_ppl_task(docs)
    checks = [check_model(label, path, task_dir, docs, ppl_task) for label, path in models.items()]
    text, ok = report(checks)
    print(text)
    print(f"\nfidelity: {'all equal' if ok else 'DIFFERENCES FOUND'}")
    c.write_json("peer_mc", {"checks": checks, "ok": ok})
    return 0 if ok and all(math.isfinite(v["llmbench"]) for ch in checks for v in ch["ppl"]["corpus"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
