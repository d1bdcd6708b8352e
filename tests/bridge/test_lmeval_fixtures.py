"""Same prompts, same answers: lm-eval's own task files, translated, against lm-eval 0.4.13.

The references in ``tests/fixtures/lmeval/expected/`` were written by
``bench/lmeval_fixtures.py`` running the real lm-eval 0.4.13 on the copied task files and the
local rows with llmbench's tiny random GPT-2; here llmbench runs the same files and rows on the
same model and every rendered prompt, continuation, generation and per-sample
``acc``/``acc_norm``/``exact_match`` must be equal. lambada_openai (``output_type:
loglikelihood``) and gsm8k_style (a ``regex`` filter) come from ``--set extra``, whose lm-eval
output is ``lmeval_output_extra/``, as does arc_easy_3shot (lm-eval's default few-shot
sampler: every sample's three examples are lm-eval's).
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
TASKS: dict[str, tuple[str, str | None]] = {
    "arc_easy": ("arc_easy/arc_easy.yaml", "arc.jsonl"),
    "arc_challenge": ("arc_challenge/arc_challenge.yaml", "arc.jsonl"),
    "hellaswag": ("hellaswag/hellaswag.yaml", "hellaswag.jsonl"),
    "mmlu_anatomy": ("mmlu_anatomy/mmlu_anatomy.yaml", "mmlu.jsonl"),
    "boolq": ("boolq/default.yaml", "boolq.jsonl"),
    "piqa": ("piqa/piqa.yaml", "piqa.jsonl"),
    "babi": ("babi/babi.yaml", "babi.jsonl"),
    "pile_enron": ("pile_enron/pile_enron.yaml", "pile.jsonl"),
    "lambada_openai": ("lambada_openai/lambada_openai.yaml", "lambada.jsonl"),
    "gsm8k_style": ("gsm8k_style/gsm8k_style.yaml", "gsm8k_style.jsonl"),
    # lm-eval's default few-shot sampler (seed 1234), its own train and test files
    "arc_easy_3shot": ("arc_easy_3shot/arc_easy_3shot.yaml", None),
    # --set exact: lm-eval's exact_match where raw and SQuAD-normalised strings differ, lm-eval's
    # own gsm8k.yaml (two filter pipelines, 5-shot from train), few-shot from the evaluated split
    "exact_raw": ("exact_raw/exact_raw.yaml", "exact_raw.jsonl"),
    "exact_opts": ("exact_opts/exact_opts.yaml", "exact_opts.jsonl"),
    "gsm8k": ("gsm8k/gsm8k.yaml", None),
    "arc_easy_selfshot": ("arc_easy_selfshot/arc_easy_selfshot.yaml", "arc.jsonl"),
}
EXTRA_RESULTS = FIX / "lmeval_output_extra" / "tiny-gpt2"
EXACT_RESULTS = FIX / "lmeval_output_exact" / "tiny-gpt2"
#: the local rows of lm-eval's own gsm8k.yaml (its Hub dataset swapped for them, as the fixture run did)
GSM8K_ROWS = {"train": str(FIX / "rows" / "gsm8k_train.jsonl"), "test": str(FIX / "rows" / "gsm8k_test.jsonl")}


def lmeval_task(name: str):  # type: ignore[no-untyped-def]
    file, rows = TASKS[name]
    if name == "gsm8k":
        return _gsm8k_local()
    return load_task(f"lm-eval:{FIX / 'tasks' / file}", data=str(FIX / "rows" / rows) if rows else None)


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
        if "continuation" in exp:  # loglikelihood: the one target, without the target delimiter
            assert request.continuations == (exp["continuation"],), sample.id


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
        if "continuation" in exp:  # loglikelihood: lm-eval's per-sample perplexity is the target's ll
            stats = record.stats["continuation"]
            assert stats["loglikelihood"] == pytest.approx(exp["loglikelihood"], abs=1e-4), record.sample_id
            assert stats["acc"] == exp["acc"], record.sample_id
            continue
        if "filtered" in exp:  # a regex filter: llmbench's prediction is what the (first) filter kept
            assert record.prediction == exp["filtered"], record.sample_id
            stats = record.stats["lmeval_exact_match"]
            assert stats[em_key(exp)] == exp["exact_match"], record.sample_id
            for flt, theirs in exp.get("filters", {}).items():  # every pipeline, scored as lm-eval did
                assert stats[em_key({"filter": flt})] == theirs["exact_match"], (record.sample_id, flt)
            continue
        if "loglikelihood" in exp:  # loglikelihood_rolling: lm-eval sums in float32, llmbench in float64
            stats = record.stats["perplexity"]
            assert (stats["words"], stats["bytes"]) == (exp["words"], exp["bytes"]), record.sample_id
            assert stats["loglikelihood"] == pytest.approx(exp["loglikelihood"], rel=1e-5), record.sample_id
            continue
        if "generation" in exp:  # generate_until: the same text (llmbench strips the answer)
            assert record.prediction == exp["generation"].strip(), record.sample_id
            assert record.stats["lmeval_exact_match"]["exact_match"] == exp["exact_match"], record.sample_id
            continue
        for metric in ("acc", "acc_norm"):
            if metric in exp:
                assert record.stats["acc"][metric] == exp[metric], (record.sample_id, metric)


def _gsm8k_local():  # type: ignore[no-untyped-def]
    """lm-eval's gsm8k.yaml, unchanged but for its dataset: the local train and test rows."""
    from llmbench.tasks.lmeval import PREFIX, _build, _validate, translate

    path = FIX / "tasks" / "gsm8k" / "gsm8k.yaml"
    raw = translate(path)
    raw["dataset"] = {"path": "json", "data_files": GSM8K_ROWS, "split": "test", "fewshot_split": "train"}
    task = _build(_validate(raw, path), path)
    assert task.source == f"{PREFIX}{path}"
    return task


def em_key(exp: dict) -> str:  # type: ignore[type-arg]
    """lm-eval's name of the exact_match value of ``exp``'s filter (``lmeval_exact_match``'s)."""
    flt = exp.get("filter", "none")
    return "exact_match" if flt == "none" else f"exact_match,{flt}"


def test_lambada_aggregates_equal_lmeval(tiny_gpt2: Path, tmp_path: Path) -> None:
    """lm-eval's ``perplexity`` aggregation (exp of minus the mean log-likelihood) and ``acc``:
    from lm-eval's own per-sample values llmbench's metric gives lm-eval's numbers to the last
    digits; from llmbench's run (float64 sums, lm-eval float32) within 1e-5 relative."""
    from llmbench.metrics.continuation import ContinuationLikelihood
    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    (file,) = EXTRA_RESULTS.glob("results_*.json")
    reference = json.loads(file.read_text(encoding="utf-8"))["results"]["lambada_openai"]
    expected = json.loads((FIX / "expected" / "lambada_openai.json").read_text(encoding="utf-8"))
    metric = ContinuationLikelihood()
    from_lmeval = metric.score([{"loglikelihood": e["loglikelihood"], "acc": e["acc"]} for e in expected])
    assert from_lmeval["perplexity"][0] == pytest.approx(reference["perplexity,none"], rel=1e-12)
    assert from_lmeval["acc"][0] == reference["acc,none"]
    store = ResultStore(tmp_path / "db.sqlite")
    result = evaluate(lmeval_task("lambada_openai"), HFAdapter(HFConfig(path=str(tiny_gpt2))),
                      ModelEntry(spec=f"hf:{tiny_gpt2}"), RunConfig(n_resamples=10), store=store, cache=None)
    values = {m.value.name: m.value.value for m in store.metrics(result.run_id)}
    assert values["perplexity"] == pytest.approx(reference["perplexity,none"], rel=1e-5)
    assert values["acc"] == reference["acc,none"]


def test_gsm8k_style_aggregate_equals_lmeval(tiny_gpt2: Path, tmp_path: Path) -> None:
    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    (file,) = EXTRA_RESULTS.glob("results_*.json")
    reference = json.loads(file.read_text(encoding="utf-8"))["results"]["gsm8k_style"]
    store = ResultStore(tmp_path / "db.sqlite")
    result = evaluate(lmeval_task("gsm8k_style"), HFAdapter(HFConfig(path=str(tiny_gpt2))),
                      ModelEntry(spec=f"hf:{tiny_gpt2}"), RunConfig(n_resamples=10), store=store, cache=None)
    values = {m.value.name: m.value.value for m in store.metrics(result.run_id)}
    want = reference["exact_match,strict-match"]  # lm-eval's 0-1 scale, which llmbench's value is on too
    assert values["exact_match,strict-match"] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("name", ["gsm8k", "exact_raw", "exact_opts"])
def test_exact_match_aggregates_equal_lmeval(name: str, tiny_gpt2: Path, tmp_path: Path) -> None:
    """Every (exact_match, filter) value lm-eval reports, llmbench reports under the same name
    (gsm8k: strict-match the primary, as lm-eval's first pipeline, and flexible-extract)."""
    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    (file,) = EXACT_RESULTS.glob("results_*.json")
    reference = json.loads(file.read_text(encoding="utf-8"))["results"][name]
    theirs = {k.removesuffix(",none"): v for k, v in reference.items()
              if k.startswith("exact_match,") and "_stderr" not in k}
    store = ResultStore(tmp_path / "db.sqlite")
    result = evaluate(lmeval_task(name), HFAdapter(HFConfig(path=str(tiny_gpt2))), ModelEntry(spec=f"hf:{tiny_gpt2}"),
                      RunConfig(n_resamples=10), store=store, cache=None)
    values = {m.value.name: m.value.value for m in store.metrics(result.run_id)}
    assert set(values) == set(theirs)
    for key, value in theirs.items():
        assert values[key] == pytest.approx(value, abs=1e-12), key  # lm-eval's 0-1 scale
    assert store.runs()[0].primary_metric == next(iter(theirs))
