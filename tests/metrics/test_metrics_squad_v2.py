"""SQuAD v2.0 scoring rules."""
import pytest


def test_squad_v2_rules() -> None:
    """Official v2.0 script rules: references that normalise to nothing are dropped, an
    unanswerable question's gold is [""], and F1 of two empty answers is 1 (else 0)."""
    from llmbench.metrics import get_metric

    m = get_metric("squad_v2")
    no, yes = {"has_answer": 0}, {"has_answer": 1}
    assert m.sample_stats(prediction="", references=[""]) == {"exact_match": 1, "f1": 1.0, **no}
    assert m.sample_stats(prediction="the", references=["", "a"]) == {"exact_match": 1, "f1": 1.0, **yes}
    assert m.sample_stats(prediction="Paris", references=[""]) == {"exact_match": 0, "f1": 0.0, **no}
    assert m.sample_stats(prediction="", references=["Paris"]) == {"exact_match": 0, "f1": 0.0, **yes}
    both = m.sample_stats(prediction="in Paris", references=["Paris", ""])
    assert both == {"exact_match": 0, "f1": pytest.approx(2 / 3), **yes}
    (f1, em, *breakdown) = m.aggregate([m.sample_stats(prediction="", references=[""]),
                                        m.sample_stats(prediction="x", references=["y"])], n_resamples=0)
    assert (f1.name, f1.value, em.name, em.value) == ("f1", 50.0, "exact_match", 50.0)
    assert {v.name: v.value for v in breakdown} == {
        "HasAns_exact": 0.0, "HasAns_f1": 0.0, "NoAns_exact": 100.0, "NoAns_f1": 100.0}
    assert f1.signature.startswith("squad-v2.0-official")
