"""Multiple-choice accuracy as lm-evaluation-harness 0.4.13 defines it: ``acc``, ``acc_norm``
and ``acc_bytes``.

From each choice's log-likelihood ``ll_i`` (``Response.logprobs``, one per choice, in the
order of ``Sample.choices``) and the gold index (``Sample.gold``):

* ``acc``: ``argmax(ll) == gold``;
* ``acc_norm``: ``argmax(ll / len(choice))`` with the length in characters of the choice text
  (without the leading delimiter), lm-eval's length normalisation;
* ``acc_bytes``: the same with the length in UTF-8 bytes.

The arithmetic is lm-eval's own (numpy float64, ``np.argmax``: ties go to the first), so
every sample's decision is the same as lm-eval's on the same log-likelihoods. Scored by
generation there are no log-likelihoods: the three values are then all "the parsed answer is
the gold choice" (the run records its scoring mode, so such numbers are not mixed up with
log-likelihood ones). When the task slices (``slice_by``, e.g. MMLU's subject),
``*_macro`` is the unweighted mean over slices; the plain values are lm-eval's group
numbers (weighted by size).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from llmbench.metrics.base import Declaration, Metric, Stats, column, require_references
from llmbench.types import Response, Sample

VALUES = ("acc", "acc_norm", "acc_bytes")


def choice_decisions(lls: Sequence[float], choices: Sequence[str]) -> tuple[int, int, int]:
    """``(pred, pred_norm, pred_bytes)``: lm-eval's three argmaxes, in its arithmetic."""
    completion_len = np.array([float(len(c)) for c in choices])
    byte_length = np.array([float(len(c.encode("utf-8"))) for c in choices])
    arr = np.asarray(lls, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty choice divides by 0, as in lm-eval
        return int(np.argmax(arr)), int(np.argmax(arr / completion_len)), int(np.argmax(arr / byte_length))


class ChoiceAccuracy(Metric):
    """``acc``/``acc_norm``/``acc_bytes`` of multiple-choice samples (see the module docstring).

    A task that slices (``slice_by``) also gets ``acc_macro``, ``acc_norm_macro`` and
    ``acc_bytes_macro``, which exist only then and are not among the declared values."""

    declaration = Declaration(values=VALUES, scale="unit", direction="higher",
                              indicators={name: name for name in VALUES}, stats_version=1)

    def __init__(self, *, labels: Sequence[str] | None = None) -> None:
        self.name = "acc"

    def sample_stats(self, *, prediction: str, references: Sequence[str]) -> dict[str, Any]:
        """From a predicted choice text alone (generation): right when it is the gold text."""
        require_references(self.name, references)
        right = int(bool(prediction) and prediction == references[0])
        return {"acc": right, "acc_norm": right, "acc_bytes": right, "pred": prediction}

    def answer_stats(self, *, prediction: str, sample: Sample, response: Response) -> dict[str, Any]:
        if response.logprobs is None or sample.choices is None or sample.gold is None:
            stats = self.sample_stats(prediction=prediction, references=sample.references)
        elif len(response.logprobs) != len(sample.choices):
            if response.logprobs:
                raise ValueError(f"{len(response.logprobs)} log-likelihoods for {len(sample.choices)} "
                                 "choices: the adapter must answer one per choice")
            stats = {"acc": 0, "acc_norm": 0, "acc_bytes": 0, "pred": -1}  # no answer: wrong
        else:
            preds = choice_decisions(response.logprobs, sample.choices)
            stats = {name: int(p == sample.gold) for name, p in zip(VALUES, preds, strict=True)}
            stats["pred"] = preds[0]
        slice_value = sample.extra.get("slice")
        if slice_value is not None:
            stats["slice"] = str(slice_value)
        return stats

    def score(self, stats: Stats, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        w = np.ones((1, len(stats))) if weights is None else np.asarray(weights, dtype=np.float64)
        out: dict[str, np.ndarray] = {}
        cols = {name: column(stats, name) for name in VALUES}
        total = w.sum(axis=1)
        for name, col in cols.items():
            out[name] = (w @ col) / total
        slices = sorted({str(s["slice"]) for s in stats if "slice" in s})
        if slices and all("slice" in s for s in stats):
            keys = np.array([str(s["slice"]) for s in stats])
            masks = [(keys == g).astype(np.float64) for g in slices]
            counts = np.stack([w @ m for m in masks])  # (G, B)
            for name, col in cols.items():
                sums = np.stack([w @ (col * m) for m in masks])
                with np.errstate(divide="ignore", invalid="ignore"):
                    per = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan)
                present = ~np.isnan(per)  # a resample may miss a slice: average the others
                out[f"{name}_macro"] = np.where(present, per, 0.0).sum(axis=0) / present.sum(axis=0)
        return out

    def primary(self) -> str:
        return "acc"

    def signature(self, stats: Stats) -> str:
        return "lm-eval-0.4.13-multiple_choice|norm:chars,bytes|ties:first"
