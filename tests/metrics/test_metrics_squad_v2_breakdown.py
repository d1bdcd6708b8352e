"""SQuAD v2.0 HasAns/NoAns breakdown, against the official script's own logic.

``official_v2`` below is ``evaluate-v2.0.py`` from https://rajpurkar.github.io/SQuAD-explorer/
(get_raw_scores, make_eval_dict, merge_eval; no-answer probability thresholds left out),
transcribed function for function and run on the official nested JSON layout, so the
expectations do not come from llmbench's code.
"""

from __future__ import annotations

import collections
import re
import string

import numpy as np
import pytest

from llmbench.metrics import Metric, get_metric


# -- the official script -----------------------------------------------------------------------
def _normalize_answer(s: str) -> str:
    def remove_articles(text: str) -> str:
        regex = re.compile(r"\b(a|an|the)\b", re.UNICODE)
        return re.sub(regex, " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def _get_tokens(s: str) -> list[str]:
    return _normalize_answer(s).split() if s else []


def _compute_exact(a_gold: str, a_pred: str) -> int:
    return int(_normalize_answer(a_gold) == _normalize_answer(a_pred))


def _compute_f1(a_gold: str, a_pred: str) -> float:
    gold_toks, pred_toks = _get_tokens(a_gold), _get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def official_v2(dataset: list[dict], preds: dict[str, str]) -> dict[str, float]:  # type: ignore[type-arg]
    exact_scores, f1_scores, has_ans = {}, {}, {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid = qa["id"]
                has_ans[qid] = bool(qa["answers"])
                gold_answers = [a["text"] for a in qa["answers"] if _normalize_answer(a["text"])]
                if not gold_answers:
                    gold_answers = [""]
                exact_scores[qid] = max(_compute_exact(a, preds[qid]) for a in gold_answers)
                f1_scores[qid] = max(_compute_f1(a, preds[qid]) for a in gold_answers)

    def make_eval_dict(qid_list: list[str]) -> dict[str, float]:
        total = len(qid_list)
        return {"exact": 100.0 * sum(exact_scores[k] for k in qid_list) / total,
                "f1": 100.0 * sum(f1_scores[k] for k in qid_list) / total, "total": total}

    out = make_eval_dict(list(exact_scores))
    for prefix, ids in (("HasAns", [k for k, v in has_ans.items() if v]),
                        ("NoAns", [k for k, v in has_ans.items() if not v])):
        if ids:
            for key, value in make_eval_dict(ids).items():
                out[f"{prefix}_{key}"] = value
    return out


# -- data ---------------------------------------------------------------------------------------
QAS = [  # (id, answers, prediction)
    ("q1", ["1895", "in 1895"], "1895"),
    ("q2", [], ""),  # unanswerable, correctly abstained
    ("q3", [], "1911"),  # unanswerable, answered anyway
    ("q4", ["Marie Curie", "Curie"], "Pierre Curie"),
    ("q5", ["the Baltic Sea"], "Baltic"),
    ("q6", ["98 kilometres"], ""),  # answerable, abstained
    ("q7", [], "the"),  # normalises to nothing: counts as an abstention
]
DATASET = [{"title": "t", "paragraphs": [{"context": "c", "qas": [
    {"id": qid, "question": "?", "answers": [{"text": a, "answer_start": 0} for a in answers]}
    for qid, answers, _ in QAS]}]}]
PREDS = {qid: pred for qid, _, pred in QAS}


def _stats() -> tuple[Metric, list[dict]]:  # type: ignore[type-arg]
    metric = get_metric("squad_v2")
    # An unanswerable question's reference is "" (the catalog task's ``no_answer: ""``).
    stats = [metric.sample_stats(prediction=pred, references=answers or [""]) for _, answers, pred in QAS]
    return metric, stats


def test_breakdown_equals_the_official_script() -> None:
    want = official_v2(DATASET, PREDS)
    assert want["HasAns_total"] == 4 and want["NoAns_total"] == 3
    metric, stats = _stats()
    got = {v.name: v.value for v in metric.aggregate(stats, n_resamples=0)}
    names = {"exact_match": "exact", "f1": "f1", "HasAns_exact": "HasAns_exact", "HasAns_f1": "HasAns_f1",
             "NoAns_exact": "NoAns_exact", "NoAns_f1": "NoAns_f1"}
    assert set(got) == set(names)
    for ours, theirs in names.items():
        assert got[ours] == pytest.approx(want[theirs], abs=1e-12), ours
    assert got["NoAns_exact"] == pytest.approx(200 / 3)  # q2 and q7 abstain, q3 does not


def test_one_group_only_reports_that_group() -> None:
    metric = get_metric("squad_v2")
    stats = [metric.sample_stats(prediction="1895", references=["1895"])]
    assert set(metric.score(stats)) == {"exact_match", "f1", "HasAns_exact", "HasAns_f1"}
    v1 = get_metric("squad")
    assert set(v1.score([v1.sample_stats(prediction="a", references=["a"])])) == {"exact_match", "f1"}


def test_breakdown_under_resampling() -> None:
    metric, stats = _stats()
    point = metric.score(stats)
    weights = np.vstack([np.ones(len(stats)), [2, 0, 0, 1, 1, 1, 0]])
    resampled = metric.score(stats, weights)
    for name in point:
        assert resampled[name][0] == pytest.approx(point[name][0]), name
    # Second resample: q1 twice, q4, q5, q6 and no unanswerable question at all.
    kept = [QAS[0], QAS[0], QAS[3], QAS[4], QAS[5]]
    want = official_v2([{"title": "t", "paragraphs": [{"context": "c", "qas": [
        {"id": f"{qid}-{i}", "question": "?", "answers": [{"text": a, "answer_start": 0} for a in ans]}
        for i, (qid, ans, _) in enumerate(kept)]}]}], {f"{qid}-{i}": p for i, (qid, _, p) in enumerate(kept)})
    assert resampled["HasAns_f1"][1] == pytest.approx(want["HasAns_f1"])
    assert np.isnan(resampled["NoAns_f1"][1])  # undefined in that resample, ignored by the CI
