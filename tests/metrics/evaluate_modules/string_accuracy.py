"""A minimal real ``evaluate.Metric`` script, loaded by path in the wrapper tests.

String labels (the Hub's ``accuracy`` wants ints) and an optional ``compute`` keyword, so
the tests can check that extra metric arguments pass through to ``compute()``.
"""

import datasets
import evaluate


class StringAccuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Fraction of predictions equal to their reference.",
            citation="",
            inputs_description="predictions: list of str; references: list of str",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, ignore_case=False):  # type: ignore[no-untyped-def]
        if ignore_case:
            predictions = [p.lower() for p in predictions]
            references = [r.lower() for r in references]
        hits = sum(p == r for p, r in zip(predictions, references, strict=True))
        return {"accuracy": hits / len(predictions), "n": len(predictions), "label": "text"}
