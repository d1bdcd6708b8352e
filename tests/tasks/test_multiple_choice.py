"""Multiple choice with per-row choices: the catalog tasks on local rows in the Hub's format,
gold answers as index / text / label, strict answer parsing and the requests they build."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from llmbench.models.base import ModelAdapter
from llmbench.runner import ModelEntry, RunConfig, evaluate
from llmbench.store import ResultStore
from llmbench.tasks import TaskError, load_task
from llmbench.tasks.multiple_choice import parse_choice
from llmbench.types import Request, RequestKind, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "multiple_choice"


def test_mmlu_letters_subject_prompt_and_gold() -> None:
    task = load_task("mmlu", data=str(FIXTURES / "mmlu_rows.jsonl"))
    samples = task.samples()
    assert len(samples) == 6
    first = samples[0]
    assert first.choices == ("A", "B", "C", "D") and first.gold == 1 and first.references == ("B",)
    assert first.extra["slice"] == "elementary_mathematics"
    (request,) = task.build_requests([samples[2]], "loglikelihood")
    # lm-eval 0.4.13's mmlu prompt: description with the subject, the stripped question, lettered options
    assert request.prompt == ("The following are multiple choice questions (with answers) about abstract algebra."
                              "\n\nFind the degree of the field extension Q(sqrt(2)) over Q.\nA. 0\nB. 2\nC. 1\nD. 3"
                              "\nAnswer:")
    assert request.continuations == (" A", " B", " C", " D")


def test_arc_gold_by_label_letters_and_digits() -> None:
    task = load_task("arc_easy", data=str(FIXTURES / "arc_rows.jsonl"))
    samples = {s.id: s for s in task.samples()}
    assert samples["Mercury_7175875"].gold == 2  # answerKey C among A-D
    assert samples["NYSEDREGENTS_2015_4_8"].gold == 3  # answerKey "4" among labels "1".."4"
    assert samples["NYSEDREGENTS_2015_4_8"].references == ("sound",)
    three = samples["MCAS_2000_4_6"]
    assert three.choices == ("a rock", "a tree", "water")  # rows have their own number of choices
    (request,) = task.build_requests([three], "loglikelihood")
    assert request.prompt == "Question: Which of these is a living thing?\nAnswer:"
    assert request.continuations == (" a rock", " a tree", " water")
    assert load_task("arc_challenge", data=str(FIXTURES / "arc_rows.jsonl")).primary_metric == "acc_norm"


def test_hellaswag_preprocessing_as_lm_eval() -> None:
    task = load_task("hellaswag", data=str(FIXTURES / "hellaswag_rows.jsonl"))
    samples = task.samples()
    assert samples[0].input == "Roof shingle removal: A man is sitting on a roof. He"
    assert samples[0].gold == 3 and samples[0].choices[3] == "starts pulling up roofing on a roof."
    # WikiHow rows: " [title]" becomes ". ", other [brackets] go, double spaces become one
    assert samples[2].input == ("Home and Garden: How to clean a stovetop. Remove the grates. "
                                "Lift the grates off the stove And")
    assert samples[2].choices[:2] == ("put them in the sink. Fill the sink with hot water.",
                                      "throw them away. Buy new grates.")
    assert samples[3].input == "Personal Care and Style: How to tie a tie. Drape the tie around your neck."
    # lm-eval strips before it drops "[step]", so this ending keeps a leading space (values
    # printed by lm-eval 0.4.13's own hellaswag/utils.py on these rows)
    assert samples[3].choices[0] == " The wide end should hang lower."


def _task(tmp_path: Path, rows: list[dict], choices: str, extra: str = "") -> object:
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "t.yaml").write_text(f"name: t\nkind: multiple_choice\ndataset: {{path: rows.jsonl}}\n"
                                     f"fields: {{input: q, target: a}}\nchoices: {choices}\n{extra}")
    return load_task(str(tmp_path / "t.yaml"))


def test_gold_as_text_and_choice_templates(tmp_path: Path) -> None:
    rows = [{"q": "pick", "sol1": "left", "sol2": "right", "a": "right"}]
    task = _task(tmp_path, rows, '{templates: ["{{ row.sol1 }}", "{{ row.sol2 }}"], gold: text}')
    (sample,) = task.samples()  # type: ignore[attr-defined]
    assert sample.choices == ("left", "right") and sample.gold == 1


def test_duplicate_choice_texts_keep_the_gold_index(tmp_path: Path) -> None:
    task = _task(tmp_path, [{"q": "x", "c": ["same", "same"], "a": "1"}], "{field: c}")
    (sample,) = task.samples()  # type: ignore[attr-defined]
    assert sample.gold == 1  # a digit string is an index


@pytest.mark.parametrize(("row", "choices", "message"), [
    ({"q": "x", "c": ["a", "b"], "a": 2}, "{field: c}", "not an index into its 2 choices"),
    ({"q": "x", "c": "ab", "a": 0}, "{field: c}", "not a list of at least two choices"),
    ({"q": "x", "c": ["a", "b"], "a": "z"}, "{field: c, gold: text}", "not one of its choices"),
    ({"q": "x", "c": ["a", "b"], "a": "C"}, "{field: c, gold: label}", "not one of the labels"),
])
def test_bad_rows_are_one_line_errors(tmp_path: Path, row: dict, choices: str, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        _task(tmp_path, [row], choices).samples()  # type: ignore[attr-defined]


def test_spec_requires_choices_for_multiple_choice(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("name: t\nkind: multiple_choice\ndataset: {path: r.jsonl}\n"
                                     "fields: {input: q, target: a}\n")
    with pytest.raises(TaskError, match="choices: a multiple_choice task must say where"):
        load_task(str(tmp_path / "t.yaml"))
    (tmp_path / "t.yaml").write_text("name: t\nkind: multiple_choice\ndataset: {path: r.jsonl}\n"
                                     "fields: {input: q, target: a}\nchoices: {field: c, templates: [a, b]}\n")
    with pytest.raises(TaskError, match="exactly one of 'field'"):
        load_task(str(tmp_path / "t.yaml"))


@pytest.mark.parametrize(("answer", "expected"), [
    ("B", 1), ("(C)", 2), ("D. because", 3), ("b", None), ("E", None),  # letters within the choices only
    ("a dog", 0), ("A dog", 0),  # a choice's text wins over the letter it starts with
    ("the cat", 1), ("I think a bird", 2), ("maybe", None), ("", None),
])
def test_parse_choice_is_strict(answer: str, expected: int | None) -> None:
    assert parse_choice(answer, ("a dog", "the cat", "a bird", "fish")) == expected


def test_predict_by_loglikelihood_and_generation() -> None:
    task = load_task("arc_easy", data=str(FIXTURES / "arc_rows.jsonl"))
    sample = task.samples()[4]
    assert task.predict(sample, Response(logprobs=(-3.0, -1.0, -2.0)), "loglikelihood") == "a tree"
    assert task.predict(sample, Response(text=" C"), "generate") == "water"
    assert task.predict(sample, Response(text="no idea"), "generate") == ""


class _Answers(ModelAdapter):
    """Answers every generate request with the same text."""

    name = "fixed"
    supports: frozenset[RequestKind] = frozenset({"generate"})

    def __init__(self, text: str) -> None:
        self.text = text

    def identity(self) -> dict[str, str]:
        return {"backend": "fixed", "text": self.text}

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for i, _ in enumerate(requests):
            yield i, Response(text=self.text)


def test_mmlu_by_generation_end_to_end(tmp_path: Path) -> None:
    task = load_task("mmlu", data=str(FIXTURES / "mmlu_rows.jsonl"))
    result = evaluate(task, _Answers("C"), ModelEntry(spec="baseline:fixed"), RunConfig(n_resamples=20),
                      store=ResultStore(tmp_path / "db.sqlite"), cache=None)
    values = {m.name: m.value for m in result.metrics}
    assert result.status == "complete" and result.scoring_mode == "generate"
    # answers 1, 2, 1, 2, 0, 2: gold C in 3 of 6 rows; per subject: elementary_mathematics 1/2,
    # abstract_algebra 0/1, high_school_biology 1/2, high_school_physics 1/1 -> macro 2/4
    assert values["acc"] == pytest.approx(3 / 6)
    assert values["acc_macro"] == pytest.approx((1 / 2 + 0 + 1 / 2 + 1) / 4)


def test_loglikelihood_end_to_end_with_a_real_model(tiny_gpt2: Path, tmp_path: Path) -> None:
    from llmbench.models.hf.adapter import HFAdapter, HFConfig

    task = load_task("arc_easy", data=str(FIXTURES / "arc_rows.jsonl"))
    store = ResultStore(tmp_path / "db.sqlite")
    result = evaluate(task, HFAdapter(HFConfig(path=str(tiny_gpt2))), ModelEntry(spec=f"hf:{tiny_gpt2}"),
                      RunConfig(n_resamples=20),
                      store=store, cache=None)
    assert result.scoring_mode == "loglikelihood" and result.status == "complete"
    records = store.samples(result.run_id)
    per_sample = [r.stats["acc"]["acc_norm"] for r in records]
    values = {m.name: m.value for m in result.metrics}
    assert values["acc_norm"] == pytest.approx(sum(per_sample) / len(per_sample))


# name -> (Hub id, config, eval split, fixture rows)
MC_CATALOG = {
    "mmlu": ("cais/mmlu", "all", "test", "mmlu_rows.jsonl"),
    "arc_easy": ("allenai/ai2_arc", "ARC-Easy", "test", "arc_rows.jsonl"),
    "arc_challenge": ("allenai/ai2_arc", "ARC-Challenge", "test", "arc_rows.jsonl"),
    "hellaswag": ("Rowan/hellaswag", None, "validation", "hellaswag_rows.jsonl"),
}


@pytest.mark.parametrize("name", sorted(MC_CATALOG))
def test_catalog_file_names_its_hub_source_and_licence(name: str) -> None:
    import yaml

    hub, config, split, _ = MC_CATALOG[name]
    path = Path(__file__).resolve().parents[2] / "llmbench" / "catalog" / f"{name}.yaml"
    text = path.read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    assert text.startswith("# ") and hub in text.splitlines()[0] and "licence" in text.splitlines()[0].lower()
    assert (raw["name"], raw["kind"], raw["tags"]) == (name, "multiple_choice", ["catalog", "multiple_choice"])
    assert (raw["dataset"]["path"], raw["dataset"].get("name"), raw["dataset"]["split"]) == (hub, config, split)


@pytest.mark.parametrize("name", sorted(MC_CATALOG))
def test_catalog_requests_for_every_accepted_mode(name: str) -> None:
    task = load_task(name, data=str(FIXTURES / MC_CATALOG[name][3]))
    samples = task.samples()
    assert task.scoring[0] == "loglikelihood"
    for mode in task.scoring:
        for s, r in zip(samples, task.build_requests(samples, mode), strict=True):
            assert r.prompt == task.prompt_for(s, chat=False) and r.kind == mode
            if mode == "loglikelihood":  # every choice of the row, after lm-eval's " " delimiter
                assert r.continuations == tuple(f" {c}" for c in s.choices or ())
            else:
                assert r.continuations is None
