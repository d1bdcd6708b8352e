"""The judge's pure statistics against independent references: Bradley–Terry and the
length-controlled win rate against scikit-learn's LogisticRegression, kappa against
``sklearn.metrics.cohen_kappa_score``, Spearman against ``scipy.stats.spearmanr``; and the
strict verdict parser."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score

from llmbench.judge.agreement import cohen_kappa, spearman
from llmbench.judge.ratings import Comparison, bradley_terry, rate
from llmbench.judge.verdicts import parse_preference, parse_score
from llmbench.metrics.judged import JudgePairwise, JudgeScore, lc_win_rate, length_feature


def _sklearn_fit(x: np.ndarray, y: np.ndarray, *, intercept: bool) -> np.ndarray:
    """Fractional outcomes as two weighted rows (won with weight y, lost with weight 1 - y)."""
    xx = np.vstack([x, x])
    yy = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    ww = np.concatenate([y, 1 - y])
    keep = ww > 0
    model = LogisticRegression(fit_intercept=intercept, penalty=None, solver="newton-cholesky",
                               tol=1e-14, max_iter=1000)
    model.fit(xx[keep], yy[keep], sample_weight=ww[keep])
    coef = model.coef_[0]
    return np.concatenate([model.intercept_, coef]) if intercept else coef


def _random_comparisons(seed: int, players: list[str], n: int) -> list[Comparison]:
    rng = np.random.default_rng(seed)
    strength = dict(zip(players, rng.normal(size=len(players)), strict=True))
    out = []
    for k in range(n):
        i, j = rng.choice(len(players), size=2, replace=False)
        p = 1 / (1 + np.exp(strength[players[j]] - strength[players[i]]))
        u = rng.random()
        outcome = 0.5 if abs(u - p) < 0.1 else float(u < p)  # some ties
        out.append(Comparison(players[i], players[j], outcome, f"s{k % (n // 2)}"))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bradley_terry_equals_sklearn_logistic_regression(seed: int) -> None:
    players = ["m0", "m1", "m2", "m3"]
    comps = _random_comparisons(seed, players, 300)
    theta, ok = bradley_terry(comps, players)
    # the comparison design built here, independently: +1 for the first player, -1 for the
    # second, the first player's column dropped (its strength is the reference, 0)
    x = np.array([[(c.first == p) - (c.second == p) for p in players[1:]] for c in comps], dtype=float)
    y = np.array([c.outcome for c in comps])
    reference = _sklearn_fit(x, y, intercept=False)
    assert ok
    assert theta[0] == 0.0
    np.testing.assert_allclose(theta[1:], reference, atol=1e-6, rtol=0)


def test_rate_centres_orders_and_brackets_with_bootstrap_ci() -> None:
    players = ["a", "b", "c"]
    comps = _random_comparisons(5, players, 200)
    theta, _ = bradley_terry(comps, players)
    result = rate(comps, n_resamples=200, seed=3)
    by_name = {r.player: r for r in result.ratings}
    np.testing.assert_allclose([by_name[p].rating for p in players], theta - theta.mean(), atol=1e-12)
    assert [r.rating for r in result.ratings] == sorted((r.rating for r in result.ratings), reverse=True)
    for r in result.ratings:
        assert r.ci_low is not None and r.ci_high is not None
        assert r.ci_low <= r.rating <= r.ci_high
    again = rate(comps, n_resamples=200, seed=3)
    assert again == result  # seeded


def test_rate_reports_a_separable_design_as_not_converged() -> None:
    comps = [Comparison("a", "b", 1.0, f"s{k}") for k in range(10)]
    assert not rate(comps, n_resamples=0).converged


@pytest.mark.parametrize("seed", [0, 1])
def test_lc_win_rate_equals_sklearn_with_a_length_term(seed: int) -> None:
    rng = np.random.default_rng(seed)
    len_diff = rng.normal(60, 80, size=120).round()  # B's answers mostly longer
    p = 1 / (1 + np.exp(-(0.3 + 1.5 * np.tanh(len_diff / len_diff.std()))))
    outcome = np.where(rng.random(120) < p, 1.0, 0.0)
    outcome[::7] = 0.5
    feature = length_feature(len_diff)
    b0, _ = _sklearn_fit(feature[:, None], outcome, intercept=True)
    assert lc_win_rate(outcome, feature) == pytest.approx(1 / (1 + np.exp(-b0)), abs=1e-6)
    # longer answers win here and B's are mostly longer: controlling for length lowers B's rate
    assert lc_win_rate(outcome, feature) < outcome.mean()


def test_pairwise_metric_values_by_hand() -> None:
    stats = [{"outcome": 1.0, "consistent": 1, "valid": 1, "len_diff": 10},
             {"outcome": 0.5, "consistent": 0, "valid": 1, "len_diff": -3},
             {"outcome": 0.0, "consistent": 1, "valid": 1, "len_diff": 4},
             {"outcome": 0.0, "consistent": 0, "valid": 0, "len_diff": 0}]  # invalid: left out
    values = JudgePairwise(judge="j", fingerprint="f", baseline="a").score(stats)
    assert values["win_rate"][0] == pytest.approx(0.5)
    assert values["tie_rate"][0] == pytest.approx(1 / 3)
    assert values["consistency"][0] == pytest.approx(2 / 3)
    assert values["judge_valid"][0] == pytest.approx(0.75)


def test_rubric_metric_excludes_invalid_verdicts() -> None:
    stats = [{"score": 5, "valid": 1}, {"score": 2, "valid": 1}, {"score": 0, "valid": 0}]
    metric = JudgeScore(judge="j", fingerprint="f", scale_min=1, scale_max=5)
    values = metric.score(stats)
    assert values["judge_mean"][0] == pytest.approx(3.5)
    assert values["judge_score"][0] == pytest.approx((3.5 - 1) / 4)
    assert values["judge_valid"][0] == pytest.approx(2 / 3)
    weighted = metric.score(stats, np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 2.0]]))
    np.testing.assert_allclose(weighted["judge_mean"], [4.0, 2.0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kappa_and_spearman_equal_the_reference_libraries(seed: int) -> None:
    rng = np.random.default_rng(seed)
    human = rng.integers(1, 6, size=60)
    judge = np.clip(human + rng.integers(-1, 2, size=60), 1, 5)
    assert cohen_kappa(list(judge), list(human), n_resamples=0).value == \
        pytest.approx(cohen_kappa_score(judge, human), abs=1e-12)
    assert spearman(list(judge), list(human), n_resamples=0).value == \
        pytest.approx(spearmanr(judge, human).statistic, abs=1e-12)
    prefs = ["A", "B", "tie"]
    a = [prefs[k] for k in rng.integers(0, 3, size=40)]
    b = [x if rng.random() < 0.6 else prefs[k] for x, k in zip(a, rng.integers(0, 3, size=40), strict=True)]
    assert cohen_kappa(a, b, n_resamples=0).value == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_agreement_cis_are_seeded_and_bracket_the_value() -> None:
    rng = np.random.default_rng(4)
    human = list(rng.integers(1, 6, size=50))
    judge = [min(5, h + int(rng.integers(0, 2))) for h in human]
    for stat in (cohen_kappa, spearman):
        result = stat(judge, human, n_resamples=300, seed=1)
        assert result.ci_low is not None and result.ci_high is not None
        assert result.ci_low <= result.value <= result.ci_high
        assert stat(judge, human, n_resamples=300, seed=1) == result


def test_agreement_is_undefined_when_a_rater_is_constant() -> None:
    assert np.isnan(spearman([3, 3, 3], [1, 2, 3], n_resamples=0).value)
    assert np.isnan(cohen_kappa(["A", "A"], ["A", "A"], n_resamples=0).value)


@pytest.mark.parametrize(("text", "expected"), [
    ("4", 4), ("4.", 4), (" Score: 5 \n because it is complete", 5), ("rating = 2/5", 2), ("[[3]]", 3),
    ("**1**", 1), ("\n\n3", 3),
    ("6", None), ("0", None), ("4/10", None), ("I'd give it 4", None), ("4 or maybe 2", None),
    ("", None), (None, None), ("four", None), ("-3", None),
])
def test_parse_score_is_strict(text: str | None, expected: int | None) -> None:
    assert parse_score(text, 1, 5) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("A", "A"), ("b", "B"), ("[[B]]", "B"), ("Tie", "tie"), ("Winner: A\nA is more concise", "A"),
    ("verdict: tie.", "tie"), ("**A**", "A"),
    ("A or B", None), ("Both are good", None), ("Answer A is better", None), ("", None), (None, None), ("C", None),
])
def test_parse_preference_is_strict(text: str | None, expected: str | None) -> None:
    assert parse_preference(text) == expected


def test_pairwise_metric_with_no_valid_verdict_is_undefined_without_warnings() -> None:
    import warnings

    stats = [{"outcome": 0.5, "consistent": 0, "valid": 0, "len_diff": 3}] * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = JudgePairwise(judge="j", fingerprint="f").score(stats, np.ones((4, 3)))
    assert np.isnan(values["win_rate"]).all() and np.isnan(values["lc_win_rate"]).all()
    assert (values["judge_valid"] == 0).all()
    assert rate([], n_resamples=10).ratings == []


def test_judged_metrics_are_rebuildable_but_not_task_metrics() -> None:
    from llmbench.metrics import MetricError, get_metric, metric_names

    assert "judge_score" not in metric_names() and "judge_pairwise" not in metric_names()
    with pytest.raises(MetricError, match="llmbench judge"):
        get_metric("judge_score")  # what a task file naming it gets: one line
    rebuilt = get_metric("judge_score", judge="j", fingerprint="f", scale_min=0, scale_max=10)
    assert rebuilt.signature([]) == "judge_score|judge:j|prompt:f|scale:0-10|invalid:excluded"


def test_standings_read_each_players_side_and_equal_independent_fits() -> None:
    """The ratings view's per-model line: win rate and consistency by hand, the LC win rate
    equal to scikit-learn's fit on the player's own side (outcomes and length differences
    flipped where it was the second player)."""
    from llmbench.metrics.ratings import standings

    rng = np.random.default_rng(11)
    players = ["a", "b", "c"]
    comps = []
    for k, c in enumerate(_random_comparisons(4, players, 150)):
        comps.append(Comparison(c.first, c.second, c.outcome, c.group, bool(k % 5), float(rng.normal(20, 50))))
    rows, ratings = standings(comps, n_resamples=50, seed=2)
    assert [r.model for r in rows] == [r.player for r in ratings.ratings]
    for row in rows:
        side = [(c.outcome, c.len_diff, c.consistent) for c in comps if c.first == row.model] + \
               [(1 - c.outcome, -c.len_diff, c.consistent) for c in comps if c.second == row.model]
        outcome = np.array([s[0] for s in side])
        diff = np.array([s[1] for s in side])
        assert row.n_comparisons == len(side)
        assert row.win_rate == pytest.approx(sum(s[0] for s in side) / len(side), abs=1e-12)
        assert row.consistency == pytest.approx(sum(1 for s in side if s[2]) / len(side), abs=1e-12)
        b0, _ = _sklearn_fit(np.tanh(diff / diff.std())[:, None], outcome, intercept=True)
        assert row.lc_win_rate == pytest.approx(1 / (1 + np.exp(-b0)), abs=1e-6)
    by_name = {r.player: r.rating for r in ratings.ratings}
    assert {r.model: r.rating for r in rows} == by_name
