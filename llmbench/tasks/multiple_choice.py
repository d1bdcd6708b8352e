"""Multiple choice with per-row choices (MMLU, ARC, HellaSwag, PIQA-style benchmarks).

A classification task has one label set for every row; here every row brings its own
options (a column holding a list, or one template per choice) and its gold answer as an
index, a choice text or a label such as ARC's ``answerKey``. The sample carries the row's
choices and the gold *index* (``Sample.gold``): two choices may have the same text, and
lm-evaluation-harness scores by index.

Scoring modes:

* ``loglikelihood``: one request per row with every choice as a continuation (rendered by
  ``prompt.target_template``, default ``" {{ target }}"``, lm-eval's ``target_delimiter``),
  so the adapter runs the shared context once; the ``acc`` metric reads every choice's
  log-likelihood for ``acc``, ``acc_norm`` and ``acc_bytes``;
* ``generate``: the answer is parsed strictly: a choice's text, else a lone letter (``B``,
  ``(B)``, ``B.``) naming a choice; anything else is invalid (scored wrong, never guessed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jinja2

from llmbench.tasks import kinds
from llmbench.tasks.base import TaskError
from llmbench.tasks.data import Row
from llmbench.tasks.template import render
from llmbench.tasks.yaml_task import _ENV, YamlTask
from llmbench.types import Request, RequestKind, Response, Sample

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LETTER = re.compile(r"^\s*\(?([A-Z])\)?[.:)]?(?:\s|$)")


def _hellaswag_text(text: str) -> str:
    """lm-evaluation-harness 0.4.13's ``hellaswag/utils.py:preprocess``, character for character."""
    text = text.strip()
    # Brackets are artifacts of the WikiHow part of HellaSwag.
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag_row(row: Row) -> Row:
    """lm-eval's ``process_docs`` for HellaSwag: adds ``query``, ``choices`` and ``gold`` to a
    Hub row (``activity_label``, ``ctx_a``, ``ctx_b``, ``endings``, ``label``)."""
    ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    return {**row, "query": _hellaswag_text(row["activity_label"] + ": " + ctx),
            "choices": [_hellaswag_text(e) for e in row["endings"]], "gold": int(row["label"])}


#: The named row clean-ups a task file may ask for (``preprocess:``): a closed set of Python
#: functions, so task files stay data rather than growing into an interpreter.
PREPROCESS = {"hellaswag": hellaswag_row}


def parse_choice(text: str, choices: Sequence[str]) -> int | None:
    """Strict answer parsing: the index of the choice the answer names, or None.

    A choice's text wins (``kinds.parse_label``: the answer starts with it, or it is the only
    choice named as a whole word), so a choice such as "A dog" is not read as the letter A;
    failing that, a lone letter at the start (``B``, ``(B)``, ``B.``, ``B) ...``) within
    the number of choices. Anything else is None: an invalid answer, scored wrong.
    """
    found = kinds.parse_label(text, choices)
    if found:
        return list(choices).index(found)
    match = _LETTER.match(text)
    if match is not None and LETTERS.index(match.group(1)) < len(choices):
        return LETTERS.index(match.group(1))
    return None


class MultipleChoiceTask(YamlTask):
    """A YAML task of kind ``multiple_choice`` (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = self.spec.choices
        assert choices is not None  # the spec requires it for this kind
        try:
            self._choice_templates = ([_ENV.from_string(t) for t in choices.templates]
                                      if choices.templates else None)
        except jinja2.TemplateSyntaxError as err:
            raise TaskError(f"{self._where()}: choices.templates: {err.message} (line {err.lineno}) "
                            "— fix the template's syntax") from None

    # -- samples -------------------------------------------------------------------------
    def _to_sample(self, index: int, row: Row) -> Sample:
        if self.spec.preprocess is not None:
            try:
                row = PREPROCESS[self.spec.preprocess](row)
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise TaskError(f"{self._where()}: row {index} does not have the columns preprocess "
                                f"'{self.spec.preprocess}' reads ({type(err).__name__}: {err}) — fix the "
                                "data or drop preprocess") from None
        sample = super()._to_sample(index, row)
        choices = self._choices(row, index, sample)
        gold = self._gold(row, index, choices)
        return sample.model_copy(update={"choices": choices, "gold": gold, "references": (choices[gold],)})

    def _references(self, raw: Any, index: int) -> tuple[str, ...]:
        return ("",)  # replaced by the gold choice in _to_sample, once the choices are known

    def _choices(self, row: Row, index: int, sample: Sample) -> tuple[str, ...]:
        spec = self.spec.choices
        assert spec is not None
        if self._choice_templates is not None:
            out = []
            for template in self._choice_templates:
                try:
                    out.append(render(template, row=row, input=sample.input, context=sample.context))
                except Exception as err:  # any template failure is the task file's
                    raise self._template_error("choices.templates", sample, err) from None
            return tuple(out)
        assert spec.field is not None
        value = self._field(row, "choices", spec.field, index)
        if not isinstance(value, list | tuple) or len(value) < 2:
            raise TaskError(f"{self._where()}: row {index}: choices.field = '{spec.field}' is {value!r}, not a "
                            "list of at least two choices — point it at the column holding the options")
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
            raise TaskError(f"{self._where()}: row {index}: choices.field = '{spec.field}' holds something "
                            "other than texts — every choice must be a string")
        return tuple(str(v) for v in value)

    def _gold(self, row: Row, index: int, choices: tuple[str, ...]) -> int:
        spec = self.spec.choices
        assert spec is not None and self.spec.fields.target is not None
        raw = self._field(row, "target", self.spec.fields.target, index)
        where = f"{self._where()}: row {index}: fields.target = '{self.spec.fields.target}' is {raw!r}"
        if spec.gold == "index":
            if isinstance(raw, str) and raw.strip().isdigit():
                raw = int(raw)
            if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw < len(choices):
                raise TaskError(f"{where}, not an index into its {len(choices)} choices — fix the data or "
                                "set choices.gold (text or label)")
            return raw
        if spec.gold == "text":
            if str(raw) not in choices:
                raise TaskError(f"{where}, not one of its choices {list(choices)} — fix the data or set "
                                "choices.gold")
            return choices.index(str(raw))
        labels: Sequence[Any] = LETTERS[: len(choices)]
        if spec.labels_field is not None:
            labels = self._field(row, "choices.labels_field", spec.labels_field, index)
            if not isinstance(labels, list) or len(labels) != len(choices):
                raise TaskError(f"{self._where()}: row {index}: choices.labels_field = '{spec.labels_field}' "
                                f"is {labels!r}, not a list as long as the {len(choices)} choices")
        names = [str(lab) for lab in labels]
        if str(raw) not in names:
            raise TaskError(f"{where}, not one of the labels {names} — fix the data or choices.labels_field")
        return names.index(str(raw))

    # -- prompts -------------------------------------------------------------------------
    def _render(self, sample: Sample) -> str:
        try:
            text = render(self._template, input=sample.input, context=sample.context,
                          choices=sample.choices, row=sample.extra.get("row", {}))
        except Exception as err:  # any template failure is the task file's
            raise self._template_error("prompt.template", sample, err) from None
        return self._nonempty(text, sample)

    def _check_prompts(self, sample: Sample) -> None:
        if self._prompt_checked:
            return
        self._prompt_checked = True
        self._render(sample)
        for choice in sample.choices or ():
            self._render_target(sample, choice)

    def build_requests(
        self, samples: Sequence[Sample], mode: RequestKind, *, chat: bool = False
    ) -> list[Request]:
        out = []
        for s in samples:
            common = {"sample_id": s.id, "kind": mode, "input": s.input, "context": s.context,
                      "config": self.generation, "prompt": self.prompt_for(s, chat=chat)}
            if mode == "loglikelihood":
                conts = tuple(self._render_target(s, choice) for choice in s.choices or ())
                if chat:
                    conts = tuple(c.strip() for c in conts)
                out.append(Request(continuations=conts, **common))
            else:
                out.append(Request(**common))
        return out

    def predict(self, sample: Sample, response: Response, mode: RequestKind) -> str:
        """The chosen choice's text ("" for an answer that names no choice)."""
        choices = sample.choices or ()
        if mode == "loglikelihood":
            return kinds.argmax_label(response.logprobs or (), choices)
        picked = parse_choice(response.text or "", choices)
        return "" if picked is None else choices[picked]
