"""An ``evaluate`` module that samples from fresh OS entropy (``default_rng()`` without a
seed): no global seed reaches it, so its value differs between identical calls."""

import datasets
import evaluate
import numpy as np


class Unseedable(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Accuracy plus noise from an unseeded generator.",
            citation="",
            inputs_description="predictions: list of str; references: list of str",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):  # type: ignore[no-untyped-def]
        hits = sum(p == r for p, r in zip(predictions, references, strict=True))
        return {"noisy": hits / len(predictions) + float(np.random.default_rng().random()) * 1e-3}
