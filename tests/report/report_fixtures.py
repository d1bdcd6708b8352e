"""Real stored runs for the report tests: tiny jsonl tasks, scripted adapters, the real runner.

Runs go through ``llmbench.runner.evaluate`` (and the real baselines), so the store holds
exactly what ``llmbench run`` would write: per-sample stats, bootstrap CIs, usage. A scripted
adapter answers from a table, which lets a test say precisely which samples flip.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from llmbench.models.base import ModelAdapter
from llmbench.models.baselines import BaselineAdapter
from llmbench.models.hf.adapter import _folder_facts as folder_facts  # what HFAdapter.describe() reads
from llmbench.runner import ModelEntry, RunConfig, evaluate
from llmbench.store import ResultStore, runs_table
from llmbench.tasks import load_task
from llmbench.tasks.base import Task
from llmbench.types import Request, RequestKind, Response, Usage

LABELS = ("negative", "positive")
T_LATER = datetime(2030, 1, 1, tzinfo=UTC)  # "newer than anything the runner stamps today"
XSS_PREDICTION = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> --> </script>'
XSS_INPUT = 'What does </script><script>window.__xss = 3</script><!-- do?'


def gold_label(i: int) -> str:
    return LABELS[(i * 7 + 3) % 11 % 2]


def write_cls_task(folder: Path, n: int = 40, *, name: str = "sentiment_mini", template: str | None = None,
                   metrics: Sequence[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"s{i:02d}", "text": f"review number {i}: {'great' if gold_label(i) == 'positive' else 'dull'} film",
             "label": gold_label(i)} for i in range(n)]
    (folder / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    prompt = f"prompt: {{template: {json.dumps(template)}}}\n" if template else ""
    prompt += f"metrics: [{', '.join(metrics)}]\n" if metrics else ""
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nkind: classification\ndataset: {{path: {name}.jsonl}}\n"
                    f"fields: {{id: id, input: text, target: label}}\nlabels: [negative, positive]\n"
                    f"scoring: [classify, loglikelihood]\n{prompt}", encoding="utf-8")
    return path


def write_qa_task(folder: Path, n: int = 30, *, name: str = "qa_mini", xss: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        question = XSS_INPUT if xss and i == 0 else f"Which city is number {i}?"
        rows.append({"id": f"q{i:02d}", "question": question, "context": f"City number {i} is Town{i}. It is old.",
                     "answers": [f"Town{i}"]})
    (folder / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nkind: qa\ndataset: {{path: {name}.jsonl}}\n"
                    "fields: {id: id, input: question, context: context, target: answers}\n", encoding="utf-8")
    return path


class ScriptedAdapter(ModelAdapter):
    """Answers from ``answer(request) -> str``: a label for classify, text for generate."""

    supports: frozenset[RequestKind] = frozenset({"classify", "generate"})

    def __init__(self, name: str, answer: Callable[[Request], str], *, latency: float = 0.05,
                 cost: float | None = None, tokens: int | None = None, fail: Sequence[str] = (),
                 identity: dict[str, Any] | None = None, describe: dict[str, Any] | None = None) -> None:
        self.name, self.answer, self.latency, self.cost, self.tokens = name, answer, latency, cost, tokens
        self.fail = set(fail)
        self._identity = {"backend": "scripted", "name": name, **(identity or {})}
        self._describe = dict(describe or {})

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def describe(self) -> dict[str, Any]:
        return dict(self._describe)

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for i, r in enumerate(requests):
            if r.sample_id in self.fail:
                yield i, Response(error="HTTP 500 after 6 retries")
                continue
            usage = Usage(prompt_tokens=self.tokens, completion_tokens=2) if self.tokens else None
            text = self.answer(r)
            if r.kind == "classify":
                yield i, Response(label_scores={lab: float(lab == text) for lab in LABELS}, latency_s=self.latency,
                                  usage=usage, cost_usd=self.cost)
            else:
                yield i, Response(text=text, latency_s=self.latency, usage=usage, cost_usd=self.cost)


def classifier(name: str, wrong: set[str], **kw: Any) -> ScriptedAdapter:
    """Right on every sample except the ids in ``wrong``."""
    def answer(r: Request) -> str:
        gold = gold_label(int(r.sample_id[1:]))
        return LABELS[1 - LABELS.index(gold)] if r.sample_id in wrong else gold
    return ScriptedAdapter(name, answer, **kw)


def reader(name: str, wrong: set[str], *, xss: bool = False, **kw: Any) -> ScriptedAdapter:
    """Extractive QA: the right town except for ``wrong`` ids (and an XSS payload on request)."""
    def answer(r: Request) -> str:
        i = int(r.sample_id[1:])
        if xss and i == 1:
            return XSS_PREDICTION
        return f"Town{i + 100}" if r.sample_id in wrong else f"Town{i}"
    return ScriptedAdapter(name, answer, **kw)


def run(store: ResultStore, task: Task | Path, adapter: Any, spec: str, *, label: str | None = None,
        tags: Sequence[str] = (), batch_id: str | None = None, resamples: int = 200,
        limit: int | None = None) -> str:
    t = load_task(str(task)) if isinstance(task, Path) else task
    result = evaluate(t, adapter, ModelEntry(spec=spec, label=label), RunConfig(
        n_resamples=resamples, tags=tuple(tags), use_cache=False, limit=limit), store=store, cache=None,
        batch_id=batch_id)
    return result.run_id


def set_created(store: ResultStore, run_id: str, when: datetime) -> None:
    """Backdate a run (the runner stamps 'now'; trends need runs on different days)."""
    with store.engine.begin() as conn:
        conn.execute(sa.update(runs_table).where(runs_table.c.id == run_id).values(
            created_at=when.isoformat(timespec="seconds"), finished_at=when.isoformat(timespec="seconds")))


def wrong_ids(prefix: str, idx: Sequence[int]) -> set[str]:
    return {f"{prefix}{i:02d}" for i in idx}


SLM = {"path": "/models/smollm2-135m-instruct", "arch": "LlamaForCausalLM", "dtype": "bfloat16"}


def build_demo_store(root: Path, *, xss_model_name: bool = False) -> ResultStore:
    """A realistic store: API, local, fine-tuned and baseline models on two tasks, four nightly
    batches of history, and model output that tries to run script in the page."""
    store = ResultStore(root / "demo.sqlite")
    cls, qa = write_cls_task(root / "tasks"), write_qa_task(root / "tasks", xss=True)
    ft = root / "models" / "minilm-sentiment"
    ft.mkdir(parents=True, exist_ok=True)
    (ft / "README.md").write_text("---\nbase_model: sentence-transformers/all-MiniLM-L6-v2\n---\n# MiniLM\n")
    (ft / "llmbench_finetune.json").write_text(json.dumps({  # as `llmbench finetune` writes it
        "base": "minilm", "base_model": "sentence-transformers/all-MiniLM-L6-v2", "task": "sentiment_mini"}))
    start = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
    for night in range(4):
        batch = f"nightly-{night}"
        when = start + timedelta(days=night)
        runs = [
            run(store, cls, classifier("api", wrong_ids("s", range(night % 2, 6 + night % 2)), cost=0.0004, tokens=120),
                "openai:gpt-4o-mini", label="gpt-4o-mini", tags=["nightly"], batch_id=batch),
            run(store, cls, classifier("ft", wrong_ids("s", range(3, 3 + 9 - night)), latency=0.004, identity={
                "path": str(ft), "arch": "BertForSequenceClassification", "dtype": "float32"},
                describe=folder_facts(ft)), f"hf:{ft}",
                label="minilm-l6-finetuned", tags=["nightly"], batch_id=batch),
            run(store, qa, reader("api", wrong_ids("q", range(2, 5 + night % 2)), cost=0.0009, tokens=300,
                                  latency=0.4), "openai:gpt-4o-mini", label="gpt-4o-mini", tags=["nightly"],
                batch_id=batch),
            run(store, qa, reader("slm", wrong_ids("q", range(5, 16)), xss=True, latency=0.12, identity=SLM),
                "hf:/models/smollm2-135m-instruct", label="smollm2-135m-instruct", tags=["nightly"], batch_id=batch),
        ]
        for rid in runs:
            set_created(store, rid, when)
    evil = '<img src=x onerror="window.__xss = 4">' if xss_model_name else "smollm2-135m-instruct"
    for rid in (run(store, cls, classifier("slm", wrong_ids("s", range(10, 22)), latency=0.09, identity=SLM),
                    "hf:/models/smollm2-135m-instruct", label=evil),
                run(store, cls, BaselineAdapter("majority"), "baseline:majority"),
                run(store, cls, BaselineAdapter("random"), "baseline:random"),
                run(store, qa, BaselineAdapter("first-sentence"), "baseline:first-sentence")):
        set_created(store, rid, start + timedelta(days=3, hours=1))
    return store


def set_scoring_mode(store: ResultStore, run_id: str, mode: str) -> None:
    """Record another scoring mode on a run (as a model scored by label log-likelihoods would)."""
    with store.engine.begin() as conn:
        conn.execute(sa.update(runs_table).where(runs_table.c.id == run_id).values(scoring_mode=mode))


WIDE_TASKS = ("sentiment_a", "sentiment_b", "sentiment_c", "sentiment_d")


def build_wide_store(root: Path) -> ResultStore:
    """Five tasks, the shapes the issue saw: a model that ran all five, one that ran only one
    (and wins it), an API model with prices, the same weights under two labels, a run on fewer
    samples, a run under another scoring mode, and baselines that beat models on some tasks."""
    store = ResultStore(root / "wide.sqlite")
    tasks = [write_cls_task(root / "tasks", n=24, name=name) for name in WIDE_TASKS]
    qa = write_qa_task(root / "tasks", n=20, name="qa_wide")
    same = {"weights": "sha256:5m0l", "arch": "LlamaForCausalLM", "dtype": "bfloat16"}
    start = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
    for night in range(3):
        when = start + timedelta(days=night)
        for i, task in enumerate(tasks):
            rid = run(store, task, classifier("all", wrong_ids("s", range(i, i + 5 + night % 2))), "hf:/m/all5",
                      label="all-five-tasks", tags=["nightly"], resamples=100)
            set_created(store, rid, when + timedelta(minutes=i))
        rid = run(store, qa, reader("all", wrong_ids("q", range(3, 9 - night))), "hf:/m/all5", label="all-five-tasks",
                  tags=["nightly"], resamples=100)
        set_created(store, rid, when)
    later = start + timedelta(days=3)
    for i, task in enumerate(tasks):
        rid = run(store, task, classifier("api", wrong_ids("s", range(i, i + 3)), cost=0.0004, tokens=120,
                                          latency=0.6), "openai:gpt-4o-mini", label="gpt-4o-mini", resamples=100)
        set_created(store, rid, later)
        rid = run(store, task, classifier("slm", wrong_ids("s", range(i, i + 8)), latency=0.1, identity=same),
                  "hf:/m/smollm2", label="smollm2-135m-instruct", resamples=100)
        set_created(store, rid, later)
        for spec in ("baseline:majority", "baseline:random"):
            kind = spec.split(":")[1]
            rid = run(store, task, BaselineAdapter(kind), spec, resamples=100)
            set_created(store, rid, later)
    rid = run(store, tasks[0], classifier("one", set()), "hf:/m/one", label="one-task-only", resamples=100)
    set_created(store, rid, later)
    rid = run(store, tasks[1], classifier("slm2", wrong_ids("s", range(0, 4)), identity=same), "hf:/m/smollm2-copy",
              label="smollm2", resamples=100)
    set_created(store, rid, later)
    rid = run(store, tasks[2], classifier("short", set()), "hf:/m/short", label="short-run", resamples=100, limit=12)
    set_created(store, rid, later)
    rid = run(store, tasks[3], classifier("ll", set()), "hf:/m/ll", label="other-scoring", resamples=100)
    set_scoring_mode(store, rid, "loglikelihood")
    set_created(store, rid, later)
    rid = run(store, qa, reader("api", wrong_ids("q", range(2, 5)), cost=0.0009, tokens=300, latency=0.4),
              "openai:gpt-4o-mini", label="gpt-4o-mini", resamples=100)
    set_created(store, rid, later)
    rid = run(store, qa, BaselineAdapter("first-sentence"), "baseline:first-sentence", resamples=100)
    set_created(store, rid, later)
    return store


# -- the headless browser the Chromium tests share (Debian's chromium; never `playwright install`) --

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: CI runs with CI=true and must have both: there a missing browser is not skipped, so the tests
#: fail (the browser fixture cannot launch) instead of passing a build that never opened a page.
ON_CI = os.environ.get("CI") == "true"
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not ON_CI and not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} missing — `apt-get install -y chromium` (never `playwright install`)"),
    pytest.mark.skipif(not ON_CI and importlib.util.find_spec("playwright") is None,
                       reason="playwright missing — `pip install playwright` (the test extra)"),
]
