"""The run command's printed comparison: one row per task and model, best first, readable at 80 columns."""

from __future__ import annotations

from rich.console import Console

from llmbench.cli.run import comparison_table
from llmbench.runner import RunResult
from llmbench.types import MetricValue


def _result(model: str, task: str, metric: str, value: float, higher: bool = True) -> RunResult:
    mv = MetricValue(name=metric, value=value, ci_low=value - 0.05, ci_high=value + 0.05, n=100,
                     higher_is_better=higher)
    return RunResult(run_id="r", model=model, task=task, status="complete", metrics=[mv], primary_metric=metric,
                     scoring_mode="generate", n_samples=100, n_errors=0, cache_hits=0, cache_misses=100, usage={})


def test_rows_per_task_best_first_within_80_columns() -> None:
    results = [_result("baseline:majority", "rotten_tomatoes", "accuracy", 0.58),
               _result("minilm-l6-finetuned", "rotten_tomatoes", "accuracy", 0.816),
               _result("baseline:first-sentence", "flores_qa", "f1", 8.5),
               _result("smollm2-135m-instruct", "flores_qa", "f1", 20.3),
               _result("some-model", "perplexity_task", "ppl", 12.0, higher=False),
               _result("better-model", "perplexity_task", "ppl", 9.0, higher=False)]
    console = Console(width=80, record=True, color_system=None)
    console.print(comparison_table(results))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    body = [line for line in lines if line.startswith("│")]
    models = [line.split("│")[2].strip() for line in body]
    assert models == ["minilm-l6-finetuned", "baseline:majority", "smollm2-135m-instruct",
                      "baseline:first-sentence", "better-model", "some-model"]
    assert body[0].split("│")[1].strip() == "rotten_tomatoes" and body[1].split("│")[1].strip() == "accuracy"
    assert "0.8160" in body[0] and "[0.766, 0.866]" in body[0]
