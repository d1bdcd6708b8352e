"""Ratings from pairwise verdicts: Bradley–Terry with bootstrap CIs, and each player's standing
(raw and length-controlled win rate, comparisons, position consistency). Pure numpy; nothing
here knows about models, prompts or the store, so ``llmbench judge pairwise`` (``judge``) and
the leaderboard's ratings view (``report``) both read their numbers from here: one truth.

Bradley–Terry is a logistic regression on fractional outcomes (a win 1, a loss 0, a tie 0.5,
the same as two half-weighted rows, one won and one lost), fitted by Newton's method
(``metrics.judged.logistic_fit``), which converges to machine precision here.
P(i beats j) = sigmoid(theta_i - theta_j): one row per judged pair with +1 in column i and -1
in column j, no intercept, the first player fixed at 0 (the model is defined up to a constant).
Ratings are reported centred (mean 0, log-odds units).

The length-controlled win rate, the other logistic regression, lives with the pairwise metric
(``llmbench.metrics.judged``) because every bootstrap draw and paired test refits it;
``standings`` applies it to all of one player's comparisons, from that player's side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmbench.metrics.judged import lc_win_rate, length_feature, logistic_fit


@dataclass(frozen=True)
class Comparison:
    """One judged pair: ``outcome`` is 1 when ``first`` won, 0 when ``second`` won, 0.5 a tie."""

    first: str
    second: str
    outcome: float
    group: str = ""  # the sample id: a bootstrap resamples samples, not single verdicts
    consistent: bool = True  # the two orders agreed (a flip is a tie, 0.5, and not consistent)
    len_diff: float = 0.0  # chars(first's answer) - chars(second's): the length-controlled win rate's input


def comparison(first: str, second: str, group: str, stats: dict[str, Any] | None) -> Comparison | None:
    """One stored ``judge_pairwise`` sample (``metrics.judged``: outcome from ``first``'s side,
    consistent, valid, len_diff) as a comparison; None for an invalid or unjudged sample."""
    if not stats or not stats.get("valid"):
        return None
    return Comparison(first, second, float(stats["outcome"]), group, bool(stats.get("consistent")),
                      float(stats.get("len_diff") or 0.0))


@dataclass(frozen=True)
class Rating:
    player: str
    rating: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Ratings:
    ratings: list[Rating]  # best first
    n_comparisons: int
    converged: bool  # False: someone won or lost every comparison; ratings are not finite


def design(comparisons: Sequence[Comparison], players: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The Bradley–Terry design matrix (first player's column dropped) and outcomes."""
    index = {p: k for k, p in enumerate(players)}
    x = np.zeros((len(comparisons), len(players)))
    for row, c in enumerate(comparisons):
        x[row, index[c.first]] += 1.0
        x[row, index[c.second]] -= 1.0
    return x[:, 1:], np.array([c.outcome for c in comparisons], dtype=float)


def bradley_terry(comparisons: Sequence[Comparison], players: Sequence[str],
                  weights: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Log-strengths of ``players`` (first one 0) and whether the fit converged."""
    x, y = design(comparisons, players)
    w = np.ones(len(y)) if weights is None else weights
    beta, ok = logistic_fit(x, y, w)
    return np.concatenate([[0.0], beta]), ok


def rate(comparisons: Sequence[Comparison], *, n_resamples: int = 1000, seed: int = 0,
         confidence: float = 0.95) -> Ratings:
    """Centred Bradley–Terry ratings with percentile bootstrap CIs over samples (all the
    comparisons of one sample id travel together, so a sample judged in both orders and
    for several pairs counts once per draw)."""
    players = sorted({c.first for c in comparisons} | {c.second for c in comparisons})
    theta, ok = bradley_terry(comparisons, players)
    theta = theta - theta.mean()
    lows: np.ndarray | None = None
    highs: np.ndarray | None = None
    if n_resamples > 0 and comparisons:
        groups = sorted({c.group for c in comparisons})
        gindex = np.array([groups.index(c.group) for c in comparisons])
        counts = np.random.default_rng(seed).multinomial(len(groups), [1 / len(groups)] * len(groups),
                                                         size=n_resamples)
        boot = np.empty((n_resamples, len(players)))
        for b in range(n_resamples):
            t, _ = bradley_terry(comparisons, players, counts[b][gindex].astype(float))
            boot[b] = t - t.mean()
        alpha = (1 - confidence) / 2
        lows, highs = np.quantile(boot, alpha, axis=0), np.quantile(boot, 1 - alpha, axis=0)
    out = [Rating(p, float(theta[k]), None if lows is None else float(lows[k]),
                  None if highs is None else float(highs[k])) for k, p in enumerate(players)]
    out.sort(key=lambda r: -r.rating)
    return Ratings(out, len(comparisons), ok)


@dataclass(frozen=True)
class ModelStanding:
    """One player's line of the ratings view: its Bradley–Terry rating (centred, with the
    bootstrap CI), raw and length-controlled win rate over all its comparisons (ties half),
    how many comparisons, and the share of them whose two orders agreed."""

    model: str
    rating: float
    ci_low: float | None
    ci_high: float | None
    win_rate: float
    lc_win_rate: float
    n_comparisons: int
    consistency: float


def standings(comparisons: Sequence[Comparison], *, n_resamples: int = 1000, seed: int = 0,
              confidence: float = 0.95) -> tuple[list[ModelStanding], Ratings]:
    """Every player's standing, best rating first, and the ratings they come from.

    A player's win rate is read from its own side of each comparison (a comparison where it
    is ``second`` counts ``1 - outcome``, the length difference negated), so the rates of a
    two-player set are complements; the length-controlled one is ``metrics.judged.lc_win_rate``
    on the player's comparisons, with the length feature scaled over them.
    """
    ratings = rate(comparisons, n_resamples=n_resamples, seed=seed, confidence=confidence)
    out = []
    for r in ratings.ratings:
        mine = [(c.outcome, c.len_diff, c.consistent) for c in comparisons if c.first == r.player] + \
               [(1.0 - c.outcome, -c.len_diff, c.consistent) for c in comparisons if c.second == r.player]
        outcome = np.array([m[0] for m in mine], dtype=float)
        diff = np.array([m[1] for m in mine], dtype=float)
        out.append(ModelStanding(r.player, r.rating, r.ci_low, r.ci_high, float(outcome.mean()),
                                 lc_win_rate(outcome, length_feature(diff)), len(mine),
                                 sum(1 for m in mine if m[2]) / len(mine)))
    return out, ratings
