"""Judged metrics: per-sample verdicts of a judge model, reduced like any other metric.

The judge itself runs in ``llmbench.judge`` (it needs a model adapter, which metrics never
import); what it leaves per sample is plain statistics, so compare, gate and select rebuild
these metrics from the store and pair runs by sample id as they do for accuracy or ROUGE.

* ``judge_score`` (rubric): stats ``{"score": s, "valid": 1}`` for a verdict on the declared
  scale ``scale_min..scale_max``, ``{"score": 0, "valid": 0}`` for an unparseable one. Values:
  ``judge_score``, the mean valid score mapped to 0-1 (``(s - min) / (max - min)``), the
  primary; ``judge_mean`` on the judge's own scale; ``judge_valid``, the share of valid
  verdicts. An invalid verdict is never given a score: it is left out of the means and
  counted in ``judge_valid``.
* ``judge_pairwise`` (B against A, judged in both orders): stats ``{"outcome": 1 | 0.5 | 0,
  "consistent": 0/1, "valid": 0/1, "len_diff": chars(B) - chars(A)}``. A verdict that flips
  with the order is a tie (0.5) and not consistent. Values: ``win_rate`` (ties count half),
  ``lc_win_rate`` (length-controlled, see ``lc_win_rate``), ``tie_rate``, ``consistency``
  and ``judge_valid``.

The judge's identity, prompt fingerprint and scale are metric arguments, so they are in the
signature and in ``metric_args``: two runs judged differently are flagged as not comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from llmbench.metrics.base import Declaration, Metric, MetricError, Stats, column

#: Newton stops when no coefficient moves more than this.
_TOL = 1e-12
_MAX_ITER = 100
#: A log-odds this large means the data separate (someone won or lost everything).
_DIVERGED = 30.0


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|
    return out


def logistic_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, bool]:
    """Coefficients maximising sum_i w_i [y_i log p_i + (1 - y_i) log(1 - p_i)], p =
    sigmoid(x @ beta), ``y`` in [0, 1] (fractional outcomes allowed), by Newton's method;
    and whether it converged to finite values (False: the data separate and the maximum is
    at infinity)."""
    beta = np.zeros(x.shape[1])
    for _ in range(_MAX_ITER):
        p = _sigmoid(x @ beta)
        grad = x.T @ (w * (y - p))
        hess = (x * (w * p * (1 - p))[:, None]).T @ x
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(beta), initial=0.0) > _DIVERGED:
            return beta, False
        if np.max(np.abs(step), initial=0.0) < _TOL:
            return beta, True
    return beta, bool(np.max(np.abs(beta), initial=0.0) <= _DIVERGED)


def length_feature(len_diff: np.ndarray) -> np.ndarray:
    """tanh of the length difference over its standard deviation (AlpacaEval 2's feature);
    zeros when every difference is the same (no length signal to control for)."""
    sd = float(np.std(len_diff))
    out: np.ndarray = np.tanh(len_diff / sd) if sd > 0 else np.zeros(len(len_diff))
    return out


def lc_win_rate(outcome: np.ndarray, feature: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Length-controlled win rate, AlpacaEval 2's idea without its per-instruction term:
    fit logit P(B wins) = b0 + b1 * feature, report sigmoid(b0), the win rate B would have
    if its answers were as long as A's (``feature`` = ``length_feature`` of the differences).

    Falls back to the raw (weighted) win rate when the fit has no finite answer: every
    comparison won, or lost, or the length feature separates the wins from the losses.
    """
    w = np.ones(len(outcome)) if weights is None else weights
    total = float(w.sum())
    if total == 0:
        return float("nan")
    raw = float((w * outcome).sum() / total)
    if raw in (0.0, 1.0):
        return raw
    x = np.column_stack([np.ones(len(outcome)), feature])
    beta, ok = logistic_fit(x, outcome, w)
    return float(_sigmoid(beta[:1])[0]) if ok else raw


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def _weights(stats: Stats, weights: np.ndarray | None) -> np.ndarray:
    return np.ones((1, len(stats))) if weights is None else np.atleast_2d(weights)


class _Judged(Metric, abstract=True):
    def __init__(self, *, judge: str, fingerprint: str) -> None:
        if not judge or not fingerprint:
            raise MetricError(f"metric {self.name!r} is written by `llmbench judge`, not named in a task file")
        self.judge = judge
        self.fingerprint = fingerprint

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        raise MetricError(f"metric {self.name!r} needs a judge model: run `llmbench judge` on a stored run")


class JudgeScore(_Judged):
    """Rubric scores of one judge on a declared integer scale (see the module docstring)."""

    # ``judge_mean`` is on the judge's own scale (e.g. 1-5), shown as is; the primary is 0-1.
    declaration = Declaration(values=("judge_score", "judge_mean", "judge_valid"), scale="unit",
                              direction="higher", indicators={}, stats_version=1)

    def __init__(self, *, labels: Sequence[str] | None = None, judge: str = "", fingerprint: str = "",
                 scale_min: int = 1, scale_max: int = 5) -> None:
        self.name = "judge_score"
        super().__init__(judge=judge, fingerprint=fingerprint)
        if scale_max <= scale_min:
            raise MetricError(f"judge scale {scale_min}-{scale_max} is empty — give MIN-MAX with MIN < MAX")
        self.scale_min, self.scale_max = scale_min, scale_max

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        w = _weights(stats, weights)
        valid, score = column(stats, "valid"), column(stats, "score")
        n_valid = w @ valid
        mean = _ratio(w @ (valid * score), n_valid)
        return {"judge_score": (mean - self.scale_min) / (self.scale_max - self.scale_min),
                "judge_mean": mean, "judge_valid": _ratio(n_valid, w.sum(axis=1))}

    def primary(self) -> str:
        return "judge_score"

    def signature(self, stats: Stats) -> str:
        return (f"judge_score|judge:{self.judge}|prompt:{self.fingerprint}|scale:{self.scale_min}-"
                f"{self.scale_max}|invalid:excluded")


class JudgePairwise(_Judged):
    """B's preference over A by one judge, both orders (see the module docstring)."""

    # ``tie_rate`` has no better side; declared lower (more decisive verdicts) for the gate.
    declaration = Declaration(values=("win_rate", "lc_win_rate", "tie_rate", "consistency", "judge_valid"),
                              scale="unit", direction="higher", directions={"tie_rate": "lower"},
                              indicators={}, stats_version=1)

    def __init__(self, *, labels: Sequence[str] | None = None, judge: str = "", fingerprint: str = "",
                 baseline: str = "") -> None:
        self.name = "judge_pairwise"
        super().__init__(judge=judge, fingerprint=fingerprint)
        self.baseline = baseline

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        w = _weights(stats, weights)
        valid, outcome = column(stats, "valid"), column(stats, "outcome")
        consistent = column(stats, "consistent")
        n_valid = w @ valid
        keep = valid > 0
        if keep.any():
            feature = length_feature(column(stats, "len_diff")[keep])
            lc = np.array([lc_win_rate(outcome[keep], feature, row[keep]) for row in w])
        else:  # no valid verdict: nothing to fit
            lc = np.full(len(w), np.nan)
        return {"win_rate": _ratio(w @ (valid * outcome), n_valid), "lc_win_rate": lc,
                "tie_rate": _ratio(w @ (valid * (outcome == 0.5)), n_valid),
                "consistency": _ratio(w @ (valid * consistent), n_valid),
                "judge_valid": _ratio(n_valid, w.sum(axis=1))}

    def primary(self) -> str:
        return "win_rate"

    def signature(self, stats: Stats) -> str:
        return (f"judge_pairwise|judge:{self.judge}|prompt:{self.fingerprint}|vs:{self.baseline}|"
                "both-orders|flip:tie|tie:0.5|lc:logit(b0+b1*tanh(dchars/sd))")
