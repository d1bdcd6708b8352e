"""An ``evaluate`` module that bootstraps its headline value from numpy's *global* RNG,
as HF's ``rouge`` does with its default aggregator (``np.random.choice``): unseeded, the
value changes from process to process."""

import datasets
import evaluate
import numpy as np


class GlobalBootstrap(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Mean of 20 bootstrap means of per-sample overlap, from np.random.",
            citation="",
            inputs_description="predictions: list of str; references: list of str",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):  # type: ignore[no-untyped-def]
        scores = np.array([
            len(set(p.split()) & set(r.split())) / max(len(set(r.split())), 1)
            for p, r in zip(predictions, references, strict=True)
        ])
        draws = np.random.choice(len(scores), size=(20, len(scores)), replace=True)
        return {"overlap": float(scores[draws].mean(axis=1).mean())}
