"""YAML tasks: field mapping, labels, sub-sampling, few-shot and prompt rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmbench.tasks import TaskError, load_task
from llmbench.tasks.kinds import argmax_label, parse_label
from llmbench.types import ChatMessage, Response


def write_task(tmp: Path, body: str, rows: list[dict]) -> Path:
    (tmp / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    path = tmp / "task.yaml"
    path.write_text(body)
    return path


ROWS = [{"id": f"s{i}", "text": f"text {i}", "label": i % 2} for i in range(20)]
CLS = """
name: cls
kind: classification
dataset: {path: rows.jsonl, fewshot_split: test}
fields: {id: id, input: text, target: label}
labels: [neg, pos]
prompt:
  template: "T: {{ input }}\\nA:"
  fewshot: {k: 2, seed: 7, separator: "\\n--\\n", allow_evaluated_rows: true}
"""


def test_fields_labels_and_ids(tmp_path: Path) -> None:
    task = load_task(str(write_task(tmp_path, CLS, ROWS)))
    samples = task.samples()
    assert [s.id for s in samples[:3]] == ["s0", "s1", "s2"]
    assert [s.references for s in samples[:2]] == [("neg",), ("pos",)]
    assert samples[0].choices == ("neg", "pos")


def test_subsample_is_seeded_nested_and_ordered(tmp_path: Path) -> None:
    task = load_task(str(write_task(tmp_path, CLS, ROWS)))
    five = [s.id for s in task.samples(limit=5, seed=3)]
    ten = [s.id for s in task.samples(limit=10, seed=3)]
    assert len(five) == 5 and set(five) <= set(ten)
    assert five == [s.id for s in task.samples(limit=5, seed=3)]
    assert five != [s.id for s in task.samples(limit=5, seed=4)]
    order = [s.id for s in task.samples()]
    assert five == sorted(five, key=order.index)


def test_fewshot_prompt_is_deterministic_and_excludes_the_sample(tmp_path: Path) -> None:
    task = load_task(str(write_task(tmp_path, CLS, ROWS)))
    s = task.samples()[4]
    prompt = task.prompt_for(s, chat=False)
    assert prompt == task.prompt_for(s, chat=False)
    parts = prompt.split("\n--\n")
    assert len(parts) == 3 and parts[-1] == "T: text 4\nA:"
    assert all(p.endswith((" neg", " pos")) for p in parts[:2])
    assert "T: text 4\nA:" not in parts[:2]


def test_chat_prompt_turns(tmp_path: Path) -> None:
    body = CLS.replace('  template: "T', '  system: "Be brief."\n  template: "T')
    task = load_task(str(write_task(tmp_path, body, ROWS)))
    msgs = task.prompt_for(task.samples()[0], chat=True)
    assert isinstance(msgs, tuple) and msgs[0] == ChatMessage(role="system", content="Be brief.")
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[2].content in {"neg", "pos"}


def test_requests_per_mode(tmp_path: Path) -> None:
    task = load_task(str(write_task(tmp_path, CLS, ROWS)))
    s = task.samples()[:1]
    (ll,) = task.build_requests(s, "loglikelihood")
    assert ll.continuations == (" neg", " pos") and ll.prompt.endswith("T: text 0\nA:")
    (cl,) = task.build_requests(s, "classify")
    assert cl.input == "text 0" and cl.prompt == ll.prompt and cl.continuations == ("neg", "pos")
    (gen,) = task.build_requests(s, "generate")
    assert gen.config.stop == ("\n",) and gen.continuations is None


def test_predictions_from_each_mode(tmp_path: Path) -> None:
    task = load_task(str(write_task(tmp_path, CLS, ROWS)))
    s = task.samples()[0]
    assert task.predict(s, Response(logprobs=(-3.0, -1.0)), "loglikelihood") == "pos"
    assert task.predict(s, Response(label_scores={"neg": -0.1, "pos": -2.0}), "classify") == "neg"
    with pytest.raises(TaskError, match="map them"):  # generic names are never mapped by position
        task.predict(s, Response(label_scores={"LABEL_1": -0.1, "LABEL_0": -2.0}), "classify")
    assert task.predict(s, Response(label_scores={}), "classify") == ""  # no scores: invalid
    assert task.predict(s, Response(logprobs=()), "loglikelihood") == ""  # not labels[0]
    assert task.predict(s, Response(text=" Pos, clearly."), "generate") == "pos"
    with pytest.raises(TaskError, match="do not match"):
        task.predict(s, Response(label_scores={"good": 0.0, "bad": -1.0}), "classify")


def test_parse_label_is_strict() -> None:
    labels = ["positive", "negative", "very positive"]
    assert parse_label("Very positive!", labels) == "very positive"
    assert parse_label("I think it is negative.", labels) == "negative"
    assert parse_label("Positive\n\nReview: dull. Sentiment: negative", labels) == "positive"  # first line
    assert parse_label("Answer:\n negative", labels) == "negative"  # no label on the first line
    assert parse_label("It mentions positive and negative aspects", labels) == ""
    assert parse_label("no idea", labels) == ""
    assert argmax_label([0.0, 0.0], ["a", "b"]) == "a"
    assert argmax_label([], ["a", "b"]) == ""
    assert argmax_label([float("nan"), float("-inf")], ["a", "b"]) == ""
    with pytest.raises(ValueError, match="one score per label"):
        argmax_label([0.0], ["a", "b"])


@pytest.mark.parametrize("answer", ["positive or negative", "Positive or negative?", "not positive",
                                    "It is not positive.", "It isn't positive", "never positive",
                                    "negative, maybe positive", "", "   \n  "])
def test_an_answer_naming_no_single_label_is_wrong(answer: str) -> None:
    """Before: "positive or negative" and "not positive" parsed as positive (the text starts
    with a label), against the README's "an answer that names no single label is wrong"."""
    assert parse_label(answer, ["positive", "negative", "very positive"]) == ""


def test_label_map_and_reference_lists(tmp_path: Path) -> None:
    rows = [{"q": "Who?", "ctx": "Ann ran.", "ans": {"text": ["Ann", "ann"]}, "l": "fresh"}]
    qa = write_task(tmp_path, "name: q\nkind: qa\ndataset: {path: rows.jsonl}\n"
                              "fields: {input: q, context: ctx, target: ans.text}\n", rows)
    s = load_task(str(qa)).samples()[0]
    assert s.references == ("Ann", "ann") and s.context == "Ann ran." and s.id == "0"
    (tmp_path / "c.yaml").write_text("name: c\nkind: classification\ndataset: {path: rows.jsonl}\n"
                                     "fields: {input: q, target: l}\nlabels: [positive, negative]\n"
                                     "label_map: {fresh: positive}\n")
    assert load_task(str(tmp_path / "c.yaml")).samples()[0].references == ("positive",)


def test_fingerprint_follows_the_prompt(tmp_path: Path) -> None:
    a = load_task(str(write_task(tmp_path, CLS, ROWS)))
    again = load_task(str(write_task(tmp_path, CLS, ROWS)))
    b = load_task(str(write_task(tmp_path, CLS.replace("A:", "Answer:"), ROWS)))
    assert a.fingerprint() == again.fingerprint()
    assert a.fingerprint() != b.fingerprint()


def test_squad_nested_json(tmp_path: Path) -> None:
    doc = {"data": [{"title": "T", "paragraphs": [{"context": "Bo is 3.", "qas": [
        {"id": "q1", "question": "Age?", "answers": [{"text": "3", "answer_start": 6}]}]}]}]}
    (tmp_path / "squad.json").write_text(json.dumps(doc))
    (tmp_path / "t.yaml").write_text("name: s\nkind: qa\ndataset: {path: squad.json, format: squad}\n"
                                     "fields: {id: id, input: question, context: context, target: answers.text}\n")
    (s,) = load_task(str(tmp_path / "t.yaml")).samples()
    assert (s.id, s.input, s.context, s.references) == ("q1", "Age?", "Bo is 3.", ("3",))


def test_builtin_task_files_validate() -> None:
    for name in ["rotten_tomatoes", "flores_en_ms", "flores_ms_en", "flores_qa", "stdlib_docstrings"]:
        task = load_task(name)
        assert task.name == name


def test_classify_request_carries_prompt_and_raw_input(tmp_path: Path) -> None:
    """The task renders one request; a classifier head reads its raw input (the adapter's
    ``adapt_request``), an API its prompt, so the task need not know the model."""
    task = load_task(str(write_task(tmp_path, CLS, ROWS)))
    s = task.samples()[:1]
    (req,) = task.build_requests(s, "classify")
    assert req.input == "text 0"
    assert isinstance(req.prompt, str) and req.prompt.endswith("T: text 0\nA:")


@pytest.mark.parametrize("labels", [["no", "yes"], ["Yes", "No"], ["false", "true"]])
def test_a_boolean_target_is_the_label_that_says_so(labels: list[str], tmp_path: Path) -> None:
    """JSON true/false used to index the labels (true -> the second, whatever it was)."""
    rows = [{"id": "a", "text": "x", "label": True}, {"id": "b", "text": "y", "label": False}]
    body = ("name: b\nkind: classification\ndataset: {path: rows.jsonl}\n"
            f"fields: {{id: id, input: text, target: label}}\nlabels: {json.dumps(labels)}\n")
    refs = [s.references[0].lower() for s in load_task(str(write_task(tmp_path, body, rows))).samples()]
    assert refs in (["yes", "no"], ["true", "false"])
