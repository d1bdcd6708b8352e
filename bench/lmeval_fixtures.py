"""Reference fixtures from lm-evaluation-harness 0.4.13 for llmbench's lm-eval task translator.

Correctness only, no timing. Run once (the outputs are committed; the test suite needs no
lm-eval install):

    python3 -m venv /tmp/bridge-venv && /tmp/bridge-venv/bin/pip install lm-eval==0.4.13 torch==2.13.0
    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/lmeval_fixtures.py --lmeval-python /tmp/bridge-venv/bin/python
    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/lmeval_fixtures.py \
        --lmeval-python /tmp/bridge-venv/bin/python --set extra

``--set exact`` writes ``lmeval_output_exact/``: exact_raw and exact_opts (lm-eval's
exact_match where the raw and the normalised strings differ), lm-eval's own gsm8k.yaml (two
filter pipelines, 5-shot from its train split, on gsm8k-format rows of our own) and
arc_easy_selfshot (few-shot examples from the evaluated split); a document of a task with
several pipelines gets every pipeline's answer and exact_match under ``filters``.

``--set core`` (the default) is the first set below, whose lm-eval output the import tests
read; ``--set extra`` adds lambada_openai (``output_type: loglikelihood``) and gsm8k_style
(a regex ``filter_list``; a task file of our own in ``tests/fixtures/lmeval/tasks/``, not
copied) into ``lmeval_output_extra/``, leaving the core output as it was.

What it does:

1. copies lm-eval's own task files (MIT, see ``tests/fixtures/lmeval/tasks/LICENSE.md``) for
   arc_easy, arc_challenge (an ``include:`` of arc_easy), hellaswag (with its ``utils.py``),
   mmlu_anatomy (an ``include:`` of mmlu's template), boolq, piqa, babi (generate_until) and
   pile_enron (loglikelihood_rolling, an ``include:`` of pile_arxiv); with ``--set extra``
   lambada_openai (loglikelihood) into ``tests/fixtures/lmeval/tasks/``, unchanged;
2. builds llmbench's tiny random GPT-2 (``llmbench.testing.build_tiny_gpt2``, seed 0) with this
   interpreter's transformers — the tests build the same model;
3. runs lm-eval 0.4.13 (its own venv, one thread) on the rows in ``tests/fixtures/lmeval/rows/``
   (the datasets' own columns) through task files that ``include:`` the copies and only swap
   the Hub dataset for the local file, with ``log_samples``, and saves the output as lm-eval's
   CLI does (``results_*.json`` + ``samples_<task>_*.jsonl``) in
   ``tests/fixtures/lmeval/lmeval_output/`` (the import tests read it);
4. reduces the samples to ``tests/fixtures/lmeval/expected/<task>.json``: per document id the
   rendered prompt (lm-eval's context), the continuations or generation, and every
   per-sample ``acc``/``acc_norm``/``exact_match``; for loglikelihood the target's
   log-likelihood (lm-eval's per-sample ``perplexity``) and ``acc`` (is_greedy); for a filtered
   generation the raw generation and the filtered answer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "lmeval"
MODEL_NAME = "tiny-gpt2"  # the name lm-eval records; the tests build the model themselves

# task -> (lm-eval file under lm_eval/tasks, extra files to copy, rows file, eval split)
TASKS: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "arc_easy": ("arc/arc_easy.yaml", (), "arc.jsonl", "test"),
    "arc_challenge": ("arc/arc_challenge.yaml", ("arc/arc_easy.yaml",), "arc.jsonl", "test"),
    "hellaswag": ("hellaswag/hellaswag.yaml", ("hellaswag/utils.py",), "hellaswag.jsonl", "validation"),
    "mmlu_anatomy": ("mmlu/default/mmlu_anatomy.yaml", ("mmlu/default/_default_template_yaml",),
                     "mmlu.jsonl", "test"),
    "boolq": ("super_glue/boolq/default.yaml", (), "boolq.jsonl", "validation"),
    "piqa": ("piqa/piqa.yaml", (), "piqa.jsonl", "validation"),
    "babi": ("babi/babi.yaml", (), "babi.jsonl", "test"),
    "pile_enron": ("pile/pile_enron.yaml", ("pile/pile_arxiv.yaml",), "pile.jsonl", "train"),
}
#: ``--set extra``; a main file starting with "ours:" is a fixture task file, not copied from lm-eval
#: ("train=FILE,test=FILE": one rows file per split; the few-shot examples come from their own rows)
EXTRA: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "lambada_openai": ("lambada/lambada_openai.yaml", (), "lambada.jsonl", "test"),
    "gsm8k_style": ("ours:gsm8k_style/gsm8k_style.yaml", (), "gsm8k_style.jsonl", "test"),
    "arc_easy_3shot": ("ours:arc_easy_3shot/arc_easy_3shot.yaml", (), "train=arc_train.jsonl,test=arc.jsonl", "test"),
}
#: ``--set exact``: lm-eval's exact_match where raw and normalised strings differ, lm-eval's own
#: gsm8k.yaml (two filter pipelines, 5-shot from its train split) and few-shot examples drawn
#: from the evaluated split
EXACT: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "exact_raw": ("ours:exact_raw/exact_raw.yaml", (), "exact_raw.jsonl", "test"),
    "exact_opts": ("ours:exact_opts/exact_opts.yaml", (), "exact_opts.jsonl", "test"),
    "gsm8k": ("gsm8k/gsm8k.yaml", (), "train=gsm8k_train.jsonl,test=gsm8k_test.jsonl", "test"),
    "arc_easy_selfshot": ("ours:arc_easy_selfshot/arc_easy_selfshot.yaml", (), "test=arc.jsonl", "test"),
}
#: set -> (tasks, output folder, lm-eval's few-shot seed: the core set ran with 0, which no core task's
#: prompt depends on; the extra set with lm-eval's default, 1234, as the translator assumes)
SETS = {"core": (TASKS, "lmeval_output", 0), "extra": (EXTRA, "lmeval_output_extra", 1234),
        "exact": (EXACT, "lmeval_output_exact", 1234)}

_DRIVER = r'''
import json, sys
from lm_eval import simple_evaluate
from lm_eval.loggers import EvaluationTracker
from lm_eval.tasks import TaskManager
from lm_eval.utils import handle_non_serializable

model, include, out, tasks, fewshot_seed = sys.argv[1:5] + [int(sys.argv[5])]
tasks = tasks.split(",")
tracker = EvaluationTracker(output_path=out)
manager = TaskManager(include_path=include, include_defaults=False)
results = simple_evaluate(model="hf", model_args=f"pretrained={model},dtype=float32", tasks=tasks,
                          batch_size=1, device="cpu", log_samples=True, evaluation_tracker=tracker,
                          task_manager=manager, random_seed=0, numpy_random_seed=0, torch_random_seed=0,
                          fewshot_random_seed=fewshot_seed)
samples = results.pop("samples")
tracker.save_results_aggregated(results=results, samples=samples)
for name in results["configs"]:
    tracker.save_results_samples(task_name=name, samples=samples[name])
'''


def lmeval_tasks_dir(python: str) -> Path:
    out = subprocess.run([python, "-c", "import lm_eval, os; print(os.path.dirname(lm_eval.__file__))"],
                         check=True, capture_output=True, text=True).stdout.strip()
    return Path(out) / "tasks"


def copy_task_files(src: Path, tasks: dict[str, tuple[str, tuple[str, ...], str, str]]) -> None:
    dest = FIX / "tasks"
    for task, (main, extra, _, _) in tasks.items():
        for rel in (main, *extra):
            if rel.startswith("ours:"):
                continue
            target = dest / task / Path(rel).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, target)
    licence = src.parent.parent / "lm_eval-0.4.13.dist-info" / "licenses" / "LICENSE.md"
    shutil.copyfile(licence, dest / "LICENSE.md")


def override_files(work: Path, tasks: dict[str, tuple[str, tuple[str, ...], str, str]]) -> Path:
    """lm-eval task files that include the copies and read the local rows instead of the Hub."""
    inc = work / "include"
    inc.mkdir()
    for task, (main, _, rows, split) in tasks.items():
        copied = FIX / "tasks" / (main.removeprefix("ours:") if main.startswith("ours:") else
                                  f"{task}/{Path(main).name}")
        if "=" in rows:  # one file per split
            files = {s: str(FIX / "rows" / f) for s, f in (part.split("=") for part in rows.split(","))}
        else:  # every split the file names reads the same rows (as llmbench's --data does)
            files = {s: str(FIX / "rows" / rows) for s in {split, "train", "validation", "test", "dev"}}
        spec = {"include": str(copied), "task": task, "dataset_path": "json", "dataset_name": None,
                "dataset_kwargs": {"data_files": files}}
        (inc / f"{task}.yaml").write_text(json.dumps(spec))
    return inc


def reduce_samples(out: Path) -> None:
    """``expected/<task>.json`` from lm-eval's samples files."""
    expected = FIX / "expected"
    expected.mkdir(exist_ok=True)
    for file in sorted(out.rglob("samples_*.jsonl")):
        task = file.name.removeprefix("samples_").rsplit("_", 1)[0]
        docs: list[dict[str, Any]] = []
        seen: dict[int, dict[str, Any]] = {}
        for line in file.read_text(encoding="utf-8").splitlines():
            s = json.loads(line)
            if s["doc_id"] in seen:  # another filter pipeline of a document already read
                seen[s["doc_id"]]["filters"][s["filter"]] = {"filtered": s["filtered_resps"][0],
                                                             "exact_match": s["exact_match"]}
                continue
            args = s["arguments"]
            entry: dict[str, Any] = {"doc_id": s["doc_id"], "prompt": args["gen_args_0"]["arg_0"]}
            if "word_perplexity" in s:  # loglikelihood_rolling: (log-likelihood, words) and (.., bytes)
                entry |= {"loglikelihood": s["word_perplexity"][0], "words": s["word_perplexity"][1],
                          "bytes": s["byte_perplexity"][1]}
            elif "perplexity" in s:  # loglikelihood: the target's log-likelihood and is_greedy
                entry |= {"continuation": args["gen_args_0"]["arg_1"], "loglikelihood": s["perplexity"]}
            elif "arg_1" in args["gen_args_0"] and isinstance(args["gen_args_0"]["arg_1"], str):
                entry["continuations"] = [a["arg_1"] for a in args.values()]
            elif s["filter"] == "none":
                entry["generation"] = s["filtered_resps"][0]
            else:  # a filter pipeline: the raw generation, then what the filters kept (every pipeline's
                # under "filters" when the task has several)
                entry |= {"generation": s["resps"][0][0], "filter": s["filter"], "filtered": s["filtered_resps"][0]}
                if s["filter"] != "none":
                    entry["filters"] = {s["filter"]: {"filtered": s["filtered_resps"][0],
                                                      "exact_match": s.get("exact_match")}}
            for metric in ("acc", "acc_norm", "exact_match"):
                if metric in s:
                    entry[metric] = s[metric]
            docs.append(entry)
            seen[s["doc_id"]] = entry
        docs.sort(key=lambda d: d["doc_id"])
        (expected / f"{task}.json").write_text(json.dumps(docs, indent=1, ensure_ascii=False) + "\n")
        print(f"{task}: {len(docs)} samples", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lmeval-python", required=True, help="python of a venv with lm-eval==0.4.13")
    parser.add_argument("--set", choices=sorted(SETS), default="core", help="which tasks (see the docstring)")
    args = parser.parse_args()
    from llmbench.testing import build_tiny_gpt2

    tasks, out_name, fewshot_seed = SETS[args.set]
    copy_task_files(lmeval_tasks_dir(args.lmeval_python), tasks)
    with tempfile.TemporaryDirectory(prefix="lmeval-fixtures-") as tmp:
        work = Path(tmp)
        model = build_tiny_gpt2(work / MODEL_NAME)
        inc = override_files(work, tasks)
        out = work / "out"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": ""}
        subprocess.run([args.lmeval_python, "-c", _DRIVER, str(model), str(inc), str(out), ",".join(tasks),
                        str(fewshot_seed)], check=True, env=env, cwd=work)
        dest = FIX / out_name
        shutil.rmtree(dest, ignore_errors=True)
        (produced,) = [d for d in out.iterdir() if d.is_dir()]  # lm-eval names it after the model path
        shutil.copytree(produced, dest / MODEL_NAME)
        reduce_samples(dest)


if __name__ == "__main__":
    main()
