"""The scenario half of a task file: its rows, fields, references and sample ids.

``YamlTask`` composes this with ``tasks.prompting`` (how a sample becomes a prompt) and
``tasks.answers`` (how a response becomes a prediction), as HELM separates a scenario from
its adapter. The mixins share ``TaskFileBase``: the attributes ``YamlTask.__init__`` sets and
the hooks one part calls on another, so each part type-checks on its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from llmbench.tasks.base import Task, TaskError
from llmbench.tasks.data import DataError, Row, get_field, load_rows
from llmbench.tasks.spec import TaskSpec
from llmbench.types import Sample


def _rows_list(indices: Sequence[int], show: int = 4) -> str:
    head = ", ".join(str(i) for i in indices[:show])
    return head + (f", … ({len(indices)} rows)" if len(indices) > show else "")


class TaskFileBase(Task):
    """What the parts of a task file read of each other (set by ``YamlTask.__init__``)."""

    spec: TaskSpec
    path: Path | None
    base_dir: Path
    _template: jinja2.Template
    _target_template: jinja2.Template
    _reads_row: bool
    _split_cache: dict[str, list[Sample]]
    _row_cache: dict[str, list[Row]]
    _target_memo: dict[str, str] | None
    _prompt_checked: bool

    def _where(self) -> str:
        return f"task '{self.name}' ({self.path})" if self.path else f"task '{self.name}'"

    def _check_prompts(self, sample: Sample) -> None:
        """Render one sample's prompts to find template errors early (``TaskPrompting``)."""

    def _rows(self, split: str) -> list[Row]:
        """A split's raw rows, checked and cached (``TaskRows``)."""
        raise NotImplementedError


class TaskRows(TaskFileBase):
    """Reading a split's rows into ``Sample`` objects, with every whole-split and per-row check."""

    def load_split(self, split: str) -> list[Sample]:
        if split not in self._split_cache:
            rows = self._rows(split)
            self._split_cache[split] = [self._to_sample(i, row) for i, row in enumerate(rows)]
            self._check_prompts(self._split_cache[split][0])
        return self._split_cache[split]

    def _rows(self, split: str) -> list[Row]:
        if split not in self._row_cache:
            try:
                rows = load_rows(self.spec.dataset, split, self.base_dir)
            except DataError as err:
                raise TaskError(f"{self._where()}: {err}") from None
            self._check_rows(split, rows)
            self._row_cache[split] = rows
        return self._row_cache[split]
    def _check_rows(self, split: str, rows: list[Row]) -> None:
        """Whole-split checks, once per split, before any model is loaded.

        Empty data used to be stored as a ``complete`` run with no metrics, and duplicate
        ids silently broke compare and the leaderboard (both match samples by id).
        """
        if not rows:
            raise TaskError(f"{self._where()}: split '{split}' has no rows ({self._source_of(split)}) — "
                            "add rows to the data file or point dataset at the right file")
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise TaskError(f"{self._where()}: row {index} of split '{split}' is a "
                                f"{type(row).__name__}, not an object with columns — every row must be "
                                "a JSON object / a CSV line with a header")
        field = self.spec.fields.id
        if field is None:
            return  # ids are row numbers, unique by construction
        seen: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            seen.setdefault(self._sample_id(row, index), []).append(index)
        dupes = [(sid, where) for sid, where in seen.items() if len(where) > 1]
        if dupes:
            shown = "; ".join(f"'{sid}' in rows {_rows_list(where)}" for sid, where in dupes[:3])
            more = f" (and {len(dupes) - 3} more ids)" if len(dupes) > 3 else ""
            raise TaskError(f"{self._where()}: split '{split}' has duplicate ids in fields.id = '{field}': "
                            f"{shown}{more} — ids must be unique (compare and the leaderboard match samples "
                            "by id); fix the data or point fields.id at a unique column")

    def _source_of(self, split: str) -> str:
        ds = self.spec.dataset
        if ds.builtin is not None:
            return f"builtin '{ds.builtin}'"
        files = ds.data_files
        if isinstance(files, dict):
            files = files.get(split)
        return f"file '{files or ds.path}'"

    def _sample_id(self, row: Row, index: int) -> str:
        f = self.spec.fields
        if not f.id:
            return str(index)
        value = self._field(row, "id", f.id, index)
        if value is None or isinstance(value, dict | list) or value == "":
            raise TaskError(f"{self._where()}: row {index} has id {value!r} in column '{f.id}' — every row "
                            "needs a non-empty string or number id (or drop fields.id to number the rows)")
        return str(value)

    def _split_size(self, split: str) -> int:
        return len(self._split_cache[split]) if split in self._split_cache else len(self._rows(split))

    def _samples_at(self, split: str, indices: Sequence[int]) -> list[Sample]:
        """Built on demand from the raw rows (not kept), so a streamed run holds one chunk
        of ``Sample`` objects at a time; splits already loaded whole are reused."""
        if split in self._split_cache:
            return super()._samples_at(split, indices)
        rows = self._rows(split)
        samples = [self._to_sample(i, rows[i]) for i in indices]
        if samples:
            self._check_prompts(samples[0])
        return samples

    def _field(self, row: Row, key: str, path: str, index: int) -> Any:
        try:
            return get_field(row, path)
        except KeyError:
            cols = ", ".join(sorted(row)) if isinstance(row, dict) else "?"
            raise TaskError(
                f"{self._where()}: fields.{key} = '{path}' is not in row {index} (columns: {cols}) "
                f"— fix fields.{key} in the task file"
            ) from None

    def _text(self, row: Row, key: str, path: str, index: int) -> str:
        """A text field: a string, or a number written as text.

        ``None``, a dict or a list would otherwise reach the model and the store as
        ``"None"`` or a Python repr. A template that reads ``row`` handles structured
        fields itself, so then the value is kept as JSON text.
        """
        value = self._field(row, key, path, index)
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if self._reads_row:
            return "" if value is None else json.dumps(value, ensure_ascii=False, default=str)
        what = "null" if value is None else f"a {type(value).__name__}"
        raise TaskError(f"{self._where()}: row {index} (id '{self._sample_id(row, index)}'): fields.{key} = "
                        f"'{path}' is {what}, not text — fix the data, point fields.{key} at a text column, "
                        "or read the structured value with a template that uses row (e.g. {{ row."
                        f"{path.split('.')[0]} }}}})")

    def _to_sample(self, index: int, row: Row) -> Sample:
        f = self.spec.fields
        sid = self._sample_id(row, index)
        assert f.target is not None  # the spec requires it of every kind this class builds
        raw_target = self._field(row, "target", f.target, index)
        context = self._text(row, "context", f.context, index) if f.context else None
        return Sample(
            id=sid,
            input=self._text(row, "input", f.input, index),
            references=self._references(raw_target, index),
            choices=self.labels,
            context=context,
            extra={"row": row, **self._slice_extra(row, index)},
        )

    def _slice_extra(self, row: Row, index: int) -> dict[str, str]:
        """``{"slice": value}`` of the ``slice_by`` field, read when the sample is built so a
        wrong field name fails before any model loads; a missing value is the slice "(none)"."""
        if self.slice_by is None:
            return {}
        try:
            value = get_field(row, self.slice_by)
        except KeyError:
            raise TaskError(f"{self._where()}: slice_by = '{self.slice_by}' is not in row {index} (columns: "
                            f"{', '.join(sorted(row))}) — fix slice_by in the task file") from None
        if value is None or value == "":
            return {"slice": "(none)"}
        if isinstance(value, dict | list):
            return {"slice": json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)}
        return {"slice": str(value)}

    def _references(self, raw: Any, index: int) -> tuple[str, ...]:
        if raw is None or isinstance(raw, dict):
            what = "null" if raw is None else "a dict"
            raise TaskError(f"{self._where()}: row {index}: fields.target = '{self.spec.fields.target}' is {what} "
                            "— every row needs a target (text, a list of texts or a label); for a nested "
                            "answer use a dotted path such as answers.text")
        if self.kind != "classification":
            refs = tuple(str(r) for r in raw) if isinstance(raw, list | tuple) else (str(raw),)
            if not refs and self.spec.no_answer is not None:
                return (self.spec.no_answer,)
            if not refs:
                raise TaskError(f"{self._where()}: row {index} has no reference — every row needs a target "
                                "(or set no_answer: for rows without an answer)")
            return refs
        assert self.labels is not None
        if isinstance(raw, bool):
            return (self._bool_label(raw, index),)
        if isinstance(raw, int) and not (self.spec.label_map and str(raw) in self.spec.label_map):
            if not 0 <= raw < len(self.labels):
                raise TaskError(f"{self._where()}: row {index} has label index {raw}, "
                                f"but labels has {len(self.labels)} entries — fix labels")
            return (self.labels[raw],)
        label = str(raw)
        if self.spec.label_map:
            label = self.spec.label_map.get(label, label)
        if label not in self.labels:
            raise TaskError(f"{self._where()}: row {index} has label '{label}', not one of "
                            f"{list(self.labels)} — fix labels or label_map")
        return (label,)

    def _bool_label(self, raw: bool, index: int) -> str:
        """A JSON ``true``/``false`` target is the label that says so (true/false or yes/no, any
        case); read as an index it silently became the second/first label whatever they are."""
        assert self.labels is not None
        words = ("true", "yes") if raw else ("false", "no")
        for label in self.labels:
            if label.strip().lower() in words:
                return label
        raise TaskError(f"{self._where()}: row {index} has the boolean label {str(raw).lower()}, and labels "
                        f"{list(self.labels)} has no true/false or yes/no — write the label's name in the data, "
                        "or name the labels true/false")
