"""The run command's printed comparison: one row per task and model, best first, readable at 80 columns."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from llmbench import registry
from llmbench.cli.run import comparison_table
from llmbench.models.base import ModelAdapter
from llmbench.runner import RunResult
from llmbench.store import ResultStore, RunUsage
from llmbench.types import MetricValue, Request, RequestKind, Response, Usage


def _result(model: str, task: str, metric: str, value: float, higher: bool = True) -> RunResult:
    mv = MetricValue(name=metric, value=value, ci_low=value - 0.05, ci_high=value + 0.05, n=100,
                     higher_is_better=higher)
    return RunResult(run_id="r", model=model, task=task, status="complete", metrics=[mv], primary_metric=metric,
                     scoring_mode="generate", n_samples=100, n_errors=0, cache_hits=0, cache_misses=100,
                     usage=RunUsage())


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


class Truthful(ModelAdapter):
    """Generation: a raw output the task must parse ("Answer: X" with trailing text);
    loglikelihood: a fixed log-probability per choice."""

    supports: frozenset[RequestKind] = frozenset({"generate", "loglikelihood"})

    def __init__(self) -> None:
        self.name = "truthful"

    def identity(self) -> dict[str, Any]:
        return {"backend": "truthful"}

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for i, req in enumerate(requests):
            if req.kind == "loglikelihood":
                yield i, Response(logprobs=tuple(-1.5 - k for k in range(len(req.continuations or ()))),
                                  greedy_match=(True, False)[: len(req.continuations or ())])
            else:
                yield i, Response(text=f"  {req.input}  \nthat is all", finish_reason="stop",
                                  usage=Usage(prompt_tokens=7, completion_tokens=3), latency_s=0.25)


@pytest.fixture
def truthful() -> Iterator[None]:
    registry.models.register("truthful", lambda name, options: Truthful(), origin="plugin:test")
    yield
    registry.models._items.pop("truthful", None)


def test_show_opens_every_sample_down_to_what_was_sent_and_returned(
        truthful: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cli_inprocess import run_cli

    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(
        {"id": f"r{i}", "text": f"review {i}", "label": ["bad", "good"][i % 2]}) for i in range(4)))
    (tmp_path / "qa.yaml").write_text("name: truth_qa\nkind: qa\ndataset: {path: rows.jsonl}\n"
                                      "fields: {id: id, input: text, target: label}\n")
    (tmp_path / "cls.yaml").write_text("name: truth_cls\nkind: classification\ndataset: {path: rows.jsonl}\n"
                                       "fields: {id: id, input: text, target: label}\nlabels: [bad, good]\n"
                                       "prompt: {template: \"Review: {{ input }}\\nSentiment:\"}\n")
    store = str(tmp_path / "r.db")
    for task, scoring in (("qa.yaml", "generate"), ("cls.yaml", "loglikelihood")):
        code, _, err = run_cli(["run", "-m", "truthful:x", "-t", str(tmp_path / task), "--scoring", scoring,
                                "--store", store, "--resamples", "0"], capsys)
        assert code == 0, err
    qa, cls = ResultStore(store, create=False).runs()

    code, out, _ = run_cli(["show", qa.id, "--store", store, "--samples", "1"], capsys)
    assert code == 0
    body = out[out.index("#0 r0"):]
    assert "prompt (as sent):" in body and "review 0" in body.split("output (raw):")[0]
    assert "output (raw):\n      review 0  \n    that is all" in body
    assert "prediction: review 0" in body and "reference: bad" in body
    assert "tokens 7 in / 3 out · latency 0.250 s · finish stop" in body

    code, out, _ = run_cli(["show", cls.id, "--store", store, "--samples", "2"], capsys)
    assert "  prompt (as sent):\n    Review: review 0\n    Sentiment:" in out
    assert "choice log-likelihoods: [0] -1.5000 (greedy), [1] -2.5000" in out

    code, out, _ = run_cli(["show", cls.id, "--store", store, "--json"], capsys)
    sample = json.loads(out)["samples"][0]
    assert sample["prompt"] == "Review: review 0\nSentiment:" and sample["prediction"] == "bad"
    assert sample["answer"]["choice_logprobs"] == [-1.5, -2.5] and sample["answer"]["greedy_match"] == [True, False]
    qa_json = json.loads(run_cli(["show", qa.id, "--store", store, "--json"], capsys)[1])["samples"][0]
    assert qa_json["answer"]["output"] == "  review 0  \nthat is all" and qa_json["completion_tokens"] == 3


def test_the_terminal_bar_counts_nothing_while_the_model_loads() -> None:
    """No "0/?" while the model loads: the bar's count appears when the samples are known,
    and its rate is samples over the seconds since then (not rich's moving window)."""
    from io import StringIO

    from llmbench.plan import Reporter
    from llmbench.plan.progress import _Bar, _CountColumn, _RateColumn

    reporter = Reporter(Console(file=StringIO(), force_terminal=True, width=120))
    with reporter.tracking("m · t") as bar:
        assert isinstance(bar, _Bar)
        loading = bar.progress.tasks[0]
        assert loading.total is None and "loading the model" in loading.description
        assert str(_CountColumn().render(loading)) == "" and str(_RateColumn().render(loading)) == ""
        bar.start(12)
        bar.advance(12)  # one batch lands at once
        task = bar.progress.tasks[-1]
        assert len(bar.progress.tasks) == 1 and str(_CountColumn().render(task)) == "12/12"
        before = task.elapsed
        rate = float(str(_RateColumn().render(task)).removesuffix("/s"))
        after = task.elapsed
        assert before is not None and after is not None and 12 / after - 0.1 <= rate <= 12 / before + 0.1
