"""Answer extraction by a task file's regular expression (lm-eval's regex filter): its
semantics, its time bound, and that tasks without it keep their identity."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmbench.tasks import load_task
from llmbench.tasks.base import TaskError
from llmbench.textregex import ExtractError, compile_pattern, extract
from llmbench.types import Response


@pytest.mark.parametrize(("pattern", "group", "text", "expected"), [
    # the answers lm-eval 0.4.13's RegexFilter gives, worked out by hand from its code
    (r"#### (\-?[0-9\.\,]+)", 0, "so 3+4 = 7\n#### 7 \n#### 9", "7"),  # first match, one group
    (r"#### (\-?[0-9\.\,]+)", 0, "the answer is 7", "[invalid]"),  # no match: the fallback
    (r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1, "I had 12 then 3", "3"),  # last match, second group of the tuple
    (r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1, "I had 12 then $30.", "$30."),  # first group of the tuple
    (r"answer: (.*)", 0, "answer:   B  ", "B"),  # stripped
    (r"x", 3, "x x", "[invalid]"),  # beyond the matches (lm-eval: IndexError)
])
def test_regex_filter_semantics(pattern: str, group: int, text: str, expected: str) -> None:
    assert extract(text, compile_pattern(pattern), group_select=group) == expected


def test_catastrophic_pattern_stops_in_one_line(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"q": "a", "a": "b"}\n', encoding="utf-8")
    task_file = tmp_path / "t.yaml"
    task_file.write_text(yaml.safe_dump({
        "name": "t", "kind": "qa", "dataset": {"path": "json", "data_files": str(rows)},
        "fields": {"input": "q", "target": "a"}, "prompt": {"template": "{{ input }}"},
        "extract": {"regex": "(x+x+)+y"}}), encoding="utf-8")
    task = load_task(str(task_file))
    (sample,) = task.samples()
    with pytest.raises(TaskError) as err:
        task.predict(sample, Response(text="x" * 5000), "generate")
    assert "\n" not in str(err.value) and "ran over" in str(err.value) and "(x+x+)+y" in str(err.value)
    assert task.predict(sample, Response(text="xxy"), "generate") == "xx"  # the group


def test_a_pattern_that_does_not_compile_is_refused_when_the_file_loads(tmp_path: Path) -> None:
    task_file = tmp_path / "t.yaml"
    task_file.write_text(yaml.safe_dump({
        "name": "t", "kind": "qa", "dataset": {"path": "json", "data_files": "rows.jsonl"},
        "fields": {"input": "q", "target": "a"}, "extract": {"regex": "(unclosed"}}), encoding="utf-8")
    with pytest.raises(TaskError, match=r"extract.regex.*does not compile") as err:
        load_task(str(task_file))
    assert "\n" not in str(err.value)
    with pytest.raises(ExtractError):
        compile_pattern("(unclosed")


def test_extract_is_in_the_fingerprint_only_when_set() -> None:
    from llmbench.tasks.spec import TaskSpec

    raw = {"name": "t", "kind": "qa", "dataset": {"path": "json", "data_files": "x.jsonl"},
           "fields": {"input": "q", "target": "a"}}
    assert "extract" not in TaskSpec.model_validate(raw).model_dump(mode="json")
    dumped = TaskSpec.model_validate({**raw, "extract": {"regex": "a"}}).model_dump(mode="json")
    assert dumped["extract"] == {"regex": "a", "group_select": 0, "fallback": "[invalid]"}


def test_continuation_kind_is_scored_by_loglikelihood_only(tmp_path: Path) -> None:
    task_file = tmp_path / "t.yaml"
    task_file.write_text(yaml.safe_dump({
        "name": "t", "kind": "continuation", "dataset": {"path": "json", "data_files": "x.jsonl"},
        "fields": {"input": "q", "target": "a"}, "scoring": ["generate"]}), encoding="utf-8")
    with pytest.raises(TaskError, match="scored by loglikelihood only"):
        load_task(str(task_file))

