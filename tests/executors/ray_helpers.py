"""Shared by the executor tests: run a plan or one (model, task), and read runs back in a
form two executors must agree on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmbench import registry
from llmbench.store import ResultStore

#: The waiting model of the scale benchmark, registered in the driver; the Ray executor
#: ships its factory to the replicas.
registry.models.register("latency", "llmbench.executors.simulate:factory", origin="test")

#: Wall-clock fields: the only per-sample values two runs may not share.
TIMING = ("latency_s",)
ANSWER_TIMING = ("latency_total_s",)


def row_view(store: ResultStore, run_id: str) -> list[dict[str, Any]]:
    """Every stored per-sample row without its timings."""
    rows = []
    for rec in store.samples(run_id):
        row = rec.model_dump()
        for key in TIMING:
            row.pop(key, None)
        for key in ANSWER_TIMING:
            row["answer"].pop(key, None)
        rows.append(row)
    return rows


def metric_view(store: ResultStore, run_id: str) -> list[tuple[str, float, float | None, float | None, int]]:
    return sorted((m.value.name, m.value.value, m.value.ci_low, m.value.ci_high, m.value.n)
                  for m in store.metrics(run_id))


def runs_by_pair(store: ResultStore) -> dict[tuple[str, str], str]:
    """(model, task) -> run id of the complete runs in ``store``."""
    out: dict[tuple[str, str], str] = {}
    for r in store.runs():
        assert r.status == "complete", (r.model, r.task, r.status)
        out[(r.model, r.task)] = r.id
    return out


def assert_same_runs(a: ResultStore, b: ResultStore) -> int:
    """Both stores hold the same (model, task) runs with equal metrics and rows; returns
    how many samples were compared."""
    pairs_a, pairs_b = runs_by_pair(a), runs_by_pair(b)
    assert sorted(pairs_a) == sorted(pairs_b)
    n = 0
    for pair, run_a in pairs_a.items():
        run_b = pairs_b[pair]
        assert metric_view(a, run_a) == metric_view(b, run_b), pair
        rows_a, rows_b = row_view(a, run_a), row_view(b, run_b)
        assert rows_a == rows_b, pair
        n += len(rows_a)
        info_a, info_b = a.run(run_a), b.run(run_b)
        assert (info_a.model_identity, info_a.scoring_method, info_a.config) == \
            (info_b.model_identity, info_b.scoring_method, info_b.config), pair
    return n


def write_task(folder: Path, n: int, name: str = "echo_sum") -> Path:
    """A summarization task of ``n`` rows the latency model answers by echoing the input."""
    rows = [{"id": f"s{i:05d}", "doc": f"document number {i}. it has two sentences.", "sum": f"document number {i}."}
            for i in range(n)]
    (folder / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    task = folder / f"{name}.yaml"
    task.write_text(f"name: {name}\nkind: summarization\ndataset: {{path: {name}.jsonl}}\n"
                    "fields: {id: id, input: doc, target: sum}\nmetrics: [exact_match]\nprimary_metric: exact_match\n")
    return task


def served(log: Path) -> list[tuple[str, int]]:
    """``(sample_id, pid)`` per request a latency model answered, in order."""
    if not log.exists():
        return []
    return [(sid, int(pid)) for sid, pid in (line.split() for line in log.read_text().splitlines() if line)]
