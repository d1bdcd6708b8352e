"""The lm-eval task translator: the subset translated, everything else refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmbench.tasks import load_task
from llmbench.tasks.lmeval import LmEvalError, translate
from tests.cli_inprocess import run_cli

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "lmeval"
ARC_ROWS = FIX / "rows" / "arc.jsonl"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_function_is_refused_in_one_line_and_never_imported(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "imported.txt"
    _write(tmp_path / "utils.py", f"open({str(marker)!r}, 'w').write('ran')\ndef process_docs(d):\n    return d\n")
    task = _write(tmp_path / "t.yaml", "task: t\ndataset_path: json\ndataset_kwargs: {data_files: rows.jsonl}\n"
                  "test_split: test\noutput_type: multiple_choice\nprocess_docs: !function utils.process_docs\n"
                  "doc_to_text: question\ndoc_to_target: answer\ndoc_to_choice: [a, b]\n")
    code, _out, err = run_cli(["run", "-t", f"lm-eval:{task}", "-m", "baseline:majority",
                              "--store", str(tmp_path / "db.sqlite")], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "process_docs" in err and "!function utils.process_docs" in err and "Python task" in err
    assert not marker.exists()  # the module named by the data file was never imported


def test_hellaswag_function_is_recognised_by_its_source_only(tmp_path: Path) -> None:
    src = FIX / "tasks" / "hellaswag"
    for name in ("hellaswag.yaml", "utils.py"):
        (tmp_path / name).write_text((src / name).read_text(encoding="utf-8"), encoding="utf-8")
    assert translate(tmp_path / "hellaswag.yaml")["preprocess"] == "hellaswag"
    # the same name with other code is refused
    utils = tmp_path / "utils.py"
    utils.write_text(utils.read_text(encoding="utf-8").replace('" [title]"', '" [header]"'), encoding="utf-8")
    with pytest.raises(LmEvalError, match=r"process_docs: !function utils\.process_docs"):
        translate(tmp_path / "hellaswag.yaml")


@pytest.mark.parametrize(("extra", "key"), [
    ("output_type: loglikelihood_multiple\n", "output_type"),
    ("output_type: generate_until\nfilter_list: [{name: x, filter: [{function: majority_vote}, "
     "{function: take_first}]}]\n", "filter_list[0].filter[0]"),
    ("output_type: generate_until\nmetric_list: [{metric: bleu}]\nfilter_list: [{name: x, filter: [{function: "
     "take_first}]}, {name: y, filter: [{function: take_first}]}]\n", "filter_list[1]"),
    ("output_type: generate_until\nfilter_list: [{name: x, filter: [{function: take_first}]}, "
     "{name: x, filter: [{function: take_first}]}]\n", "filter_list[1].name"),
    ("output_type: generate_until\nfilter_list: [{filter: [{function: take_first}]}]\n", "filter_list[0].name"),
    # examples from the evaluated split: lm-eval leaves the document out only for its test_split
    # with the default sampler (first_n shows a document its own answer)
    ("num_fewshot: 2\nfewshot_split: test\nfewshot_config: {sampler: first_n}\n", "fewshot_split"),
    ("test_split: null\nvalidation_split: validation\nnum_fewshot: 2\n", "fewshot_split"),
    # lm-eval's own pool and the examples' own format: translated without them, the examples differ
    ("training_split: train\nnum_fewshot: 1\nfewshot_config: {sampler: first_n, samples: [{q: a}]}\n",
     "fewshot_config.samples"),
    ("training_split: train\nnum_fewshot: 1\nfewshot_config: {doc_to_text: 'Q: {{q}}', split: null, "
     "doc_to_target: a, fewshot_delimiter: \"\\n\\n\"}\n", "fewshot_config.doc_to_text"),
    ("training_split: train\nnum_fewshot: 1\nfewshot_config: [first_n]\n", "fewshot_config"),
    ("training_split: train\nnum_fewshot: 1\nfewshot_config: {split: validation}\n", "fewshot_config.split"),
    ("output_type: generate_until\nfilter_list: [{name: x, filter: [{function: regex, regex_pattern: '('}, "
     "{function: take_first}]}]\n", "filter_list[0].filter[0].regex_pattern"),
    ("output_type: loglikelihood\nnum_fewshot: 2\n", "target_delimiter"),
    ("filter_list: [{name: x, filter: [{function: regex, regex_pattern: a}, {function: take_first}]}]\n",
     "filter_list[0].filter[0]"),
    ("process_results: foo\n", "process_results"),
    ("metric_list: [{metric: mcc}]\n", "metric_list[0].metric"),
    ("dataset_kwargs: {trust_remote_code: true}\n", "dataset_kwargs.trust_remote_code"),
    ("doc_to_target: '{{ answers[0] | upper }}'\n", "doc_to_target"),
])
def test_outside_the_subset_names_the_key(tmp_path: Path, extra: str, key: str) -> None:
    base = {"task": "t", "dataset_path": "json", "test_split": "test", "output_type": "multiple_choice",
            "doc_to_text": "q", "doc_to_target": "a", "doc_to_choice": ["x", "y"]}
    text = "".join(f"{k}: {json.dumps(v)}\n" for k, v in base.items() if k not in yaml.safe_load(extra)) + extra
    with pytest.raises(LmEvalError) as err:
        translate(_write(tmp_path / "t.yaml", text))
    assert f": {key}: " in str(err.value) and "\n" not in str(err.value)


def test_include_chain_and_convert_give_the_same_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = f"lm-eval:{FIX / 'tasks' / 'arc_challenge' / 'arc_challenge.yaml'}"
    code, _out, err = run_cli(["tasks", "convert", ref, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    converted = tmp_path / "arc_challenge.yaml"
    spec = yaml.safe_load(converted.read_text(encoding="utf-8"))
    assert spec["dataset"]["name"] == "ARC-Challenge"  # from arc_challenge.yaml, over the include
    assert spec["choices"] == {"field": "choices.text", "gold": "label", "labels_field": "choices.label"}
    native = load_task(str(converted), data=str(ARC_ROWS))
    translated = load_task(ref, data=str(ARC_ROWS))
    a, b = native.samples(), translated.samples()
    assert [r.prompt for r in native.build_requests(a, "loglikelihood")] == \
        [r.prompt for r in translated.build_requests(b, "loglikelihood")]
    assert [s.gold for s in a] == [s.gold for s in b] == [2, 1, 3, 0, 1]  # answerKey among choices.label, row by row


def test_a_folder_converts_every_task_and_run_asks_for_one(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["tasks", "convert", f"lm-eval:{FIX / 'tasks'}"], capsys)
    assert code == 0 and out.count("llmbench tasks convert") == 17  # + the included arc_easy, pile_arxiv
    with pytest.raises(LmEvalError, match="holds 17 tasks"):
        load_task(f"lm-eval:{FIX / 'tasks'}")


def test_tasks_without_subcommand_still_lists(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["tasks"], capsys)
    assert code == 0 and "arc_easy" in out


def test_run_a_folder_runs_every_task(tmp_path: Path, tiny_gpt2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "tasks"
    folder.mkdir()
    for name, src, rows in (("boolq", "boolq/default.yaml", "boolq.jsonl"), ("piqa", "piqa/piqa.yaml", "piqa.jsonl")):
        local = {"dataset_path": "json", "dataset_kwargs": {"data_files": {"validation": str(FIX / "rows" / rows)}}}
        text = (FIX / "tasks" / src).read_text(encoding="utf-8").replace("dataset_path:", "original_path:")
        text = "\n".join(line for line in text.splitlines() if not line.startswith(("original_path", "dataset_name")))
        _write(folder / f"{name}.yaml", text + "\n" + yaml.safe_dump(local))
    db = tmp_path / "db.sqlite"
    code, _out, err = run_cli(["run", "-t", f"lm-eval:{folder}", "-m", f"hf:{tiny_gpt2}", "--store", str(db),
                              "--no-cache"], capsys)
    assert code == 0, err
    from llmbench.store import ResultStore

    assert sorted(r.task for r in ResultStore(str(db)).runs()) == ["boolq", "piqa"]


def test_loops_and_jinja_globals_render_as_in_lmeval(tmp_path: Path) -> None:
    rows = _write(tmp_path / "rows.jsonl", json.dumps({"q": "Pick", "opts": ["x", "y"], "a": 1}) + "\n")
    task_file = _write(tmp_path / "t.yaml", yaml.safe_dump({
        "task": "t", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(rows)}},
        "test_split": "test",
        "output_type": "multiple_choice", "doc_to_target": "a", "doc_to_choice": "opts",
        "doc_to_text": "{{q}}:{% for i in range(opts|length) %} {{i}}={{opts[i]}}{% endfor %}\nAnswer:",
    }))
    task = load_task(f"lm-eval:{task_file}")
    (sample,) = task.samples()
    (request,) = task.build_requests([sample], "loglikelihood")
    assert request.prompt == "Pick: 0=x 1=y\nAnswer:"  # printed by lm-eval 0.4.13's apply_template
    assert request.continuations == (" x", " y")


def test_repeats_is_refused_with_the_run_option_to_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (FIX / "tasks" / "gsm8k_style" / "gsm8k_style.yaml").read_text(encoding="utf-8")
    task = _write(tmp_path / "t.yaml", text.replace("repeats: 1", "repeats: 4").replace(
        "../../rows/gsm8k_style.jsonl", str(FIX / "rows" / "gsm8k_style.jsonl")))
    code, _out, err = run_cli(["run", "-t", f"lm-eval:{task}", "-m", "baseline:majority",
                              "--store", str(tmp_path / "db.sqlite")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert ": repeats: " in err and "llmbench run --repeats 4" in err


def test_convert_writes_the_new_kinds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lambada_openai becomes a ``continuation`` task, gsm8k_style a ``qa`` task with ``extract``;
    the converted files build the same requests as the translated ones."""
    for name, rows in (("lambada_openai", "lambada.jsonl"), ("gsm8k_style", "gsm8k_style.jsonl")):
        ref = f"lm-eval:{FIX / 'tasks' / name / (name + '.yaml')}"
        code, _out, err = run_cli(["tasks", "convert", ref, "--out", str(tmp_path)], capsys)
        assert code == 0, err
        spec = yaml.safe_load((tmp_path / f"{name}.yaml").read_text(encoding="utf-8"))
        native, translated = load_task(str(tmp_path / f"{name}.yaml"), data=str(FIX / "rows" / rows)), \
            load_task(ref, data=str(FIX / "rows" / rows))
        mode = native.scoring[0]
        assert native.build_requests(native.samples(), mode) == translated.build_requests(translated.samples(), mode)
        if name == "lambada_openai":
            assert spec["kind"] == "continuation" and spec["scoring"] == ["loglikelihood"]
            assert spec["metrics"] == ["continuation"] and spec["primary_metric"] == "perplexity"
        else:
            assert spec["kind"] == "qa" and spec["extract"] == {"regex": "(R+)|(:{3,})", "group_select": -1,
                                                                "fallback": "[invalid]"}


def test_ter_in_metric_list_translates(tmp_path: Path) -> None:
    base = {"task": "t", "dataset_path": "json", "test_split": "test", "output_type": "generate_until",
            "doc_to_text": "{{src}}", "doc_to_target": "tgt",
            "metric_list": [{"metric": "bleu"}, {"metric": "ter", "higher_is_better": False}]}
    out = translate(_write(tmp_path / "t.yaml", yaml.safe_dump(base)))
    assert out["metrics"] == ["bleu", "ter"] and out["primary_metric"] == "bleu"


def test_fewshot_from_the_evaluated_split_is_translated(tmp_path: Path) -> None:
    """lm-eval's default sampler on its test split draws k + 1 and leaves the document out:
    llmbench's sequential sampler on one split (the fixture test checks every prompt)."""
    spec = translate(FIX / "tasks" / "arc_easy_selfshot" / "arc_easy_selfshot.yaml")
    assert spec["dataset"]["fewshot_split"] == spec["dataset"]["split"] == "test"
    assert spec["prompt"]["fewshot"] == {"k": 2, "separator": "\n\n", "sampler": "sequential",
                                         "allow_evaluated_rows": True}
    other = translate(FIX / "tasks" / "arc_easy_3shot" / "arc_easy_3shot.yaml")
    assert "allow_evaluated_rows" not in other["prompt"]["fewshot"]  # train examples: nothing to allow


def test_real_gsm8k_runs_from_the_command_line(tmp_path: Path, tiny_gpt2: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """lm-eval's own gsm8k.yaml (two filter pipelines, exact_match with regexes_to_ignore and
    ignore_punctuation: false), its Hub dataset swapped for local rows: one value per pipeline."""
    local = {"dataset_path": "json", "dataset_kwargs": {"data_files": {
        "train": str(FIX / "rows" / "gsm8k_train.jsonl"), "test": str(FIX / "rows" / "gsm8k_test.jsonl")}}}
    text = (FIX / "tasks" / "gsm8k" / "gsm8k.yaml").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("dataset_path", "dataset_name")))
    task = _write(tmp_path / "gsm8k.yaml", text + "\n" + yaml.safe_dump(local))
    db = tmp_path / "db.sqlite"
    code, _out, err = run_cli(["run", "-t", f"lm-eval:{task}", "-m", f"hf:{tiny_gpt2}", "--store", str(db),
                              "--no-cache", "--resamples", "0"], capsys)
    assert code == 0, err
    from llmbench.store import ResultStore

    store = ResultStore(str(db))
    (run,) = store.runs()
    assert run.primary_metric == "exact_match,strict-match"
    assert {m.value.name for m in store.metrics(run.id)} == {"exact_match,strict-match",
                                                              "exact_match,flexible-extract"}
