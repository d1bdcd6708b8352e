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
