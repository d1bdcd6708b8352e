"""Language modelling: how well a model predicts a set of documents (perplexity).

Each row is one document (``fields.input``, optionally shaped by ``prompt.template``); the
model is asked for the log-likelihood of the whole text (request kind
``loglikelihood_rolling``): a causal LM scores it in windows of its length as
lm-evaluation-harness's ``loglikelihood_rolling`` does (``rolling.stride`` gives each window
more context), a masked LM answers the pseudo-log-likelihood (each token masked in turn).
The ``perplexity`` metric turns the totals into token, word and byte perplexity and bits
per byte; words and bytes are counted on the scored text itself (``Sample.references``),
as lm-eval counts them on ``doc_to_target``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmbench.tasks.base import TaskError
from llmbench.tasks.data import Row
from llmbench.tasks.yaml_task import YamlTask
from llmbench.types import Request, RequestKind, Response, Sample


class LanguageModelingTask(YamlTask):
    """A YAML task of kind ``language_modeling`` (see the module docstring)."""

    def _nonempty(self, prompt: str, sample: Sample) -> str:
        return prompt  # an empty document is refused in _to_sample, which names its row

    def _to_sample(self, index: int, row: Row) -> Sample:
        f = self.spec.fields
        sid = self._sample_id(row, index)
        text = self._text(row, "input", f.input, index)
        sample = Sample(id=sid, input=text, references=("",), extra={"row": row})
        scored = self._render(sample)
        if not scored:
            raise TaskError(f"{self._where()}: row {index} (id '{sid}') is an empty document — drop empty "
                            "rows from the data (an empty text has no perplexity)")
        return sample.model_copy(update={"references": (scored,)})

    def _check_prompts(self, sample: Sample) -> None:
        self._prompt_checked = True  # _to_sample rendered this sample's text already

    def _references(self, raw: Any, index: int) -> tuple[str, ...]:
        return ("",)  # the scored text, set in _to_sample

    def build_requests(
        self, samples: Sequence[Sample], mode: RequestKind, *, chat: bool = False
    ) -> list[Request]:
        """One request per document: its text as the prompt (never a chat: a document has no
        turns), with the task's stride."""
        stride = self.spec.rolling.stride if self.spec.rolling else None
        return [Request(sample_id=s.id, kind=mode, prompt=s.references[0], input=s.input, stride=stride,
                        config=self.generation) for s in samples]

    def predict(self, sample: Sample, response: Response, mode: RequestKind) -> str:
        """No text is predicted; the metric reads the log-likelihood from the response."""
        return ""
