"""Data loading errors are one line, whatever the reading library raises (``errors.one_line``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmbench.tasks.data import DataError, _read_file


@pytest.mark.parametrize(("raised", "shown"), [
    (ValueError(""), "ValueError"),  # an empty message used to crash the error path (IndexError)
    (ValueError("Failed to read\n  column 'x'\n\tbad type"), "Failed to read column 'x' bad type"),
])
def test_a_library_failure_is_one_line(raised: Exception, shown: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def fails(*args: object, **kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(datasets, "load_dataset", fails)
    path = tmp_path / "rows.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(DataError) as info:
        _read_file(str(path), 0, 11, "auto")
    message = str(info.value)
    assert message.startswith(f"could not read '{path}': {shown}") and "\n" not in message


@pytest.mark.parametrize(("line2", "shown"), [
    ('{"id": "b", "id": "c"}', ":2: the key 'id' appears twice in one object"),
    ('{"id": NaN}', ":2: NaN is not a JSON value"),
    ('{"id": -Infinity}', ":2: -Infinity is not a JSON value"),
    ('{"id": "b"', ":2: not valid JSON (Expecting ',' delimiter)"),
    ('\ufeff{"id": "b"}', ":2: not valid JSON (Unexpected UTF-8 BOM"),
])
def test_a_bad_jsonl_row_is_named_by_line(line2: str, shown: str, tmp_path: Path) -> None:
    """The JSONL reader (one decoder for the file) refuses what ``json.loads`` with the same
    hooks refused, with the same messages, naming the line."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a", "x": [1, {"y": null}]}\n' + line2 + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        _read_file(str(path), 0, path.stat().st_size, "auto")
    assert str(info.value).startswith(f"{path}{shown}")
    path.write_text('{"id": "a", "x": [1, {"y": null}]}\n\n{"id": "é"}\n', encoding="utf-8")
    assert _read_file(str(path), 1, path.stat().st_size, "auto") == [{"id": "a", "x": [1, {"y": None}]}, {"id": "é"}]
