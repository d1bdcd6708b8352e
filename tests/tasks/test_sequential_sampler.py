"""The ``sequential`` few-shot sampler: lm-eval 0.4.13's default ``ContextSampler``, one
generator for the task drawing for each evaluated row in order (the fixture test
``tests/bridge/test_lmeval_fixtures.py::arc_easy_3shot`` covers a separate few-shot split)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmbench.tasks import load_task


def test_sequential_sampler_refuses_match() -> None:
    from pydantic import ValidationError

    from llmbench.tasks.spec import FewShot

    with pytest.raises(ValidationError, match="does not take match"):
        FewShot(k=1, sampler="sequential", match="subject")


def test_sequential_sampler_on_the_evaluated_split_is_lmevals(tmp_path: Path) -> None:
    """Few-shot split = evaluated split (by name): lm-eval 0.4.13's ContextSampler.sample draws
    k + 1 and drops the evaluated document. Expected here by that code, transcribed, on dicts
    with a duplicate row (which also triggers its re-draw path)."""
    import json
    import random

    rows = [{"q": f"q{i % 5}", "a": str(i % 5)} for i in range(7)]  # rows 5, 6 repeat rows 0, 1
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    task_file = tmp_path / "t.yaml"
    task_file.write_text(yaml.safe_dump({
        "name": "t", "kind": "qa", "dataset": {"path": "json", "data_files": str(data), "split": "train"},
        "fields": {"input": "q", "target": "a"},
        "prompt": {"template": "{{ input }}?", "target_template": " {{ target }}",
                   "fewshot": {"k": 4, "split": "train", "sampler": "sequential", "seed": 1234,
                               "allow_evaluated_rows": True}}}), encoding="utf-8")
    task = load_task(str(task_file))
    rnd = random.Random(1234)
    for sample, request in zip(task.samples(), task.build_requests(task.samples(), "generate"), strict=True):
        doc = rows[int(sample.id)] if sample.id.isdigit() else sample.extra["row"]
        res = [x for x in rnd.sample(list(rows), 4 + 1) if x != doc][:4]  # lm-eval's rm_eval_doc
        if len(res) < 4:
            res = rnd.sample([x for x in rows if x != doc], 4)
        expected = "\n\n".join([f"{d['q']}? {d['a']}" for d in res] + [f"{doc['q']}?"])
        assert request.prompt == expected, sample.id
