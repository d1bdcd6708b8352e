"""The standard task catalog (llmbench/catalog/<hub dataset>.yaml), tested offline on local rows.

Each catalog file points at a Hugging Face Hub dataset; here every split is pointed at a
few rows under tests/fixtures/catalog/ written in that dataset's exact Hub layout
(``load_task(file, data=rows)`` is what ``llmbench run --data FILE`` does).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmbench.models.base import ModelAdapter
from llmbench.models.baselines import BaselineAdapter, first_sentence
from llmbench.runner import ModelEntry, RunConfig, evaluate
from llmbench.store import ResultStore
from llmbench.tasks import Task, TaskError, load_task
from llmbench.types import ChatMessage, Response

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "llmbench" / "catalog"
FIXTURES = ROOT / "tests" / "fixtures" / "catalog"

# name -> (kind, Hub id, config, revision, eval split)
CATALOG: dict[str, tuple[str, str, str | None, str | None, str]] = {
    "sst2": ("classification", "stanfordnlp/sst2", None, None, "validation"),
    "ag_news": ("classification", "fancyzhx/ag_news", None, None, "test"),
    "wmt16_de_en": ("translation", "wmt/wmt16", "de-en", None, "test"),
    "squad": ("qa", "rajpurkar/squad", None, None, "validation"),
    "squad_v2": ("qa", "rajpurkar/squad_v2", None, None, "validation"),
    "xsum": ("summarization", "EdinburghNLP/xsum", None, "refs/convert/parquet", "test"),
    "cnn_dailymail": ("summarization", "abisee/cnn_dailymail", "3.0.0", None, "test"),
    "samsum": ("summarization", "knkarthick/samsum", None, None, "test"),
}


def catalog_task(name: str, rows: str | None = None) -> Task:
    return load_task(str(TASKS / f"{name}.yaml"), data=str(FIXTURES / (rows or f"{name}.jsonl")))


def jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()]


# -- every file: Hub source, version, tags, licence line, valid requests ------------------------

@pytest.mark.parametrize("name", sorted(CATALOG))
def test_file_names_its_hub_source_and_licence(name: str) -> None:
    kind, hub, config, revision, split = CATALOG[name]
    text = (TASKS / f"{name}.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    first = text.splitlines()[0]
    assert first.startswith("# ") and hub in first and "licence" in first.lower()
    assert raw["name"] == name and raw["kind"] == kind and raw["version"] == 1
    assert raw["tags"] == ["catalog", kind]
    ds = raw["dataset"]
    assert (ds["path"], ds.get("name"), ds.get("revision"), ds["split"]) == (hub, config, revision, split)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_requests_build_for_every_accepted_mode(name: str) -> None:
    task = catalog_task(name)
    samples = task.samples()
    assert 3 <= len(samples) <= 6
    for mode in task.scoring:
        requests = task.build_requests(samples, mode)
        assert [r.sample_id for r in requests] == [s.id for s in samples]
        assert all(r.kind == mode and r.config == task.generation for r in requests)
        for s, r in zip(samples, requests, strict=True):
            if mode == "classify":
                assert (r.prompt, r.input, r.continuations) == (task.prompt_for(s, chat=False), s.input, task.labels)
            elif mode == "loglikelihood":
                assert task.labels is not None
                assert r.prompt == task.prompt_for(s, chat=False)
                assert r.continuations == tuple(f" {label}" for label in task.labels)
            else:
                assert r.prompt == task.prompt_for(s, chat=False) and r.continuations is None
                assert r.input == s.input and r.context == s.context
        chat = task.build_requests(samples[:1], mode, chat=True)[0]
        assert chat.prompt == (ChatMessage(role="user", content=task.prompt_for(samples[0], chat=False)),)


def test_hub_task_offline_fails_in_one_line_pointing_at_data() -> None:
    if "1" not in {os.environ.get("HF_DATASETS_OFFLINE"), os.environ.get("HF_HUB_OFFLINE")}:
        pytest.skip("only meaningful offline (tests/conftest.py sets HF_*_OFFLINE=1)")
    task = load_task(str(TASKS / "sst2.yaml"))
    with pytest.raises(TaskError) as err:
        task.samples()
    msg = str(err.value)
    assert "\n" not in msg
    assert "could not load Hub dataset 'stanfordnlp/sst2' split 'validation'" in msg and "--data" in msg


# -- classification ------------------------------------------------------------------------------

def test_sst2_samples_prompt_and_modes() -> None:
    task = catalog_task("sst2")
    samples = task.samples()
    assert [s.id for s in samples] == ["0", "1", "2", "3", "4"]  # the Hub's `idx`
    assert [s.references for s in samples] == [("positive",), ("negative",), ("positive",), ("negative",),
                                               ("positive",)]
    assert samples[0].input == "a warm , funny and beautifully acted film . "  # raw, trailing space kept
    assert samples[0].choices == ("negative", "positive")
    assert (task.eval_split, task.train_split) == ("validation", "train")
    assert task.prompt_for(samples[0], chat=False) == (
        "a warm , funny and beautifully acted film .\nQuestion: Is this sentence positive or negative?\nAnswer:"
    )
    (ll,) = task.build_requests(samples[:1], "loglikelihood")
    assert ll.continuations == (" negative", " positive")
    (cl,) = task.build_requests(samples[:1], "classify")
    assert cl.input == samples[0].input and cl.continuations == ("negative", "positive")
    (gen,) = task.build_requests(samples[:1], "generate")
    assert (gen.config.max_new_tokens, gen.config.stop) == (8, ("\n",))
    assert task.predict(samples[0], Response(text=" Positive."), "generate") == "positive"
    assert task.predict(samples[0], Response(logprobs=(-0.2, -3.0)), "loglikelihood") == "negative"


def test_ag_news_label_indices_map_to_topic_names() -> None:
    task = catalog_task("ag_news")
    samples = task.samples()
    assert [r["label"] for r in jsonl("ag_news.jsonl")] == [0, 1, 2, 3, 2]
    assert [s.references[0] for s in samples] == ["World", "Sports", "Business", "Sci/Tech", "Business"]
    assert [s.id for s in samples] == ["0", "1", "2", "3", "4"]  # no id column: the row index
    assert "Saturday,\\keeping them" in samples[1].input  # the Hub text keeps its literal backslashes
    assert task.prompt_for(samples[2], chat=False) == (
        "Article: Oil Prices Climb as Supply Worries Grow (Reuters) Reuters - Crude oil prices rose to a record "
        "on Tuesday as traders fretted over supplies from the Gulf of Mexico.\n"
        "Question: Which topic is this article about: World, Sports, Business, Sci/Tech?\nAnswer:"
    )
    (ll,) = task.build_requests(samples[:1], "loglikelihood")
    assert ll.continuations == (" World", " Sports", " Business", " Sci/Tech")
    assert task.predict(samples[3], Response(text=" Sci/Tech"), "generate") == "Sci/Tech"
    generic = Response(label_scores={"LABEL_0": 0.0, "LABEL_1": 0.1, "LABEL_2": 0.9, "LABEL_3": 0.2})
    with pytest.raises(TaskError, match="map them"):  # LABEL_i is never mapped by position
        task.predict(samples[3], generic, "classify")


# -- translation ---------------------------------------------------------------------------------

def test_wmt16_de_en_reads_the_nested_translation_column() -> None:
    task = catalog_task("wmt16_de_en")
    samples = task.samples()
    rows = jsonl("wmt16_de_en.jsonl")
    assert [s.input for s in samples] == [r["translation"]["de"] for r in rows]
    assert [s.references for s in samples] == [(r["translation"]["en"],) for r in rows]
    assert samples[2].input == "„Wir sind sehr zufrieden“, sagte die Sprecherin."
    assert [s.id for s in samples] == ["0", "1", "2", "3"]
    assert task.prompt_for(samples[1], chat=False) == (
        "Translate this sentence from German to English.\n"
        "German: Der Zug hatte am Montag zwei Stunden Verspätung.\nEnglish:"
    )
    assert [m.name for m in task.metrics] == ["chrf", "bleu"] and task.primary_metric == "chrf"
    assert (task.generation.max_new_tokens, task.generation.stop) == (160, ("\n",))


# -- QA ------------------------------------------------------------------------------------------

SQUAD_PROMPT_1 = (
    "Answer the question with a short span copied from the passage.\n"
    "Passage: The Kiel Canal links the North Sea with the Baltic Sea. It opened in 1895 and is 98 kilometres "
    "long. Ships using it avoid a voyage of about 460 kilometres around the Jutland peninsula.\n"
    "Question: How long is the Kiel Canal?\nAnswer:"
)


def test_squad_samples_keep_every_answer() -> None:
    task = catalog_task("squad")
    samples = task.samples()
    assert [s.id for s in samples] == [f"5f3a1c0e8b7d4a2100a1b00{i}" for i in range(1, 5)]
    assert samples[0].references == ("1895", "1895", "in 1895")
    assert samples[1].references == ("98 kilometres", "98 kilometres long", "98 kilometres")
    assert samples[3].references == ("1911", "1911", "1911")
    assert samples[3].input == "In which year did Curie win the chemistry prize?"
    assert samples[3].context.startswith("Marie Curie was the first woman")
    assert task.prompt_for(samples[1], chat=False) == SQUAD_PROMPT_1
    assert [m.name for m in task.metrics] == ["squad"] and task.primary_metric == "f1"
    for row in jsonl("squad.jsonl"):  # the fixture's offsets are real SQuAD offsets
        for text, start in zip(row["answers"]["text"], row["answers"]["answer_start"], strict=True):
            assert row["context"][start:start + len(text)] == text


def test_squad_nested_json_gives_the_same_samples(tmp_path: Path) -> None:
    """The official SQuAD v1.1 file layout (format: squad) flattens to the Hub rows."""
    raw = yaml.safe_load((TASKS / "squad.yaml").read_text(encoding="utf-8"))
    raw["dataset"] = {"path": str(FIXTURES / "squad_v1.1.json"), "format": "squad", "split": "validation"}
    (tmp_path / "squad_local.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    nested = load_task(str(tmp_path / "squad_local.yaml")).samples()
    hub = catalog_task("squad").samples()
    assert [(s.id, s.input, s.context, s.references) for s in nested] == \
           [(s.id, s.input, s.context, s.references) for s in hub]
    assert nested[0].extra["row"]["title"] == "Kiel_Canal"


def test_squad_v2_unanswerable_questions_expect_the_empty_answer() -> None:
    task = catalog_task("squad_v2")
    samples = task.samples()
    assert [s.id for s in samples] == [f"5f3a1c0e8b7d4a2100a2c00{i}" for i in range(1, 5)]
    assert [s.references for s in samples] == [("1895", "1895", "in 1895"), ("",), ("1911", "1911"), ("",)]
    assert task.prompt_for(samples[1], chat=False) == (
        "Answer the question with a short span copied from the passage. If the passage does not contain "
        "the answer, leave the answer empty.\n"
        "Passage: The Kiel Canal links the North Sea with the Baltic Sea. It opened in 1895 and is 98 kilometres "
        "long. Ships using it avoid a voyage of about 460 kilometres around the Jutland peninsula.\n"
        "Question: When did the Kiel Canal close?\nAnswer:"
    )
    (gen,) = task.build_requests(samples[1:2], "generate")
    assert gen.config.stop == ("\n",) and gen.context == samples[1].context


# -- summarisation -------------------------------------------------------------------------------

def test_xsum_samples_and_prompt() -> None:
    task = catalog_task("xsum")
    samples = task.samples()
    assert [s.id for s in samples] == ["40159342", "39687115", "36215530"]
    assert samples[1].references == ("A frog less than a centimetre long has been discovered in Peru.",)
    assert task.prompt_for(samples[2], chat=False) == (
        "Article: Ticket prices for the festival will rise by 10% next year. Organisers blamed higher security "
        "costs.\nThe event attracts about 50,000 people every summer.\n\n"
        "Summarize the article in one sentence.\nSummary:"
    )
    assert (task.generation.max_new_tokens, task.generation.stop, task.primary_metric) == (64, ("\n",), "rougeL")


def test_cnn_dailymail_keeps_highlight_lines() -> None:
    task = catalog_task("cnn_dailymail")
    samples = task.samples()
    assert samples[0].id == "0a7b2c4e9f1d3b5a7c9e0f2a4b6c8d0e1f3a5b7c"
    assert samples[0].references == ("Museum returns painting stolen from a family in 1940 .\n"
                                     "Landscape was handed back at a ceremony on Thursday .\n"
                                     "Museum says it bought the work in good faith in 1962 .",)
    assert task.prompt_for(samples[2], chat=False) == (
        "Article: (CNN) -- Heavy rain has flooded hundreds of homes in the north of the country. Rescue teams "
        "used boats to reach stranded families. Forecasters expect more rain over the weekend.\n\n"
        "Summarize the article in three sentences.\nSummary:"
    )
    # multi-line highlights: a newline must not end the summary; rougeLsum scores the lines
    assert task.generation.stop == ("\n\n",) and task.primary_metric == "rougeLsum"


def test_samsum_prompt_uses_plain_newlines() -> None:
    task = catalog_task("samsum")
    samples = task.samples()
    assert [s.id for s in samples] == ["13862001", "13729002", "13680003"]  # int64 on the Hub -> str
    assert samples[1].input == ("Mia: Is the meeting still at 3?\r\nLeo: Moved to 4, the room was taken.\r\n"
                                "Mia: OK, thanks!")
    assert samples[1].references == ("The meeting has been moved to 4 because the room was taken.",)
    assert task.prompt_for(samples[1], chat=False) == (
        "Dialogue:\nMia: Is the meeting still at 3?\nLeo: Moved to 4, the room was taken.\nMia: OK, thanks!\n\n"
        "Summarize the dialogue.\nSummary:"
    )


def test_samsum_csv_as_shipped_on_the_hub() -> None:
    """knkarthick/samsum ships CSV files: quoted multi-line dialogues, numeric ids."""
    from_csv = catalog_task("samsum", "samsum.csv").samples()
    from_jsonl = catalog_task("samsum").samples()
    assert [(s.id, s.input, s.references) for s in from_csv] == [(s.id, s.input, s.references) for s in from_jsonl]


# -- end to end through the runner with the baselines --------------------------------------------

def run_baseline(name: str, baseline: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    store = ResultStore(tmp_path / "db.sqlite")
    task = catalog_task(name)
    result = evaluate(task, BaselineAdapter(baseline), ModelEntry(spec=f"baseline:{baseline}"),
                      RunConfig(n_resamples=50), store=store, cache=None)
    assert result.status == "complete" and result.n_errors == 0
    assert result.n_samples == len(task.samples())
    assert result.primary_metric == task.primary_metric and task.primary_metric in {m.name for m in result.metrics}
    (run,) = store.runs()
    assert (run.task, run.model, run.task_fingerprint) == (name, f"baseline:{baseline}", task.fingerprint())
    values = {m.name: m.value for m in result.metrics}
    return task, result, values, store.samples(result.run_id)


def test_sst2_majority_baseline_end_to_end(tmp_path: Path) -> None:
    _, result, values, records = run_baseline("sst2", "majority", tmp_path)
    assert result.scoring_mode == "loglikelihood"
    assert [r.prediction for r in records] == ["positive"] * 5  # 3 of the 5 training labels
    assert values["accuracy"] == pytest.approx(0.6)
    assert values["f1/negative"] == 0.0 and values["f1/positive"] == pytest.approx(0.75)


def test_ag_news_majority_baseline_end_to_end(tmp_path: Path) -> None:
    _, _, values, records = run_baseline("ag_news", "majority", tmp_path)
    assert [r.prediction for r in records] == ["Business"] * 5
    assert values["accuracy"] == pytest.approx(0.4)


def test_squad_first_sentence_baseline_end_to_end(tmp_path: Path) -> None:
    task, result, values, records = run_baseline("squad", "first-sentence", tmp_path)
    assert result.scoring_mode == "generate"
    assert [r.prediction for r in records] == [first_sentence(s.context or "") for s in task.samples()]
    # only the third question's answers include the whole first sentence of its passage
    assert [r.stats["squad"]["exact_match"] for r in records] == [0, 0, 1, 0]
    assert values == {"f1": pytest.approx(25.0), "exact_match": pytest.approx(25.0)}


def test_squad_v2_empty_answer_scores_full_marks_end_to_end(tmp_path: Path) -> None:
    class Abstain(ModelAdapter):
        name = "abstain"
        supports = frozenset({"generate"})

        def identity(self) -> dict[str, str]:
            return {"backend": "abstain"}

        def run(self, requests):  # type: ignore[no-untyped-def]
            for i, _ in enumerate(requests):
                yield i, Response(text="")

    task = catalog_task("squad_v2")
    result = evaluate(task, Abstain(), ModelEntry(spec="test:abstain"), RunConfig(n_resamples=0),
                      store=ResultStore(tmp_path / "db.sqlite"), cache=None)
    values = {m.name: m.value for m in result.metrics}
    assert values == {"f1": pytest.approx(50.0), "exact_match": pytest.approx(50.0),  # 2 of 4 unanswerable
                      "HasAns_exact": 0.0, "HasAns_f1": 0.0, "NoAns_exact": 100.0, "NoAns_f1": 100.0}


def test_wmt16_copy_baseline_end_to_end(tmp_path: Path) -> None:
    task, _, values, records = run_baseline("wmt16_de_en", "copy", tmp_path)
    assert [r.prediction for r in records] == [s.input for s in task.samples()]
    assert set(values) == {"chrf", "bleu"} and 0 < values["bleu"] < values["chrf"] < 100


@pytest.mark.parametrize("name", ["xsum", "cnn_dailymail", "samsum"])
def test_lead_baseline_end_to_end(name: str, tmp_path: Path) -> None:
    task, _, values, records = run_baseline(name, "lead", tmp_path)
    assert [r.prediction for r in records] == [first_sentence(s.input) for s in task.samples()]
    assert set(values) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}
    per_sample = [r.stats["rouge"]["rougeL"] for r in records]
    assert values["rougeL"] == pytest.approx(sum(per_sample) / len(per_sample))
    if name == "xsum":  # the third article's lead sentence is its summary
        assert per_sample[2] == pytest.approx(1.0) and max(per_sample[:2]) < 1.0


# -- the CLI lists the catalog -------------------------------------------------------------------

def test_llmbench_tasks_lists_every_catalog_file() -> None:
    exe = Path(sys.executable).with_name("llmbench")
    cmd = [str(exe), "tasks"] if exe.exists() else [sys.executable, "-m", "llmbench", "tasks"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "COLUMNS": "400", "NO_COLOR": "1"})
    assert out.returncode == 0, out.stderr
    rows = {}
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) == 5 and cells[0]:
            rows[cells[0]] = cells
    for name, (kind, *_) in CATALOG.items():
        assert name in rows, f"{name} missing from `llmbench tasks`"
        assert rows[name][4] == str(TASKS / f"{name}.yaml")
        assert rows[name][1] == kind
    assert rows["sst2"][2] == "classify, loglikelihood, generate" and rows["sst2"][3] == "accuracy, f1, calibration"
    assert rows["squad_v2"][2:4] == ["generate", "squad_v2"]
    assert rows["wmt16_de_en"][3] == "chrf, bleu" and rows["xsum"][3] == "rouge"
