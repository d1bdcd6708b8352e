"""Few-shot as MMLU does it: ``prompt.fewshot.sampler: first_n`` (the first k pool rows in pool
order, lm-eval's ``first_n``) and ``prompt.fewshot.match: FIELD`` (examples only from the pool
rows of the sample's own group), checked against lm-eval 0.4.13's own rendered MMLU text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmbench.tasks import TaskError, load_task, load_task_file
from llmbench.tasks.base import Task
from llmbench.tasks.yaml_task import YamlTask

ROOT = Path(__file__).resolve().parents[2]
LMEVAL = ROOT / "tests" / "fixtures" / "lmeval"


def _write(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _qa_task(tmp_path: Path, dev: list[dict[str, Any]], test: list[dict[str, Any]], **fewshot: Any) -> Task:
    spec = {"name": "fs", "kind": "qa",
            "dataset": {"path": "json", "data_files": {"test": _write(tmp_path / "test.jsonl", test),
                                                       "dev": _write(tmp_path / "dev.jsonl", dev)},
                        "split": "test", "fewshot_split": "dev"},
            "fields": {"id": "id", "input": "q", "target": "a"},
            "prompt": {"template": "Q: {{ input }}", "fewshot": fewshot}}
    path = tmp_path / "fs.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return load_task_file(path)


DEV = [{"id": f"d{i}", "q": f"dev {i}", "a": f"a{i}", "grp": "xy"[i % 2]} for i in range(8)]
TEST = [{"id": f"t{i}", "q": f"test {i}", "a": "?", "grp": "xy"[i % 2]} for i in range(6)]


def _shot_questions(prompt: str) -> list[str]:
    return [block[3:].rsplit(" ", 1)[0] for block in prompt.split("\n\n")[:-1]]  # "Q: dev 0 a0" -> "dev 0"


def test_first_n_gives_every_sample_the_first_k_pool_rows_in_order(tmp_path: Path) -> None:
    task = _qa_task(tmp_path, DEV, TEST, k=3, sampler="first_n")
    prompts = [r.prompt for r in task.build_requests(task.samples(), "generate")]
    assert all(isinstance(p, str) and _shot_questions(p) == ["dev 0", "dev 1", "dev 2"] for p in prompts)
    assert prompts[0] == "Q: dev 0 a0\n\nQ: dev 1 a1\n\nQ: dev 2 a2\n\nQ: test 0"
    # the default (random) draws per sample: the samples do not all share one set of shots
    rand = _qa_task(tmp_path, DEV, TEST, k=3)
    assert len({tuple(_shot_questions(str(r.prompt))) for r in rand.build_requests(rand.samples(), "generate")}) > 1


@pytest.mark.parametrize("sampler", ["first_n", "random"])
def test_match_draws_only_from_the_samples_own_group(tmp_path: Path, sampler: str) -> None:
    task = _qa_task(tmp_path, DEV, TEST, k=3, sampler=sampler, match="grp")
    group_of = {d["q"]: d["grp"] for d in DEV}
    for s, r in zip(task.samples(), task.build_requests(task.samples(), "generate"), strict=True):
        shots = _shot_questions(str(r.prompt))
        assert len(shots) == 3 and {group_of[q] for q in shots} == {s.extra["row"]["grp"]}
        if sampler == "first_n":  # the group's first three, in pool order
            assert shots == [d["q"] for d in DEV if d["grp"] == s.extra["row"]["grp"]][:3]


def test_prompts_are_byte_identical_across_calls_and_loads(tmp_path: Path) -> None:
    for sampler in ("first_n", "random"):
        a = _qa_task(tmp_path, DEV, TEST, k=2, sampler=sampler, match="grp")
        first = [r.prompt for r in a.build_requests(a.samples(), "generate")]
        again = [r.prompt for r in a.build_requests(a.samples(), "generate")]
        b = _qa_task(tmp_path, DEV, TEST, k=2, sampler=sampler, match="grp")
        assert first == again == [r.prompt for r in b.build_requests(b.samples(), "generate")]


def test_match_field_missing_or_group_too_small_is_one_line(tmp_path: Path) -> None:
    broken = [*DEV[:5], {"id": "d9", "q": "no group", "a": "a9"}]
    task = _qa_task(tmp_path, broken, TEST, k=1, match="grp")
    with pytest.raises(TaskError) as err:
        task.build_requests(task.samples(), "generate")
    assert "prompt.fewshot.match = 'grp' is not in few-shot row 'd9'" in str(err.value)
    assert "\n" not in str(err.value)
    few_y = [d for d in DEV if d["grp"] == "x"] + [DEV[1]]  # one 'y' row only
    task = _qa_task(tmp_path, few_y, TEST, k=2, match="grp")
    with pytest.raises(TaskError) as err:
        task.build_requests(task.samples(), "generate")
    assert "prompt.fewshot.k = 2 but only 1 row(s) of split 'dev' have grp = 'y'" in str(err.value)
    assert "\n" not in str(err.value)


def _own_split_task(tmp_path: Path, sampler: str) -> Task:
    """Few-shot examples drawn from the evaluated rows themselves (allowed explicitly)."""
    spec = {"name": "own", "kind": "qa",
            "dataset": {"path": "json", "data_files": {"test": _write(tmp_path / "own.jsonl", DEV)}, "split": "test"},
            "fields": {"id": "id", "input": "q", "target": "a"},
            "prompt": {"template": "Q: {{ input }}",
                       "fewshot": {"k": 3, "sampler": sampler, "split": "test", "allow_evaluated_rows": True}}}
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return load_task_file(path)


@pytest.mark.parametrize("sampler", ["first_n", "random"])
def test_a_perturbed_sample_is_never_shown_its_own_row(tmp_path: Path, sampler: str) -> None:
    """A perturbation changes the sample's input, never its shots: the sample's own row (with
    its answer) stays out of its examples as it does for the clean sample (the rule went by
    id and input, and the upper-cased input no longer matched its row)."""
    from llmbench.tasks.perturbed import variants

    task = _own_split_task(tmp_path, sampler)
    (upper,) = variants(task, ["case:mode=upper"])
    for clean, perturbed in zip(task.samples(), upper.samples(), strict=True):
        (c,), (p,) = task.build_requests([clean], "generate"), upper.build_requests([perturbed], "generate")
        assert clean.input not in _shot_questions(str(c.prompt))
        assert _shot_questions(str(p.prompt)) == _shot_questions(str(c.prompt))  # the same shots
        assert clean.input not in _shot_questions(str(p.prompt))
        assert str(p.prompt).endswith(f"Q: {clean.input.upper()}")


def test_a_row_of_another_split_with_the_samples_id_and_text_is_a_shot(tmp_path: Path) -> None:
    """Only the sample's own row is left out: a dev row that happens to have the same id and
    question (no id column, both numbered 0) is another row, and lm-eval shows it."""
    dev = [{"q": "same question", "a": "a0"}] + [{"q": f"dev {i}", "a": f"a{i}"} for i in range(1, 6)]
    test = [{"q": "same question", "a": "?"}, {"q": "other", "a": "?"}]
    spec = {"name": "dup", "kind": "qa",
            "dataset": {"path": "json", "data_files": {"test": _write(tmp_path / "t.jsonl", test),
                                                       "dev": _write(tmp_path / "d.jsonl", dev)},
                        "split": "test", "fewshot_split": "dev"},
            "fields": {"input": "q", "target": "a"},
            "prompt": {"template": "Q: {{ input }}", "fewshot": {"k": 5, "sampler": "first_n"}}}
    (tmp_path / "dup.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    task = load_task_file(tmp_path / "dup.yaml")
    prompts = [str(r.prompt) for r in task.build_requests(task.samples(), "generate")]
    assert [_shot_questions(p) for p in prompts] == [["same question", "dev 1", "dev 2", "dev 3", "dev 4"]] * 2


def test_match_groups_come_from_the_whole_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool's row cap applies per group: a group whose rows come after the first
    ``_FEWSHOT_POOL`` rows of the split is found (it was refused as 'only 0 row(s)')."""
    import llmbench.tasks.prompting as prompting

    monkeypatch.setattr(prompting, "_FEWSHOT_POOL", 4)
    dev = [{"id": f"x{i}", "q": f"x {i}", "a": "a", "grp": "x"} for i in range(6)]
    dev += [{"id": f"y{i}", "q": f"y {i}", "a": "a", "grp": "y"} for i in range(3)]
    task = _qa_task(tmp_path, dev, TEST, k=2, sampler="first_n", match="grp")
    prompts = {s.extra["row"]["grp"]: str(r.prompt)
               for s, r in zip(task.samples(), task.build_requests(task.samples(), "generate"), strict=True)}
    assert _shot_questions(prompts["x"]) == ["x 0", "x 1"] and _shot_questions(prompts["y"]) == ["y 0", "y 1"]


def test_new_keys_enter_the_fingerprint_only_when_set(tmp_path: Path) -> None:
    # fingerprints computed before sampler/match existed (commit 57f9c60)
    assert load_task("mmlu").fingerprint() == "867f1ac8665b6f07"
    assert load_task("rotten_tomatoes").fingerprint() == "399303117834e5ac"
    plain = _qa_task(tmp_path, DEV, TEST, k=2)
    assert "sampler" not in plain.config_fingerprint()["spec"]["prompt"]["fewshot"]
    prints = {plain.fingerprint(), _qa_task(tmp_path, DEV, TEST, k=2, sampler="first_n").fingerprint(),
              _qa_task(tmp_path, DEV, TEST, k=2, match="grp").fingerprint()}
    assert len(prints) == 3
    assert _qa_task(tmp_path, DEV, TEST, k=2, sampler="random").fingerprint() == plain.fingerprint()


# -- 5-shot MMLU as lm-eval 0.4.13 renders it --------------------------------------------------

def _lmeval_rendered() -> tuple[str, dict[str, str]]:
    """lm-eval's own output for mmlu_anatomy (0-shot): its description and, per question, the
    text its doc_to_text rendered (arg_0 without the description)."""
    cfg = yaml.safe_load((LMEVAL / "tasks" / "mmlu_anatomy" / "mmlu_anatomy.yaml").read_text(encoding="utf-8"))
    description = cfg["description"]
    (samples,) = (LMEVAL / "lmeval_output" / "tiny-gpt2").glob("samples_mmlu_anatomy_*.jsonl")
    texts = {}
    for line in samples.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        arg = record["arguments"]["gen_args_0"]["arg_0"]
        assert arg.startswith(description)
        texts[record["doc"]["question"]] = arg[len(description):]
    return description, texts


def _catalog_5shot(tmp_path: Path, dev: list[dict[str, Any]], test: list[dict[str, Any]]) -> Task:
    raw = yaml.safe_load((ROOT / "llmbench" / "catalog" / "mmlu_5shot.yaml").read_text(encoding="utf-8"))
    raw["dataset"] = {"path": "json", "split": "test", "fewshot_split": "dev",
                      "data_files": {"test": _write(tmp_path / "test.jsonl", test),
                                     "dev": _write(tmp_path / "dev.jsonl", dev)}}
    path = tmp_path / "mmlu_5shot.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return load_task_file(path)


def test_catalog_mmlu_5shot_renders_lm_evals_5_shot_prompt(tmp_path: Path) -> None:
    """The expected prompt is put together from lm-eval 0.4.13's own rendered strings by its
    ``fewshot_context``: description + the first_n shots (doc_to_text + target_delimiter " " +
    the letter) joined by fewshot_delimiter "\\n\\n", + "\\n\\n" + doc_to_text(question)."""
    description, lm_text = _lmeval_rendered()
    assert description == "The following are multiple choice questions (with answers) about anatomy.\n\n"
    rows = [json.loads(line) for line in (LMEVAL / "rows" / "mmlu.jsonl").read_text(encoding="utf-8").splitlines()]
    anatomy = [{**r, "subject": "anatomy"} for r in rows]  # lm-eval ran them all as mmlu_anatomy
    other = [{**r, "subject": "virology", "question": r["question"] + " (v)"} for r in rows]
    dev = [x for pair in zip(other, anatomy, strict=True) for x in pair]  # subjects interleaved in dev
    task = _catalog_5shot(tmp_path, dev, [anatomy[5], other[0]])
    sample = task.samples()[0]
    (request,) = task.build_requests([sample], "loglikelihood")
    shots = [lm_text[r["question"]] + " " + "ABCD"[r["answer"]] for r in anatomy[:5]]
    assert request.prompt == description + "\n\n".join(shots) + "\n\n" + lm_text[anatomy[5]["question"]]
    assert request.continuations == (" A", " B", " C", " D")
    virology = task.build_requests(task.samples()[1:], "loglikelihood")[0].prompt
    assert isinstance(virology, str) and virology.startswith("The following are multiple choice questions "
                                                             "(with answers) about virology.\n\n")
    assert "(v)\nA." in virology.split("\n\n")[1] and virology.count("Answer: ") == 5


def test_lmeval_mmlu_with_num_fewshot_5_translates_to_first_n(tmp_path: Path) -> None:
    """lm-eval's own mmlu_anatomy files (fewshot_config: sampler: first_n), run 5-shot: the
    translated task gives the same prompt as the catalog's mmlu_5shot, built as above."""
    import shutil

    description, lm_text = _lmeval_rendered()
    folder = tmp_path / "mmlu_anatomy"
    shutil.copytree(LMEVAL / "tasks" / "mmlu_anatomy", folder)
    cfg = folder / "mmlu_anatomy.yaml"
    rows = [json.loads(line) for line in (LMEVAL / "rows" / "mmlu.jsonl").read_text(encoding="utf-8").splitlines()]
    data = {"test": _write(tmp_path / "test.jsonl", rows[5:]), "dev": _write(tmp_path / "dev.jsonl", rows[:5])}
    cfg.write_text(cfg.read_text(encoding="utf-8") + '"num_fewshot": 5\n"dataset_kwargs": {"data_files": '
                   + json.dumps(data) + "}\n", encoding="utf-8")
    task = load_task(f"lm-eval:{cfg}")
    assert isinstance(task, YamlTask) and task.spec.prompt.fewshot.sampler == "first_n"
    (request,) = task.build_requests(task.samples(), "loglikelihood")
    shots = [lm_text[r["question"]] + " " + "ABCD"[r["answer"]] for r in rows[:5]]
    assert request.prompt == description + "\n\n".join(shots) + "\n\n" + lm_text[rows[5]["question"]]


def test_an_instruction_with_a_syntax_error_is_said_once(tmp_path: Path) -> None:
    path = tmp_path / "i.yaml"
    path.write_text(yaml.safe_dump({
        "name": "instr", "kind": "qa", "dataset": {"path": "json", "split": "test",
                                                  "data_files": {"test": _write(tmp_path / "t.jsonl", TEST)}},
        "fields": {"id": "id", "input": "q", "target": "a"},
        "prompt": {"template": "Q: {{ input }}", "instruction": "About {{ row.grp "}}), encoding="utf-8")
    task = load_task_file(path)
    with pytest.raises(TaskError) as err:
        task.build_requests(task.samples(), "generate")
    message = str(err.value)
    assert "prompt.instruction template error" in message and "\n" not in message
    assert "TaskError" not in message and message.endswith("— fix the template's syntax")  # not wrapped again
