"""How a model's response becomes a task file's prediction (and label probabilities)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from llmbench.tasks import kinds
from llmbench.tasks.base import TaskError
from llmbench.tasks.rows import TaskFileBase
from llmbench.textregex import ExtractError, compile_pattern, extract
from llmbench.types import RequestKind, Response, Sample


class TaskAnswers(TaskFileBase):
    """Answer parsing: the generated text, the best-scoring label or label continuation."""

    def predict(self, sample: Sample, response: Response, mode: RequestKind) -> str:
        if self.spec.extract is not None:
            return self._extracted(sample, response.text or "")
        if self.kind != "classification":
            return (response.text or "").strip()
        assert self.labels is not None
        if mode == "loglikelihood":
            return kinds.argmax_label(response.logprobs or (), self.labels)
        if mode == "classify":
            return self._label_from_scores(response.label_scores or {})
        return kinds.parse_label(response.text or "", self.labels)

    def _extracted(self, sample: Sample, text: str) -> str:
        """``extract``'s regular expression on the raw answer (lm-eval's regex filter, which
        sees the text unstripped); a pattern that runs past its time bound stops the run."""
        spec = self.spec.extract
        assert spec is not None
        try:
            return extract(text, self._extract_pattern, group_select=spec.group_select, fallback=spec.fallback)
        except ExtractError as err:
            raise TaskError(f"{self._where()}: extract: {err} on sample '{sample.id}' — simplify the "
                            "pattern") from None

    @cached_property
    def _extract_pattern(self) -> Any:
        assert self.spec.extract is not None
        return compile_pattern(self.spec.extract.regex)

    def gives_label_probabilities(self, mode: RequestKind) -> bool:
        return self.kind == "classification" and mode in ("classify", "loglikelihood")

    def label_probabilities(self, sample: Sample, response: Response,
                            mode: RequestKind) -> dict[str, float] | None:
        """Softmax over the labels of the classifier's log-scores (mapped through
        ``label_map`` as ``predict`` maps them) or of the label continuations' log-likelihoods;
        None when scored by generation (``kinds.label_distribution`` says why one rule)."""
        if not self.gives_label_probabilities(mode):
            return None
        assert self.labels is not None
        if mode == "loglikelihood":
            return kinds.label_distribution(response.logprobs or (), self.labels)
        label_map = self.spec.label_map or {}
        scores = {label_map.get(k, k): v for k, v in (response.label_scores or {}).items()}
        known = all(lab in scores for lab in self.labels)
        return kinds.label_distribution([scores[lab] for lab in self.labels] if known else [], self.labels)

    def _label_from_scores(self, scores: dict[str, float]) -> str:
        """The task label with the highest classifier score. The model's label names are
        taken as they are, or through ``label_map`` when the task maps them; generic
        ``LABEL_i`` names are never matched by position (a guess that silently swaps
        classes when the model was trained with another order). No scores is an invalid
        answer ("", scored wrong)."""
        assert self.labels is not None
        if not scores:
            return ""
        label_map = self.spec.label_map or {}
        scores = {label_map.get(k, k): v for k, v in scores.items()}
        if all(lab in scores for lab in self.labels):
            return kinds.argmax_label([scores[lab] for lab in self.labels], self.labels)
        keys = list(scores)
        if all(k.startswith("LABEL_") for k in keys):
            raise TaskError(f"{self._where()}: the model only names its classes {keys} — map them "
                            f"to the task's labels {list(self.labels)} explicitly: label_map: "
                            "{LABEL_0: <label>, ...} in the task file, or id2label in the model's "
                            "config.json")
        raise TaskError(f"{self._where()}: the model's labels {keys} do not match the task's "
                        f"labels {list(self.labels)} — fine-tune with these labels or rename them")
