"""The bad-input corpus: every mistake a new user can make is one clear line and exit 2.

Each case drives the real command line in-process (``llmbench.cli.main.main``, the console
script's body) with one bad input: a task file, a data file, a model spec or folder, a CLI
argument, a suite file, a store or a cache. Every case must

* exit 2, with exactly one line on stderr, ``error: ...``, and no traceback;
* name what is wrong and where (each case lists fragments the line must hold: a file, a
  line or key, a row number or id) and say how to fix it (an em-dash clause or click's
  ``see --help``);
* leave the store as it was: the run stored before the case is still readable through
  ``llmbench show``, no new run (not even ``running`` or ``incomplete``) was recorded, and
  ``PRAGMA integrity_check`` is ``ok`` — which is what "validate what is cheap before
  loading a model or opening a write transaction" means from the outside.

The few cases that need a real model folder are marked slow.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cli_inprocess import run_cli

ROWS = [{"id": f"r{i}", "text": f"review {i}", "label": ["negative", "positive"][i % 2]} for i in range(6)]
TASK = ("name: corpus\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n")
SUMMARY_TASK = ("name: corpus_sum\nkind: summarization\ndataset: {path: d.jsonl}\n"
                "fields: {id: id, input: text, target: label}\n")
QA_TASK = ("name: corpus_qa\nkind: qa\ndataset: {path: d.jsonl}\n"
           "fields: {id: id, input: q, context: c, target: a}\n")
SUITE = "name: s\nmodels: [baseline:majority]\ntasks: [task.yaml]\n"
LATIN1 = "caf\u00e9 cr\u00e8me".encode("latin-1")
BINARY = bytes(range(256)) * 4
# Templates that hung or died (issue 28, item 6) and what the line says about each.
TEMPLATE_DOS = [
    ("{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}", "longer than"),
    ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "longer than"),
    ("{{ lipsum(1000000)|length }}", "lipsum"),
    ("{{ 10**(10**10) }}", "bits"),
    ("{{ '{:>999999999}'.format(1) }}", "format width"),
    ("{{ (10**(10**7))|string }}", "bits"),
    ("{{ '{:>{}}'.format(1, 10**9) }}", "format argument"),
    ("{{ 'x'.center(10**9) }}", "center width"),
    ("{{ 'x'|indent(10**9, true) }}", "indent width"),
    ("{{ '%999999999d' % 1 }}", "%-format"),
    ("{{ '%999999999d'|format(1) }}", "%-format"),
    ("{{ 'x' * 10**9 }}", "characters"),
    ("{{ ('x' * 10**7)|replace('x', 'yy') }}", "replace"),
    ("{{ ('x' * 10**6).join(range(99999)) }}", "join"),
    ("{% for i in range(99999) %}{{ 'x' * 9999999 }}{% endfor %}", "output"),
    ("{{ range(99999)|join('x' * 10**6) }}", "join"),
    ("{{ (['x' * 10**6] * 99999)|join }}", "join"),
    ("{{ range(99999)|map('string')|join('x' * 10**6) }}", "join"),
    ("{{ [1]|batch(10**9, 'x')|list }}", "batch size"),
    ("{{ range(3)|slice(10**9)|list }}", "slice count"),
    ("{{ range(999)|list|tojson(10**6) }}", "tojson indent"),
    ("{{ ('x\\n' * 10**6)|indent(10**6) }}", "indent"),
]
# How a line says what to do: llmbench's "problem — fix" convention, click's "see --help",
# or a message whose own words are the fix ("must look like KEY=VALUE", "known: a, b").
FIX_MARKERS = (" — ", "(see `llmbench", " must ", "known", "valid", " use ", "pass ")


class W:
    """One case's workspace: a copy of the prepared folder (good task, rows, a store holding one
    complete run) and helpers to write the bad input into it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = str(root / "runs.db")

    def f(self, name: str, content: str | bytes = "") -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    def rows(self, rows: list[object] | str | bytes, name: str = "d.jsonl") -> str:
        if isinstance(rows, list):
            rows = "\n".join(json.dumps(r) for r in rows) + "\n"
        return self.f(name, rows)

    def task(self, body: str = TASK, rows: list[object] | str | bytes | None = None, data: str = "d.jsonl",
             name: str = "t.yaml") -> str:
        """A task file ``name``; with ``rows`` its data is ``data`` holding them."""
        if rows is not None:
            self.rows(rows, data)
            body = body.replace("{path: rows.jsonl}", f"{{path: {data}}}").replace("{path: d.jsonl}",
                                                                                  f"{{path: {data}}}")
        return self.f(name, body)

    def run(self, *extra: str, task: str | None = None, model: str = "baseline:majority",
            store: str | None = None) -> list[str]:
        return ["run", "-m", model, "-t", task or "task.yaml", "--store", store or self.store, "--resamples", "0",
                *extra]


Argv = Callable[[W], list[str]]


@dataclass(frozen=True)
class Case:
    id: str
    argv: Argv
    where: tuple[str, ...]  # fragments the line must hold: what is wrong and where
    env: dict[str, str | None] = field(default_factory=dict)
    marks: tuple[pytest.MarkDecorator, ...] = ()


def row_task(rows: list[object] | str | bytes, extra: str = "", body: str = TASK) -> Argv:
    return lambda w: w.run(task=w.task(body + extra, rows))


def task_body(body: str) -> Argv:
    return lambda w: w.run(task=w.task(body))


def with_rows(**change: object) -> list[object]:
    """The good rows with row 1 changed (``text=None`` -> a null input in row 1, id 'r1')."""
    rows: list[object] = [dict(r) for r in ROWS]
    rows[1] = {**ROWS[1], **change}
    return rows


def empty_python_task(w: W) -> list[str]:
    """A Python task (registered by name) whose split is empty: the CLI, not the YAML loader,
    must refuse it."""
    from llmbench import registry
    from llmbench.tasks import Task, register_task
    from llmbench.tasks.spec import MetricRef

    class Empty(Task):
        name = "corpus_empty_py"
        kind = "summarization"
        metrics = (MetricRef(name="rouge"),)
        primary_metric = "rougeL"

        def load_split(self, split: str) -> list[Any]:
            return []

        def build_requests(self, samples: Any, mode: Any, *, chat: bool = False) -> list[Any]:
            return []

        def predict(self, sample: Any, response: Any, mode: Any) -> str:
            return ""

    if "corpus_empty_py" not in registry.tasks:
        register_task("corpus_empty_py")(Empty)
    return w.run(task="corpus_empty_py", model="baseline:lead")


CASES: list[Case] = [
    # -- task files -----------------------------------------------------------------------------
    Case("task_malformed_yaml", task_body("name: x\nkind: [classification\n"), ("t.yaml:", "invalid YAML")),
    Case("task_tab_indent", task_body(TASK + "prompt:\n\ttemplate: x\n"), ("t.yaml:", "invalid YAML")),
    Case("task_not_a_mapping", task_body("- name: x\n- kind: qa\n"), ("t.yaml", "mapping")),
    Case("task_empty_file", task_body(""), ("t.yaml", "mapping")),
    Case("task_unknown_key", task_body(TASK + "colour: red\n"), ("t.yaml", "'colour'")),
    Case("task_unknown_nested_key", task_body(TASK.replace("{path: rows.jsonl}", "{path: rows.jsonl, splt: x}")),
         ("t.yaml", "dataset.splt")),
    Case("task_missing_name", task_body(TASK.replace("name: corpus\n", "")), ("t.yaml", "'name'")),
    Case("task_missing_fields", task_body(TASK.replace("fields: {id: id, input: text, target: label}\n", "")),
         ("t.yaml", "'fields'")),
    Case("task_bad_kind", task_body(TASK.replace("kind: classification", "kind: regression")), ("t.yaml", "kind")),
    Case("task_bad_name", task_body(TASK.replace("name: corpus", "name: 'has space'")), ("t.yaml", "name")),
    Case("task_classification_without_labels", task_body(TASK.replace("labels: [negative, positive]\n", "")),
         ("t.yaml", "labels")),
    Case("task_no_answer_on_classification", task_body(TASK + "no_answer: none\n"), ("t.yaml", "no_answer")),
    Case("task_schema_version_2", task_body("llmbench_task: 2\n" + TASK), ("t.yaml", "llmbench_task")),
    Case("task_builtin_and_path", task_body(TASK.replace("{path: rows.jsonl}", "{path: rows.jsonl, builtin: x}")),
         ("t.yaml", "builtin")),
    Case("task_fewshot_k_negative", task_body(TASK + "prompt: {fewshot: {k: -1}}\n"),
         ("t.yaml", "prompt.fewshot.k")),
    Case("task_fewshot_without_split", task_body(TASK + "prompt: {fewshot: {k: 2}}\n"),
         ("t.yaml", "prompt.fewshot.k = 2")),
    Case("task_template_syntax", task_body(TASK + "prompt: {template: '{{ input '}\n"),
         ("t.yaml", "prompt template error")),
    Case("task_template_div_zero", task_body(TASK + "prompt: {template: '{{ 1/0 }}'}\n"),
         ("t.yaml", "prompt.template", "ZeroDivisionError")),
    Case("task_template_undefined", task_body(TASK + "prompt: {template: '{{ nope }}'}\n"),
         ("t.yaml", "prompt.template", "'nope' is undefined")),
    Case("task_template_mro", task_body(TASK + "prompt: {template: \"{{ ''.__class__.__mro__ }}\"}\n"),
         ("t.yaml", "prompt.template", "sandbox")),
    Case("task_template_cycler_popen",
         task_body(TASK + "prompt: {template: \"{{ cycler.__init__.__globals__.os.popen('id').read() }}\"}\n"),
         ("t.yaml", "prompt.template", "sandbox")),
    Case("task_template_attr_filter",
         task_body(TASK + "prompt: {template: \"{{ input|attr('__class__') }}\"}\n"), ("t.yaml", "sandbox")),
    Case("task_template_mutates_row", task_body(TASK + "prompt: {template: \"{{ row.clear() }}\"}\n"),
         ("t.yaml", "sandbox")),
    Case("task_target_template_sandbox",
         task_body(TASK + "prompt: {target_template: \"{{ target.__class__ }}\"}\n"),
         ("t.yaml", "prompt.target_template")),
    Case("task_target_template_div_zero", task_body(TASK + "prompt: {target_template: '{{ 1/0 }}'}\n"),
         ("t.yaml", "prompt.target_template", "ZeroDivisionError")),
    Case("task_non_utf8", lambda w: w.run(task=w.f("t.yaml", TASK.encode() + b"description: " + LATIN1 + b"\n")),
         ("t.yaml:6", "not UTF-8")),
    Case("task_binary", lambda w: w.run(task=w.f("t.yaml", BINARY)), ("t.yaml",)),
    Case("task_is_a_folder", lambda w: w.run(task=str((w.root / "tdir.yaml").mkdir() or w.root / "tdir.yaml")),
         ("tdir.yaml", "folder")),
    Case("task_file_missing", lambda w: w.run(task="nope.yaml"), ("nope.yaml", "does not exist")),
    Case("task_unknown_name", lambda w: w.run(task="no_such_task"), ("no_such_task",)),
    Case("task_primary_metric_not_computed", task_body(TASK + "primary_metric: bleu\n"),
         ("t.yaml", "primary_metric 'bleu'", "accuracy")),
    Case("task_default_primary_not_computed", task_body(TASK + "metrics: [f1]\n"),
         ("t.yaml", "primary_metric 'accuracy'", "f1_macro")),
    Case("task_unknown_metric", task_body(TASK + "metrics: [acuracy]\n"), ("t.yaml", "metrics", "acuracy")),
    Case("task_metric_bad_args", task_body(TASK + "metrics: [{name: accuracy, args: {foo: 1}}]\n"),
         ("accuracy", "foo")),
    Case("task_metric_markup_name", task_body(TASK + "metrics: ['[/x]']\n"), ("t.yaml", "[/x]")),
    Case("task_generation_zero_tokens", task_body(TASK + "generation: {max_new_tokens: 0}\n"),
         ("t.yaml", "generation.max_new_tokens")),
    Case("task_generation_negative_temperature", task_body(TASK + "generation: {temperature: -1}\n"),
         ("t.yaml", "generation.temperature")),
    Case("task_bad_scoring_mode", task_body(TASK + "scoring: [vibes]\n"), ("t.yaml", "scoring")),
    Case("task_labels_not_a_list", task_body(TASK.replace("labels: [negative, positive]", "labels: 5")),
         ("t.yaml", "labels")),
    Case("task_label_map_not_a_mapping", task_body(TASK + "label_map: [a, b]\n"), ("t.yaml", "label_map")),
    Case("task_scoring_the_model_cannot_serve", task_body(TASK + "scoring: [classify]\n"),
         ("corpus", "classify", "baseline:majority")),
    Case("task_kind_the_model_cannot_serve", lambda w: w.run(task=w.task(SUMMARY_TASK, ROWS)),
         ("corpus_sum", "baseline:majority")),
    Case("task_f1_without_labels", lambda w: w.run(task=w.task(SUMMARY_TASK + "metrics: [f1]\nprimary_metric: "
                                                               "f1_macro\n", ROWS), model="baseline:copy"),
         ("f1", "label")),
    # -- data files -----------------------------------------------------------------------------
    Case("data_file_missing", task_body(TASK.replace("rows.jsonl", "nope.jsonl")), ("nope.jsonl", "does not exist")),
    Case("data_path_is_a_folder", lambda w: w.run(task=w.task(TASK.replace("rows.jsonl", "ddir"))
                                                  if (w.root / "ddir").mkdir() is None else []),
         ("ddir", "folder")),
    Case("data_latin1_jsonl", row_task(b'{"id": "a", "text": "ok", "label": "positive"}\n'
                                       b'{"id": "b", "text": "' + LATIN1 + b'", "label": "negative"}\n'),
         ("d.jsonl:2", "not UTF-8", "utf-8")),
    Case("data_binary_jsonl", row_task(BINARY), ("d.jsonl:2", "binary")),  # line 1 is bytes 0-10
    Case("data_latin1_csv", lambda w: w.run(task=w.task(TASK, b"id,text,label\na,ok,positive\nb," + LATIN1
                                                        + b",negative\n", data="d.csv")), ("d.csv:3", "not UTF-8")),
    Case("data_binary_csv", lambda w: w.run(task=w.task(TASK, BINARY, data="d.csv")), ("d.csv:2",)),
    Case("data_garbage_parquet", lambda w: w.run(task=w.task(TASK, b"PAR1 not really", data="d.parquet")),
         ("d.parquet",)),
    Case("data_empty_jsonl", row_task([]), ("split 'test' has no rows", "d.jsonl")),
    Case("data_blank_lines_jsonl", row_task("\n  \n\n"), ("no rows", "d.jsonl")),
    Case("data_header_only_csv", lambda w: w.run(task=w.task(TASK, "id,text,label\n", data="d.csv")),
         ("no rows", "d.csv")),
    Case("data_invalid_json_line", row_task('{"id": "a", "text": "x", "label": "positive"}\n{"id": oops}\n'),
         ("d.jsonl:2", "not valid JSON")),
    Case("data_line_is_a_list", row_task("[1, 2]\n"), ("d.jsonl:1", "JSON object")),
    Case("data_line_is_a_string", row_task('"just text"\n'), ("d.jsonl:1", "JSON object")),
    Case("data_missing_input_column", row_task(ROWS, body=TASK.replace("input: text", "input: txet")),
         ("fields.input = 'txet'", "row 0")),
    Case("data_missing_target_column", row_task(ROWS, body=TASK.replace("target: label", "target: lbl")),
         ("fields.target = 'lbl'", "row 0")),
    Case("data_missing_dotted_field", row_task(ROWS, body=TASK.replace("input: text", "input: meta.text")),
         ("fields.input = 'meta.text'",)),
    Case("data_missing_id_column", row_task(ROWS, body=TASK.replace("id: id", "id: uid")), ("fields.id = 'uid'",)),
    Case("data_label_not_in_labels", row_task(with_rows(label="neutral")), ("row 1", "'neutral'", "labels")),
    Case("data_label_index_out_of_range", row_task(with_rows(label=7)), ("row 1", "label index 7")),
    Case("data_null_input", row_task(with_rows(text=None)), ("row 1 (id 'r1')", "fields.input", "null")),
    Case("data_dict_input", row_task(with_rows(text={"a": 1})), ("row 1 (id 'r1')", "a dict")),
    Case("data_list_input", row_task(with_rows(text=["a"])), ("row 1 (id 'r1')", "a list")),
    Case("data_bool_input", row_task(with_rows(text=True)), ("row 1 (id 'r1')", "a bool")),
    Case("data_null_target", row_task(with_rows(label=None)), ("row 1", "fields.target", "null")),
    Case("data_dict_target", row_task(with_rows(label={"x": 1})), ("row 1", "fields.target", "a dict")),
    Case("data_null_context", lambda w: w.run(task=w.task(QA_TASK, [{"id": "a", "q": "q", "c": None, "a": ["x"]}]),
                                              model="baseline:first-sentence"), ("row 0 (id 'a')", "fields.context")),
    Case("data_40_rows_share_an_id", row_task([{**ROWS[0], "id": "same"}] * 40 + ROWS[1:]),
         ("duplicate ids", "'same' in rows 0, 1, 2, 3", "40 rows")),
    Case("data_two_duplicate_ids", row_task([*ROWS, ROWS[1], ROWS[3]]),
         ("duplicate ids", "'r1' in rows 1, 6", "'r3' in rows 3, 7")),
    Case("data_null_id", row_task(with_rows(id=None)), ("row 1", "id None")),
    Case("data_empty_id", row_task(with_rows(id="")), ("row 1", "id ''")),
    Case("data_split_not_in_data_files",
         task_body(TASK.replace("{path: rows.jsonl}", "{data_files: {train: rows.jsonl}}")),
         ("split 'test'", "data_files")),
    Case("data_unknown_extension", lambda w: w.run(task=w.task(TASK, "a b c\n", data="d.txt")),
         ("d.txt", "unknown format")),
    Case("data_csv_missing_column", lambda w: w.run(task=w.task(TASK, "id,body,label\na,x,positive\n", data="d.csv")),
         ("fields.input = 'text'",)),
    Case("data_qa_without_reference", lambda w: w.run(task=w.task(QA_TASK, [{"id": "a", "q": "q", "c": "c", "a": []}]),
                                                      model="baseline:first-sentence"), ("row 0", "no reference")),
    Case("data_squad_invalid_json",
         lambda w: w.run(task=w.task(QA_TASK.replace("{path: d.jsonl}", "{path: d.json, format: squad}"),
                                     '{"data": [', data="d.json"), model="baseline:first-sentence"),
         ("d.json", "not valid JSON")),
    Case("data_squad_missing_key",
         lambda w: w.run(task=w.task(QA_TASK.replace("{path: d.jsonl}", "{path: d.json, format: squad}"),
                                     '{"data": [{"paragraphs": [{"context": "c", "qas": [{"question": "q"}]}]}]}',
                                     data="d.json"), model="baseline:first-sentence"), ("d.json", "'id'")),
    Case("data_squad_not_squad",
         lambda w: w.run(task=w.task(QA_TASK.replace("{path: d.jsonl}", "{path: d.json, format: squad}"),
                                     "[1, 2]", data="d.json"), model="baseline:first-sentence"),
         ("d.json", "not SQuAD")),
    Case("data_override_missing", lambda w: w.run("--data", "nope.jsonl"), ("--data", "nope.jsonl")),
    Case("data_override_folder", lambda w: w.run("--data", str((w.root / "dd").mkdir() or w.root / "dd")),
         ("--data", "folder")),
    Case("data_override_latin1", lambda w: w.run("--data", w.f("l.jsonl", b'{"text": "' + LATIN1 + b'"}\n')),
         ("l.jsonl:1", "not UTF-8")),
    Case("data_override_empty", lambda w: w.run("--data", w.f("e.jsonl", "")), ("no rows", "e.jsonl")),
    Case("data_fewshot_split_missing", task_body(TASK.replace("{path: rows.jsonl}", "{data_files: {test: rows.jsonl}}")
                                                 + "prompt: {fewshot: {k: 1, split: train}}\n"),
         ("split 'train'", "data_files")),
    Case("data_fewshot_split_empty",
         lambda w: w.run(task=w.task(TASK.replace("{path: rows.jsonl}",
                                                  "{data_files: {test: rows.jsonl, train: e.jsonl}}")
                                     + "prompt: {fewshot: {k: 1, split: train}}\n")) if w.f("e.jsonl") else [],
         ("split 'train' has no rows",)),
    Case("data_python_task_without_samples", empty_python_task, ("corpus_empty_py", "no samples")),
    Case("data_builtin_unknown", task_body(TASK.replace("{path: rows.jsonl}", "{builtin: no_such_set}")),
         ("no_such_set",)),
    Case("data_hub_offline", task_body(TASK.replace("{path: rows.jsonl}", "{path: someorg/no-such-dataset}")),
         ("someorg/no-such-dataset", "--data")),
    # -- model specs and folders ------------------------------------------------------------------
    Case("model_spec_without_backend", lambda w: w.run(model="gpt2"), ("gpt2", "BACKEND:NAME")),
    Case("model_unknown_backend", lambda w: w.run(model="foo:bar"), ("'foo'",)),
    Case("model_hf_path_missing", lambda w: w.run(model="hf:/no/such/model"), ("/no/such/model", "does not exist")),
    Case("model_hf_path_is_a_file", lambda w: w.run(model="hf:" + w.f("weights.bin", "x")),
         ("weights.bin", "is a file")),
    Case("model_hf_folder_without_config", lambda w: w.run(model="hf:" + w.f("m/README.md", "x")[:-10]),
         ("config.json",)),
    Case("model_hf_config_not_json", lambda w: w.run(model="hf:" + w.f("m/config.json", "{oops")[:-12])
         if w.f("m/tokenizer.json", "{}") else [], ("config.json",)),
    Case("model_hf_folder_without_tokenizer", lambda w: w.run(model="hf:" + w.f("m/config.json", "{}")[:-12]),
         ("tokenizer files", "tokenizer.save_pretrained")),
    Case("model_hf_gguf_missing", lambda w: w.run(model="hf:/no/such/model.gguf"), ("model.gguf",)),
    Case("model_unknown_baseline", lambda w: w.run(model="baseline:median"), ("median", "majority")),
    Case("model_arg_unknown_on_baseline", lambda w: w.run("--model-arg", "foo=1"), ("baseline:majority", "foo")),
    Case("model_arg_baseline_seed_not_int", lambda w: w.run("--model-arg", "seed=abc"), ("seed", "integer")),
    Case("model_base_url_on_baseline", lambda w: w.run("--base-url", "http://127.0.0.1:9/v1"), ("base_url",)),
    Case("model_arg_unknown_on_hf", lambda w: w.run("--model-arg", "foo=1", model="hf:/no/such"),
         ("unknown option 'foo'",)),
    Case("model_arg_bad_dtype_on_hf", lambda w: w.run("--model-arg", "dtype=int3", model="hf:/no/such"),
         ("dtype",)),
    Case("model_arg_bad_batch_on_hf", lambda w: w.run("--model-arg", "max_batch_size=0", model="hf:/no/such"),
         ("max_batch_size",)),
    Case("model_arg_unknown_on_openai", lambda w: w.run("--model-arg", "foo=1", model="openai:gpt-4o-mini"),
         ("unknown option 'foo'",), env={"OPENAI_API_KEY": "sk-test"}),
    Case("model_arg_openai_concurrency_zero",
         lambda w: w.run("--model-arg", "concurrency=0", model="openai:gpt-4o-mini"), ("concurrency",),
         env={"OPENAI_API_KEY": "sk-test"}),
    Case("model_openai_without_key", lambda w: w.run(model="openai:gpt-4o-mini"), ("OPENAI_API_KEY",),
         env={"OPENAI_API_KEY": None}),
    Case("model_arg_yaml_bracket", lambda w: w.run("--model-arg", "dtype=["), ("--model-arg", "dtype=[")),
    Case("model_arg_without_equals", lambda w: w.run("--model-arg", "dtype"), ("--model-arg", "KEY=VALUE")),
    Case("model_arg_empty_key", lambda w: w.run("--model-arg", "=1"), ("--model-arg", "KEY=VALUE")),
    # -- command-line arguments -----------------------------------------------------------------
    Case("cli_limit_zero", lambda w: w.run("--limit", "0"), ("--limit",)),
    Case("cli_limit_negative", lambda w: w.run("--limit", "-1"), ("--limit",)),
    Case("cli_limit_not_a_number", lambda w: w.run("--limit", "ten"), ("--limit",)),
    Case("cli_resamples_negative", lambda w: w.run("--resamples", "-5"), ("--resamples",)),
    Case("cli_seed_not_a_number", lambda w: w.run("--seed", "x"), ("--seed",)),
    Case("cli_scoring_unknown", lambda w: w.run("--scoring", "vibes"), ("--scoring", "vibes")),
    Case("cli_suite_and_model", lambda w: ["run", "--suite", w.f("s.yaml", SUITE), "-m", "baseline:majority",
                                           "--store", w.store], ("--suite",)),
    Case("cli_scoring_with_suite", lambda w: ["run", "--suite", w.f("s.yaml", SUITE), "--scoring", "generate",
                                              "--store", w.store], ("--scoring",)),
    Case("cli_no_model", lambda w: ["run", "-t", "task.yaml", "--store", w.store], ("--model",)),
    Case("cli_no_task", lambda w: ["run", "-m", "baseline:majority", "--store", w.store], ("--task",)),
    Case("cli_unknown_flag", lambda w: w.run("--no-such-flag"), ("--no-such-flag",)),
    Case("cli_unknown_command", lambda w: ["evaluate-all"], ("evaluate-all",)),
    Case("cli_json_dir_is_a_file", lambda w: w.run("--json-dir", w.f("export.json", "{}")),
         ("--json-dir", "export.json")),
    Case("cli_show_unknown_run", lambda w: ["show", "nope", "--store", w.store], ("nope",)),
    Case("cli_show_markup_in_id", lambda w: ["show", "[/x]", "--store", w.store], ("[/x]",)),
    Case("cli_compare_unknown_runs", lambda w: ["compare", "nope1", "nope2", "--store", w.store], ("nope1",)),
    Case("cli_gate_alpha_out_of_range", lambda w: ["gate", "--baseline", "a", "--candidate", "b", "--alpha", "2",
                                                   "--store", w.store], ("--alpha",)),
    # -- suite files ----------------------------------------------------------------------------
    Case("suite_missing", lambda w: ["run", "--suite", "nope.yaml", "--store", w.store], ("nope.yaml",)),
    Case("suite_invalid_yaml", lambda w: ["run", "--suite", w.f("s.yaml", "name: [s\n"), "--store", w.store],
         ("s.yaml:", "invalid YAML")),
    Case("suite_not_a_mapping", lambda w: ["run", "--suite", w.f("s.yaml", "- a\n"), "--store", w.store],
         ("s.yaml", "mapping")),
    Case("suite_empty", lambda w: ["run", "--suite", w.f("s.yaml", ""), "--store", w.store], ("s.yaml", "mapping")),
    Case("suite_unknown_key", lambda w: ["run", "--suite", w.f("s.yaml", SUITE + "colour: red\n"),
                                         "--store", w.store], ("s.yaml", "colour")),
    Case("suite_models_not_a_list", lambda w: ["run", "--suite", w.f("s.yaml", "name: s\nmodels: 3\ntasks: [x]\n"),
                                               "--store", w.store], ("s.yaml", "models")),
    Case("suite_missing_tasks", lambda w: ["run", "--suite", w.f("s.yaml", "name: s\nmodels: [baseline:copy]\n"),
                                           "--store", w.store], ("s.yaml", "tasks")),
    Case("suite_model_unknown_key", lambda w: ["run", "--suite", w.f("s.yaml", SUITE.replace(
        "[baseline:majority]", "[{spec: baseline:majority, colour: red}]")), "--store", w.store],
         ("s.yaml", "models.0.colour")),
    Case("suite_task_limit_zero", lambda w: ["run", "--suite", w.f("s.yaml", SUITE.replace(
        "[task.yaml]", "[{task: task.yaml, limit: 0}]")), "--store", w.store], ("s.yaml", "tasks.0.limit")),
    Case("suite_limit_negative", lambda w: ["run", "--suite", w.f("s.yaml", SUITE + "limit: -1\n"),
                                            "--store", w.store], ("s.yaml", "limit")),
    Case("suite_resamples_negative", lambda w: ["run", "--suite", w.f("s.yaml", SUITE + "n_resamples: -5\n"),
                                                "--store", w.store], ("s.yaml", "n_resamples")),
    Case("suite_bad_scoring", lambda w: ["run", "--suite", w.f("s.yaml", SUITE.replace(
        "[baseline:majority]", "[{spec: baseline:majority, scoring: vibes}]")), "--store", w.store],
         ("s.yaml", "scoring")),
    Case("suite_unknown_task", lambda w: ["run", "--suite", w.f("s.yaml", SUITE.replace("task.yaml", "no_such_task")),
                                          "--store", w.store], ("s.yaml: tasks[0] 'no_such_task'", "unknown task")),
    Case("suite_task_data_missing", lambda w: ["run", "--suite", w.f("s.yaml", SUITE.replace(
        "[task.yaml]", "[{task: task.yaml, data: nope.jsonl}]")), "--store", w.store],
         ("s.yaml: tasks[0] 'task.yaml'", "nope.jsonl")),
    Case("suite_task_bad_rows", lambda w: ["run", "--suite", w.f("s.yaml", SUITE.replace("task.yaml", w.task(
        TASK, with_rows(text=None)))), "--store", w.store], ("s.yaml: tasks[0]", "row 1 (id 'r1')")),
    Case("suite_model_spec_unknown", lambda w: ["run", "--suite", w.f("s.yaml", SUITE.replace(
        "[baseline:majority]", "[baseline:majority, foo:bar]")), "--store", w.store],
         ("s.yaml: models[1] 'foo:bar'", "foo")),
    Case("suite_model_option_unknown", lambda w: ["run", "--suite", w.f("s.yaml", SUITE.replace(
        "[baseline:majority]", "[{spec: baseline:majority, options: {foo: 1}}]")), "--store", w.store],
         ("s.yaml: models[0] 'baseline:majority'", "foo")),
    Case("suite_non_utf8", lambda w: ["run", "--suite", w.f("s.yaml", SUITE.encode() + b"description: " + LATIN1),
                                      "--store", w.store], ("s.yaml:4", "UTF-8")),
    Case("suite_is_a_folder", lambda w: ["run", "--suite", str((w.root / "sd").mkdir() or w.root / "sd"),
                                         "--store", w.store], ("sd", "folder")),
    # -- stores and caches ----------------------------------------------------------------------
    Case("store_is_a_folder", lambda w: w.run(store=str((w.root / "sdir").mkdir() or w.root / "sdir")),
         ("sdir",)),
    Case("store_not_a_database", lambda w: w.run(store=w.f("junk.db", "this is not sqlite " * 100)),
         ("junk.db",)),
    Case("store_under_a_file", lambda w: w.run(store=str(w.root / "task.yaml" / "x" / "db.sqlite")),
         ("task.yaml",)),
    Case("store_read_only", lambda w: w.run(store=f"sqlite:///file:{w.store}?mode=ro&uri=true"),
         ("read-only",)),
    Case("store_newer_schema", lambda w: w.run(store=newer_store(w)), ("newer.db", "newer")),
    Case("store_postgresql_unreachable",
         lambda w: w.run(store="postgresql://u@127.0.0.1:1/llmbench"), ("postgresql://", "127.0.0.1")),
    Case("store_postgresql_without_driver",
         lambda w: w.run(store="postgresql+psycopg2://u@127.0.0.1:1/llmbench"), ("psycopg2",)),
    Case("store_pg8000_driver_missing",
         lambda w: w.run(store="postgresql+pg8000://u@127.0.0.1:1/llmbench"), ("pg8000",)),
    Case("store_unknown_url_scheme", lambda w: w.run(store="nosuchdb://x/y"), ("nosuchdb",)),
    Case("store_show_on_a_non_database", lambda w: ["show", "x", "--store", w.f("junk.db", "x" * 2000)], ("junk.db",)),
    Case("cache_env_is_a_file", lambda w: w.run(), ("LLMBENCH_CACHE",), env={"LLMBENCH_CACHE": "@file"}),
    # -- issue 28: hangs, internal errors and silent accepts -------------------------------------
    Case("seed_negative", lambda w: w.run("--seed", "-1"), ("--seed -1", "0 to")),
    Case("resamples_huge", lambda w: w.run("--resamples", "1000000000"), ("--resamples 1000000000",)),
    Case("model_twice", lambda w: w.run("-m", "baseline:majority"), ("--model 'baseline:majority'", "twice")),
    Case("tag_empty", lambda w: w.run("--tag", ""), ("--tag ''",)),
    Case("tag_with_comma", lambda w: w.run("--tag", "a,b"), ("--tag 'a,b'", "comma")),
    Case("json_dir_unwritable", lambda w: w.run("--json-dir", str(w.root / "task.yaml" / "out")),
         ("--json-dir", "task.yaml", "cannot be written")),
    Case("data_is_a_fifo", lambda w: w.run("--data", fifo(w)), ("pipe.jsonl", "not a regular file")),
    Case("data_is_dev_zero", lambda w: w.run("--data", dev_zero(w)), ("not a regular file",)),
    Case("data_json_is_a_number", lambda w: w.run("--data", w.f("n.json", "42\n")), ("n.json", "list of row")),
    Case("data_jsonl_duplicate_key", row_task('{"id": "a", "id": "b", "text": "x", "label": "positive"}\n'),
         ("d.jsonl:1", "'id' appears twice")),
    Case("data_jsonl_nan_id", row_task('{"id": NaN, "text": "x", "label": "positive"}\n'), ("d.jsonl:1", "NaN")),
    Case("data_jsonl_nan_input", row_task('{"id": "a", "text": NaN, "label": "positive"}\n'),
         ("d.jsonl:1", "NaN")),
    Case("store_in_memory", lambda w: w.run(store="sqlite://"), ("sqlite://", "in-memory")),
    Case("store_in_memory_env", lambda w: ["run", "-m", "baseline:majority", "-t", "task.yaml", "--resamples", "0"],
         ("in-memory",), env={"LLMBENCH_STORE": "sqlite:///:memory:"}),
    Case("store_postgresql_malformed", lambda w: w.run(store="postgresql://u@h:abc/db"), ("not a valid database URL",)),
    Case("store_postgresql_never_answers", lambda w: w.run(store=f"postgresql://u@127.0.0.1:{silent_port()}/db"),
         ("127.0.0.1", "timeout")),
    Case("ray_address_unreachable", lambda w: w.run("--ray-address", "127.0.0.1:1"), ("127.0.0.1:1", "Ray")),
    Case("suite_model_twice", lambda w: ["run", "--suite", w.f("s.yaml", SUITE.replace(
        "[baseline:majority]", "[baseline:majority, baseline:majority]")), "--store", w.store],
         ("s.yaml", "models[1] 'baseline:majority' repeats models[0]")),
    Case("suite_task_twice", lambda w: ["run", "--suite", w.f("s.yaml", SUITE.replace(
        "[task.yaml]", "[task.yaml, task.yaml]")), "--store", w.store], ("s.yaml", "tasks[1] 'task.yaml' repeats")),
    Case("suite_seed_negative", lambda w: ["run", "--suite", w.f("s.yaml", SUITE + "seed: -3\n"), "--store", w.store],
         ("s.yaml", "seed")),
    Case("suite_resamples_huge", lambda w: ["run", "--suite", w.f("s.yaml", SUITE + "n_resamples: 1000000000\n"),
                                            "--store", w.store], ("s.yaml", "n_resamples")),
    Case("metric_listed_twice", task_body(TASK + "metrics: [accuracy, {name: accuracy, args: {}}]\n"),
         ("t.yaml", "metrics[1] 'accuracy'", "metrics[0]")),
    Case("chrf_and_chrf_plus_plus", task_body(SUMMARY_TASK.replace("summarization", "translation")
                                              + "metrics: [chrf, {name: chrf, args: {word_order: 2}}]\n"),
         ("t.yaml", "metrics[1] 'chrf'")),
    Case("metrics_empty", task_body(TASK + "metrics: []\n"), ("t.yaml", "metrics: []")),
    Case("version_negative", task_body(TASK + "version: -3\n"), ("t.yaml", "version")),
    Case("version_huge", task_body(TASK + "version: 100000000000000000000000\n"), ("t.yaml", "version")),
    Case("label_empty", task_body(TASK.replace("[negative, positive]", '["", positive]')), ("t.yaml", "labels: ''")),
    Case("labels_differ_by_whitespace", task_body(TASK.replace("[negative, positive]", '[negative, " negative "]')),
         ("t.yaml", "'negative' and ' negative '")),
    Case("label_is_a_boolean", task_body(TASK.replace("[negative, positive]", "[true, false]")), ("t.yaml", "labels")),
    Case("template_renders_empty", task_body(TASK + "prompt: {template: \"{{ '' }}\"}\n"),
         ("t.yaml", "empty prompt", "sample 'r0'")),
    Case("fewshot_from_evaluated_rows", task_body(TASK + "prompt: {fewshot: {k: 2, split: train}}\n"),
         ("t.yaml", "evaluated rows", "rows.jsonl", "allow_evaluated_rows")),
    Case("fewshot_k_larger_than_pool",
         lambda w: w.run(task=w.task(TASK.replace("{path: rows.jsonl}", "{data_files: {test: rows.jsonl, "
                                                  "train: few.jsonl}}") + "prompt: {fewshot: {k: 5, split: train}}\n")
                         if w.rows(ROWS[:2], "few.jsonl") else ""),
         ("t.yaml", "k = 5", "2 example")),
    Case("task_yaml_duplicate_key", task_body(TASK + "version: 2\nversion: 3\n"),
         ("t.yaml:7", "'version' appears twice")),
    Case("suite_yaml_duplicate_key", lambda w: ["run", "--suite", w.f("s.yaml", SUITE + "seed: 1\nseed: 2\n"),
                                                "--store", w.store], ("s.yaml:5", "'seed' appears twice")),
    Case("base_url_not_a_url", lambda w: w.run("--base-url", "htp:/x", model="openai:gpt-4o-mini"),
         ("--base-url 'htp:/x'", "http")),
    Case("base_url_bad_port", lambda w: w.run("--base-url", "http://h:abc/v1", model="openai:gpt-4o-mini"),
         ("--base-url 'http://h:abc/v1'",)),
    Case("task_path_5000_chars", lambda w: w.run(task="a" * 5000), ("5000 characters", "too long")),
    Case("report_out_is_a_file", lambda w: ["report", "--store", w.store, "--out", w.f("out.md", "x")],
         ("--out", "out.md", "is a file")),
    Case("report_out_unwritable", lambda w: ["report", "--store", w.store, "--out", str(w.root / "task.yaml" / "o")],
         ("--out", "cannot be written")),
    Case("serve_port_out_of_range", lambda w: ["serve", "baseline:majority", "--port", "70000"], ("--port", "65535")),
    Case("select_allow_metric_not_evaluate", lambda w: ["select", "--task", "corpus", "--store", w.store,
                                                        "--allow-metric", "rouge"], ("--allow-metric", "'rouge'")),
    Case("suite_tag_with_comma", lambda w: ["run", "--suite", w.f("s.yaml", SUITE + "tags: ['a,b']\n"),
                                            "--store", w.store], ("s.yaml", "tags", "'a,b'")),
    Case("compare_resamples_huge", lambda w: ["compare", "x", "y", "--store", w.store, "--resamples", "1000000000"],
         ("--resamples", "100000")),
    Case("report_seed_negative", lambda w: ["report", "--store", w.store, "--seed", "-1", "--out", "-",
                                            "--format", "json"], ("--seed",)),
    Case("data_label_is_true", row_task(with_rows(label=True)), ("row 1", "boolean label true")),
    # -- issue 28: template denial of service (each within 5 s, see test_template_limits) --------
    *(Case(f"template_dos_{i}", task_body(TASK + "prompt: {template: " + json.dumps(tpl) + "}\n"),
           ("t.yaml", "prompt.template", why)) for i, (tpl, why) in enumerate(TEMPLATE_DOS)),
    Case("cache_file_corrupted", lambda w: w.run() if w.f("cache/responses.sqlite", "garbage " * 500) else [],
         ("responses.sqlite",)),
]


def fifo(w: W) -> str:
    import os

    path = w.root / "pipe.jsonl"
    os.mkfifo(path)
    return str(path)


def dev_zero(w: W) -> str:
    path = w.root / "zero.jsonl"
    path.symlink_to("/dev/zero")
    return str(path)


_LISTENERS: list[Any] = []


def silent_port() -> int:
    """A port that accepts TCP connections and never says a word (a hung database server)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    _LISTENERS.append(sock)  # kept open for the session
    return int(sock.getsockname()[1])


def newer_store(w: W) -> str:
    """A copy of the good store stamped with an Alembic revision this llmbench does not know."""
    path = w.root / "newer.db"
    shutil.copy(w.store, path)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute("DELETE FROM alembic_version")
        conn.execute("INSERT INTO alembic_version VALUES ('ffffffff9999')")
        conn.execute("ALTER TABLE runs ADD COLUMN from_the_future TEXT")
    return str(path)


# -- harness ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A folder with the good task, its rows and a store holding one complete run."""
    from llmbench.cli.main import main

    root = tmp_path_factory.mktemp("prepared")
    (root / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    (root / "task.yaml").write_text(TASK)
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("LLMBENCH_CACHE", str(root / "cache"))
    try:
        with pytest.raises(SystemExit) as done:
            main(["run", "-m", "baseline:majority", "-t", "task.yaml", "--store", str(root / "runs.db"),
                  "--resamples", "0"])
        assert done.value.code in (0, None)
    finally:
        mp.undo()
    with sqlite3.connect(root / "runs.db") as conn:
        ((run_id,),) = conn.execute("SELECT id FROM runs").fetchall()
    shutil.rmtree(root / "cache")
    return root, run_id


@pytest.fixture
def work(prepared: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[W, str]:
    root, run_id = prepared
    for item in root.iterdir():
        shutil.copy(item, tmp_path / item.name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "400")  # one line must be one line because it is, not because it fits
    return W(tmp_path), run_id


def assert_store_intact(w: W, run_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(w.store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        runs = conn.execute("SELECT id, status FROM runs").fetchall()
    assert runs == [(run_id, "complete")], f"the case left a run behind: {runs}"
    code, out, err = run_cli(["show", run_id, "--store", w.store, "--samples", "3"], capsys)
    assert code == 0 and run_id in out, err


def assert_one_clear_line(code: int, err: str, where: tuple[str, ...]) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert code == 2, line
    assert line.startswith("error: ") and "internal error" not in line, line
    missing = [frag for frag in where if frag not in line]
    assert not missing, f"{missing} not in: {line}"
    assert any(marker in line for marker in FIX_MARKERS), f"no fix in: {line}"
    return line


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_is_one_clear_line(case: Case, work: tuple[W, str], capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    w, run_id = work
    for name, value in case.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, w.f("cache_is_a_file", "x") if value == "@file" else value)
    argv = case.argv(w)
    code, _, err = run_cli(argv, capsys)
    assert_one_clear_line(code, err, case.where)
    assert_store_intact(w, run_id, capsys)


def test_the_corpus_is_large_and_distinct() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 100


def test_older_store_is_upgraded_or_refused_in_one_line(work: tuple[W, str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A store written before a column existed: either migrated (exit 0, the old run still
    shown) or refused in one line — never ``no such column`` as a traceback."""
    w, run_id = work
    old = w.root / "old.db"
    shutil.copy(w.store, old)
    with sqlite3.connect(old) as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN model_kind")
    code, out, err = run_cli(w.run(store=str(old)), capsys)
    if code != 0:
        assert_one_clear_line(code, err, ("old.db",))
    else:
        code, out, err = run_cli(["show", run_id, "--store", str(old)], capsys)
        assert code == 0 and run_id in out, err


# -- cases that need a real model folder ---------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("missing", ["all", "vocab"])
def test_tokenizer_files_missing_is_one_line_and_leaves_no_run(
        missing: str, tiny_gpt2: Path, work: tuple[W, str], capsys: pytest.CaptureFixture[str]) -> None:
    w, run_id = work
    folder = w.root / "model"
    shutil.copytree(tiny_gpt2, folder)
    tokenizer_files = [p for p in folder.iterdir() if "token" in p.name or p.name in {"vocab.json", "merges.txt"}]
    assert tokenizer_files
    for p in tokenizer_files:
        if missing == "all" or p.name in {"vocab.json", "tokenizer.json"}:
            p.unlink()
    code, _, err = run_cli(w.run(model=f"hf:{folder}"), capsys)
    assert_one_clear_line(code, err, (str(folder), "tokenizer"))
    assert_store_intact(w, run_id, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("template", ["{{ ''.__class__.__mro__[1].__subclasses__() }}",
                                      "{{ raise_exception('no') if messages|length > 0 }}{{ 1/0 }}"])
def test_a_chat_template_the_sandbox_refuses_is_one_line(template: str, tiny_gpt2: Path, work: tuple[W, str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A model folder's chat template caught by transformers' sandbox was exit 3 (SecurityError)."""
    w, _ = work
    folder = w.root / "model"
    shutil.copytree(tiny_gpt2, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": template}))
    code, _, err = run_cli(w.run("--chat", "--no-cache", model=f"hf:{folder}"), capsys)
    line = assert_one_clear_line(code, err, ("chat template", "--no-chat"))
    assert "internal error" not in line


@pytest.mark.slow
def test_device_cuda_without_a_gpu_blames_the_device_not_the_folder(
        tiny_gpt2: Path, work: tuple[W, str], capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    w, run_id = work
    code, _, err = run_cli(w.run("--model-arg", "device=cuda", model=f"hf:{tiny_gpt2}"), capsys)
    line = assert_one_clear_line(code, err, ("device=cuda", "device=cpu"))
    assert "config.json" not in line
    assert_store_intact(w, run_id, capsys)


@pytest.mark.slow
def test_max_new_tokens_beyond_the_window_is_capped_not_an_index_error(
        tiny_gpt2: Path, work: tuple[W, str], capsys: pytest.CaptureFixture[str]) -> None:
    """``max_new_tokens: 100000000`` was an IndexError (exit 3) in the position embedding; a
    causal model now writes at most its window minus the prompt, as lm-eval does."""
    w, _ = work
    task = w.task(SUMMARY_TASK + "generation: {max_new_tokens: 100000000}\n", ROWS[:2])
    code, out, err = run_cli(w.run("--no-cache", task=task, model=f"hf:{tiny_gpt2}"), capsys)
    assert code == 0, err
    assert "cut at max_new_tokens" in out + err


@pytest.mark.slow
def test_bad_data_is_found_before_the_model_loads(tiny_gpt2: Path, work: tuple[W, str],
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With a real model, a bad row is still the error (the weights never load)."""
    import llmbench.models.hf.adapter as hf_adapter

    def never(*_: object, **__: object) -> None:
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(hf_adapter.HFAdapter, "prepare", never)
    w, run_id = work
    code, _, err = run_cli(w.run(task=w.task(TASK, with_rows(text=None)), model=f"hf:{tiny_gpt2}"), capsys)
    assert_one_clear_line(code, err, ("row 1 (id 'r1')",))
    assert_store_intact(w, run_id, capsys)
