"""Same prompts, same answers: lm-eval's own task files, translated, against lm-eval 0.4.13.

The references in ``tests/fixtures/lmeval/expected/`` were written by
``bench/lmeval_fixtures.py`` running the real lm-eval 0.4.13 on the copied task files and the
local rows with llmbench's tiny random GPT-2; here llmbench runs the same files and rows on the
same model and every rendered prompt, continuation, generation and per-sample
``acc``/``acc_norm``/``exact_match`` must be equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmbench.runner import ModelEntry, RunConfig, evaluate
from llmbench.store import ResultStore
from llmbench.tasks import load_task

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "lmeval"
# task -> (task file under tasks/, rows file)
TASKS = {
    "arc_easy": ("arc_easy/arc_easy.yaml", "arc.jsonl"),
    "arc_challenge": ("arc_challenge/arc_challenge.yaml", "arc.jsonl"),
    "hellaswag": ("hellaswag/hellaswag.yaml", "hellaswag.jsonl"),
    "mmlu_anatomy": ("mmlu_anatomy/mmlu_anatomy.yaml", "mmlu.jsonl"),
    "boolq": ("boolq/default.yaml", "boolq.jsonl"),
    "piqa": ("piqa/piqa.yaml", "piqa.jsonl"),
    "babi": ("babi/babi.yaml", "babi.jsonl"),
    "pile_enron": ("pile_enron/pile_enron.yaml", "pile.jsonl"),
}


def lmeval_task(name: str):  # type: ignore[no-untyped-def]
    file, rows = TASKS[name]
    return load_task(f"lm-eval:{FIX / 'tasks' / file}", data=str(FIX / "rows" / rows))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_prompts_equal_lmeval(name: str) -> None:
    expected = json.loads((FIX / "expected" / f"{name}.json").read_text(encoding="utf-8"))
    task = lmeval_task(name)
    assert task.name == name
    samples = task.samples()
    assert [s.id for s in samples] == [str(e["doc_id"]) for e in expected]
    mode = task.scoring[0]
    for sample, request, exp in zip(samples, task.build_requests(samples, mode), expected, strict=True):
        assert request.prompt == exp["prompt"], sample.id
        if "continuations" in exp:
            assert list(request.continuations or ()) == exp["continuations"], sample.id


@pytest.mark.parametrize("name", sorted(TASKS))
def test_per_sample_values_equal_lmeval(name: str, tiny_gpt2: Path, tmp_path: Path) -> None:
    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    expected = {str(e["doc_id"]): e for e in
                json.loads((FIX / "expected" / f"{name}.json").read_text(encoding="utf-8"))}
    task = lmeval_task(name)
    store = ResultStore(tmp_path / "db.sqlite")
    result = evaluate(task, HFAdapter(HFConfig(path=str(tiny_gpt2))), ModelEntry(spec=f"hf:{tiny_gpt2}"),
                      RunConfig(n_resamples=10), store=store, cache=None)
    assert result.status == "complete"
    records = store.samples(result.run_id)
    assert sorted(r.sample_id for r in records) == sorted(expected)
    for record in records:
        exp = expected[record.sample_id]
        if "loglikelihood" in exp:  # loglikelihood_rolling: lm-eval sums in float32, llmbench in float64
            stats = record.stats["perplexity"]
            assert (stats["words"], stats["bytes"]) == (exp["words"], exp["bytes"]), record.sample_id
            assert stats["loglikelihood"] == pytest.approx(exp["loglikelihood"], rel=1e-5), record.sample_id
            continue
        if "generation" in exp:  # generate_until: the same text (llmbench strips the answer)
            assert record.prediction == exp["generation"].strip(), record.sample_id
            assert record.stats["exact_match"]["exact_match"] == exp["exact_match"], record.sample_id
            continue
        for metric in ("acc", "acc_norm"):
            if metric in exp:
                assert record.stats["acc"][metric] == exp[metric], (record.sample_id, metric)
