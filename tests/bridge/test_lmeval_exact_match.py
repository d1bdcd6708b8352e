"""``lmeval_exact_match``: lm-eval 0.4.13's exact_match, against lm-eval's own function.

``tests/fixtures/lmeval/expected/exact_match_cases.json`` holds what lm-eval's
``exact_match_hf_evaluate`` returned on crafted (prediction, reference, options) cases
(``bench/lmeval_exact_cases.py`` ran it): case, punctuation, numbers, regexes to ignore and
gsm8k's options, where llmbench's SQuAD-normalised ``exact_match`` would often say otherwise.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from llmbench.metrics.base import MetricError
from llmbench.metrics.lmeval import LmEvalExactMatch
from llmbench.metrics.qa import normalize_answer
from llmbench.metrics.registry import get_metric
from llmbench.tasks.lmeval import LmEvalError, translate
from llmbench.types import Response, Sample

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "lmeval"
CASES = json.loads((FIX / "expected" / "exact_match_cases.json").read_text(encoding="utf-8"))


def test_every_crafted_case_equals_lmeval() -> None:
    assert len(CASES) == 144
    for case in CASES:
        metric = get_metric("lmeval_exact_match", **case["options"])
        stats = metric.sample_stats(prediction=case["prediction"], references=[case["reference"]])
        assert stats == {"exact_match": case["exact_match"]}, case


def test_the_cases_tell_raw_from_normalised() -> None:
    """The fixture holds cases where lm-eval's raw comparison and SQuAD's normalised one differ
    both ways, so it could not pass with llmbench's exact_match."""
    raw = [c for c in CASES if not c["options"]]
    assert any(normalize_answer(c["prediction"]) == normalize_answer(c["reference"]) and not c["exact_match"]
               for c in raw)
    bathroom = next(c for c in raw if c["prediction"] == "Bathroom.")
    assert bathroom["exact_match"] == 0.0 and normalize_answer("Bathroom.") == normalize_answer("bathroom")
    numbers = next(c for c in CASES if c["options"] == {"ignore_numbers": True} and c["prediction"] == "Room 12")
    assert numbers["exact_match"] == 0.0  # "Room " vs "room": numbers go, case stays


def test_pipelines_score_the_raw_generation_each() -> None:
    """gsm8k's two pipelines on one raw answer, with its options; lm-eval's value names."""
    metric = get_metric("lmeval_exact_match", ignore_case=True, regexes_to_ignore=[",", "\\$", "(?s).*#### ", "\\.$"],
                        filters=[{"name": "strict-match", "regex": "#### (\\-?[0-9\\.\\,]+)"},
                                 {"name": "flexible-extract", "regex": "(-?[$0-9.,]{2,})|(-?[0-9]+)",
                                  "group_select": -1}])
    filter_timeout = get_metric("lmeval_exact_match", filters=[{"name": "x", "regex": "(x+x+)+y"}])
    with pytest.raises(MetricError, match=r"ran over"):
        filter_timeout.sample_stats(prediction="x" * 5000, references=["x"])
    sample = Sample(id="0", input="q", references=("48+24=72\n#### 72",))
    answer = Response(text=" She sold 48 + 24 = 72 clips, so $72.")
    stats = metric.answer_stats(prediction="ignored", sample=sample, response=answer)
    assert stats == {"exact_match,strict-match": 0, "exact_match,flexible-extract": 1}
    assert metric.primary() == "exact_match,strict-match"
    assert metric.indicators == {"exact_match,strict-match": "exact_match,strict-match",
                                 "exact_match,flexible-extract": "exact_match,flexible-extract"}
    assert LmEvalExactMatch.value_names({"filters": [{"name": "a"}, {"name": "b"}]}, None) == \
        {"exact_match,a", "exact_match,b"}


def test_target_prefix_is_part_of_the_reference() -> None:
    """babi's ``doc_to_target: " {{answer}}"``: lm-eval compares " bathroom" with the raw answer."""
    metric = get_metric("lmeval_exact_match", target_prefix=" ")
    assert metric.sample_stats(prediction=" bathroom", references=["bathroom"]) == {"exact_match": 1}
    assert metric.sample_stats(prediction="bathroom", references=["bathroom"]) == {"exact_match": 0}


def test_a_regex_to_ignore_that_backtracks_for_ever_is_stopped() -> None:
    metric = get_metric("lmeval_exact_match", regexes_to_ignore=["(x+x+)+y"])
    start = time.monotonic()
    with pytest.raises(MetricError, match=r"ran over 1 s"):
        metric.sample_stats(prediction="x" * 5000, references=["x"])
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("args", [{"regexes_to_ignore": ["("]}, {"ignore_case": "yes"},
                                  {"filters": [{"name": "x", "regex": "["}]}, {"filters": [{"regex": "a"}]},
                                  {"filters": [{"name": "x"}, {"name": "x"}]}])
def test_bad_arguments_are_one_line(args: dict[str, object]) -> None:
    with pytest.raises(MetricError) as err:
        get_metric("lmeval_exact_match", **args)
    assert "\n" not in str(err.value)


def _task(tmp_path: Path, metric: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text("task: t\ndataset_path: json\ntest_split: test\noutput_type: generate_until\n"
                    f"doc_to_text: q\ndoc_to_target: a\nmetric_list: [{metric}]\n", encoding="utf-8")
    return path


def test_translator_maps_the_options(tmp_path: Path) -> None:
    spec = translate(_task(tmp_path, "{metric: exact_match, ignore_case: true, ignore_punctuation: false, "
                                     "ignore_numbers: true, regexes_to_ignore: ['\\s']}"))
    assert spec["metrics"] == [{"name": "lmeval_exact_match", "args": {
        "ignore_case": True, "ignore_numbers": True, "regexes_to_ignore": ["\\s"]}}]
    assert spec["primary_metric"] == "exact_match"
    babi = translate(FIX / "tasks" / "babi" / "babi.yaml")  # doc_to_target: " {{answer}}"
    assert babi["fields"]["target"] == "answer"
    assert babi["metrics"] == [{"name": "lmeval_exact_match", "args": {"target_prefix": " "}}]


@pytest.mark.parametrize(("metric", "key"), [
    ("{metric: exact_match, regexes_to_ignore: ['(']}", "metric_list[0].regexes_to_ignore[0]"),
    ("{metric: exact_match, ignore_case: maybe}", "metric_list[0].ignore_case"),
    ("{metric: exact_match, ignore_spaces: true}", "metric_list[0].ignore_spaces"),
])
def test_translator_refuses_what_lmeval_would_not_mean(tmp_path: Path, metric: str, key: str) -> None:
    with pytest.raises(LmEvalError) as err:
        translate(_task(tmp_path, metric))
    assert f": {key}: " in str(err.value) and "\n" not in str(err.value)
