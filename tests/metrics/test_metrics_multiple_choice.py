"""acc / acc_norm / acc_bytes against an independent computation of lm-eval's definitions,
the generation fallback, and the macro over slices."""

from __future__ import annotations

import random

import numpy as np
import pytest

from llmbench.metrics import get_metric
from llmbench.types import Response, Sample


def _argmax(values: list[float]) -> int:
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def _expected(lls: list[float], choices: list[str], gold: int) -> dict[str, int]:
    """lm-eval 0.4.13 process_results, written out: argmax of ll, ll/len(chars), ll/len(bytes)."""
    return {"acc": int(_argmax(lls) == gold),
            "acc_norm": int(_argmax([ll / len(c) for ll, c in zip(lls, choices, strict=True)]) == gold),
            "acc_bytes": int(_argmax([ll / len(c.encode()) for ll, c in zip(lls, choices, strict=True)]) == gold)}


def _sample(choices: list[str], gold: int, sid: str = "s", slice_: str | None = None) -> Sample:
    extra = {"slice": slice_} if slice_ is not None else {}
    return Sample(id=sid, input="q", references=(choices[gold],), choices=tuple(choices), gold=gold, extra=extra)


def test_matches_lm_eval_definitions_on_random_samples() -> None:
    rng = random.Random(0)
    metric = get_metric("acc")
    pool = ["a", "bb", "ccc dd", "日本語", "café au lait", "x" * 12, "ñ"]
    stats, expected = [], []
    for i in range(400):
        choices = rng.sample(pool, rng.randint(2, 5))
        lls = [-rng.uniform(0.1, 30.0) for _ in choices]
        gold = rng.randrange(len(choices))
        s = metric.answer_stats(prediction="", sample=_sample(choices, gold, str(i)),
                                response=Response(logprobs=tuple(lls)))
        stats.append(s)
        expected.append(_expected(lls, choices, gold))
        assert {k: s[k] for k in ("acc", "acc_norm", "acc_bytes")} == expected[-1]
    # the three decisions really differ on this data (otherwise the test could not tell them apart)
    assert len({(e["acc"], e["acc_norm"], e["acc_bytes"]) for e in expected}) > 2
    values = {v.name: v.value for v in metric.aggregate(stats, n_resamples=0)}
    for name in ("acc", "acc_norm", "acc_bytes"):
        assert values[name] == sum(e[name] for e in expected) / len(expected)


def test_length_normalisation_picks_the_longer_choice() -> None:
    metric = get_metric("acc")
    # " a" costs -2 (per char -2), " a much longer answer" costs -10 (per char -0.5)
    s = metric.answer_stats(prediction="a", sample=_sample(["a", "a much longer answer"], 1),
                            response=Response(logprobs=(-2.0, -10.0)))
    assert (s["acc"], s["acc_norm"], s["acc_bytes"]) == (0, 1, 1)


def test_ties_go_to_the_first_choice_as_numpy() -> None:
    metric = get_metric("acc")
    s = metric.answer_stats(prediction="", sample=_sample(["same", "same"], 1),
                            response=Response(logprobs=(-1.0, -1.0)))
    assert s["acc"] == 0 and s["pred"] == 0


def test_generation_scores_the_parsed_choice() -> None:
    metric = get_metric("acc")
    right = metric.answer_stats(prediction="b", sample=_sample(["a", "b"], 1), response=Response(text="B"))
    invalid = metric.answer_stats(prediction="", sample=_sample(["a", "b"], 1), response=Response(text="?"))
    assert (right["acc"], right["acc_norm"]) == (1, 1) and (invalid["acc"], invalid["acc_norm"]) == (0, 0)


def test_macro_over_slices_and_bootstrap_shape() -> None:
    metric = get_metric("acc")
    rows = [("x", 1), ("x", 1), ("x", 0), ("y", 0)]  # acc 0.5; per slice x 2/3, y 0 -> macro 1/3
    stats = [metric.answer_stats(prediction="", sample=_sample(["a", "b"], 0 if ok else 1, str(i), g),
                                 response=Response(logprobs=(-1.0, -2.0))) for i, (g, ok) in enumerate(rows)]
    point = metric.score(stats)
    assert point["acc"][0] == pytest.approx(0.5)
    assert point["acc_macro"][0] == pytest.approx((2 / 3 + 0) / 2)
    weights = np.array([[1, 1, 1, 1], [2, 1, 1, 0], [0, 0, 0, 4]], dtype=float)
    boot = metric.score(stats, weights)
    # resample 2 has no "y": the macro is x alone; resample 3 has only "y"
    assert boot["acc_macro"].tolist() == pytest.approx([1 / 3, 3 / 4, 0.0])


def test_wrong_number_of_logprobs_is_an_adapter_bug() -> None:
    with pytest.raises(ValueError, match="3 log-likelihoods for 2 choices"):
        get_metric("acc").answer_stats(prediction="", sample=_sample(["a", "b"], 0),
                                       response=Response(logprobs=(-1.0, -2.0, -3.0)))
