"""Rows for a task: built-in offline sets, local files, or Hugging Face Hub datasets.

Local ``.jsonl`` files are read with the standard library (importing ``datasets``
costs about a second, most of a small run's fixed cost); every other format and every
Hub id goes through ``datasets.load_dataset``. SQuAD's nested JSON is flattened here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from llmbench.errors import UserError, one_line
from llmbench.tasks.spec import DatasetSpec

Row = dict[str, Any]


class DataError(UserError):
    """The data could not be read; the message is one line with a fix."""


_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".tsv": "csv"}


def load_rows(spec: DatasetSpec, split: str, base_dir: Path) -> list[Row]:
    if spec.builtin is not None:
        from llmbench.data import DatasetError, load_builtin

        try:
            return load_builtin(spec.builtin, split)
        except DatasetError as err:
            raise DataError(str(err)) from None
    files = _files_for_split(spec, split, base_dir)
    if files is None:
        return _load_hub(spec, split)
    return _load_local(files, spec.format, spec.path)


def same_rows(spec: DatasetSpec, split_a: str, split_b: str, base_dir: Path) -> str | None:
    """Where two splits read the same rows: the split name, or the one local file both
    resolve to (a single ``path:`` serves every split); ``None`` when they differ."""
    if split_a == split_b:
        return f"split '{split_a}'"
    if spec.builtin is not None:
        return None
    try:
        files_a = _files_for_split(spec, split_a, base_dir)
        files_b = _files_for_split(spec, split_b, base_dir)
    except DataError:
        return None  # a missing split is reported where it is read
    if files_a is not None and files_a == files_b:
        return f"'{files_a[0]}'"
    return None


def _files_for_split(spec: DatasetSpec, split: str, base_dir: Path) -> list[Path] | None:
    data_files = spec.data_files
    if data_files is None and spec.path is not None:
        candidate = (base_dir / spec.path).expanduser()
        if candidate.suffix in _FORMATS or candidate.exists():
            data_files = spec.path
    if data_files is None:
        return None
    if isinstance(data_files, dict):
        if split not in data_files:
            raise DataError(
                f"split '{split}' has no entry in dataset.data_files (has: {', '.join(data_files)})"
                " — add it or choose another split"
            )
        data_files = data_files[split]
    path = (base_dir / data_files).expanduser()
    if not path.exists():
        raise DataError(f"data file '{path}' does not exist — fix dataset.data_files / dataset.path")
    if path.is_dir():
        raise DataError(f"data path '{path}' is a folder, not a file — point dataset.data_files / "
                        "dataset.path (or --data) at a .jsonl/.json/.csv/.parquet file in it")
    if not path.is_file():  # a FIFO would block the read forever, /dev/zero would fill memory
        raise DataError(f"data path '{path}' is not a regular file (a pipe, device or socket) — save the "
                        "rows to a .jsonl/.json/.csv/.parquet file and point the task (or --data) at it")
    return [path]


_TEXT_FORMATS = {".jsonl", ".json", ".csv", ".tsv"}


def check_utf8(path: Path) -> None:
    """Raise a ``DataError`` naming the line and byte when a text data file is not UTF-8.

    Why here: ``datasets`` and the JSON reader fail on a Latin-1 or binary file with a
    ``UnicodeDecodeError`` (a traceback) or a message without a line number; reading the
    bytes line by line is cheap and says exactly where to look.
    """
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                kind = "binary data" if b"\0" in raw else "not UTF-8 text"
                raise DataError(
                    f"{path}:{lineno}: {kind} (byte 0x{raw[err.start]:02x} at column {err.start + 1}) — "
                    "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8) or give a .parquet file"
                ) from None


def _load_local(files: list[Path], fmt: str, path_hint: str | None) -> list[Row]:
    rows: list[Row] = []
    for f in files:
        stat = f.stat()
        rows.extend(_read_file(str(f), stat.st_mtime_ns, stat.st_size, fmt))
    return rows


@lru_cache(maxsize=32)
def _read_file(path: str, _mtime: int, _size: int, fmt: str) -> list[Row]:
    p = Path(path)
    if p.suffix in _TEXT_FORMATS or fmt == "squad":
        check_utf8(p)
    if fmt == "squad" or (p.suffix == ".json" and _looks_like_squad(p)):
        return _flatten_squad(p)
    if p.suffix == ".jsonl":
        rows = []
        with p.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        # one decoder for the file (``json.loads`` with hooks builds one per line);
                        # a BOM goes through json.loads, which names it
                        row = _ROW_DECODER.decode(line) if not line.startswith("\ufeff") else json.loads(
                            line, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
                    except json.JSONDecodeError as err:
                        raise DataError(f"{p}:{lineno}: not valid JSON ({err.msg}) — fix that line") from None
                    except ValueError as err:
                        raise DataError(f"{p}:{lineno}: {err} — fix that line") from None
                    if not isinstance(row, dict):
                        raise DataError(f"{p}:{lineno}: a row must be a JSON object with named columns, "
                                        f"not {type(row).__name__} — write one {{\"column\": value}} object "
                                        "per line")
                    rows.append(row)
        return rows
    if p.suffix == ".json":
        _check_json_shape(p)
    kind = _FORMATS.get(p.suffix)
    if kind is None:
        raise DataError(f"data file '{p}' has an unknown format — use .jsonl, .json, .csv or .parquet")
    from datasets import load_dataset

    kwargs: dict[str, Any] = {"delimiter": "\t"} if p.suffix == ".tsv" else {}
    if kind == "csv" and _at_most_a_header(p):
        return []  # the task says "no rows"; datasets would say 'Instruction "train" corresponds to no data'
    try:
        with _quiet_datasets():
            ds = load_dataset(kind, data_files=str(p), split="train", **kwargs)
    except Exception as err:  # datasets raises many types for unreadable files
        raise DataError(f"could not read '{p}': {one_line(err, 300)} — check that it is a valid "
                        f"{kind} file") from None
    return [dict(r) for r in ds]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: with a key twice the last would win silently."""
    row: dict[str, Any] = {}
    for key, value in pairs:
        if key in row:
            raise ValueError(f"the key '{key}' appears twice in one object (the last would win)")
        row[key] = value
    return row


def _no_constant(name: str) -> Any:
    """``NaN``/``Infinity`` are not JSON (Python's reader accepts them): as an id or input they
    would become the text 'nan'."""
    raise ValueError(f"{name} is not a JSON value (write null, a number or a quoted string)")


#: The JSONL row reader (unique keys, no NaN/Infinity), built once.
_ROW_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def _check_json_shape(path: Path) -> None:
    """A .json data file holds a list of row objects (or ``{"data": [...]}`` as datasets
    reads it); a bare number or string would get datasets' "valid json file?" guess."""
    with path.open(encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    if head and head[0] not in "[{":
        raise DataError(f"{path}: a .json data file must hold a list of row objects, e.g. "
                        f"[{{\"id\": 1, \"text\": ...}}]; it starts with {head[:20]!r} — fix the file or use .jsonl")


def _at_most_a_header(path: Path) -> bool:
    with path.open(encoding="utf-8") as fh:
        lines = (line for line in fh if line.strip())
        return next(lines, None) is None or next(lines, None) is None


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Silence ``datasets`` while it reads one local file: its progress bars and the
    ERROR it logs before raising would print extra stderr lines around our one-line error
    (a local file loads in well under a second, so the bar says nothing)."""
    import datasets

    level = datasets.logging.get_verbosity()
    bars = datasets.utils.are_progress_bars_disabled()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets.logging.set_verbosity(level)
        if not bars:
            datasets.enable_progress_bars()


def _looks_like_squad(path: Path) -> bool:
    """Whether a .json file is the official nested SQuAD layout (``{"version": ..., "data":
    [{"title": ..., "paragraphs": [...]}]}``), so ``--data dev-v2.0.json`` works for a task
    written for the Hub's flat rows without ``format: squad``. Only the head is read; a
    JSON array or JSON-lines rows do not open with a ``version``/``data`` key."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        head = fh.read(1 << 16)
    return bool(re.match(r'\s*\{\s*"(version|data)"\s*:', head)) and '"paragraphs"' in head


def _flatten_squad(path: Path) -> list[Row]:
    """SQuAD v1.1/v2 nested JSON -> one row per question (the Hub layout)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg}) — fix the file") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data", []), list):
        raise DataError(f"{path}: not SQuAD JSON (expected {{\"data\": [{{\"paragraphs\": ...}}]}}) — "
                        "fix the file or set dataset.format: rows")
    try:
        return _squad_rows(doc)
    except (KeyError, TypeError, AttributeError) as err:
        raise DataError(f"{path}: a SQuAD entry lacks {err} or has the wrong type — every question needs "
                        "id, question and answers (text, answer_start) under data[].paragraphs[].qas") from None


def _squad_rows(doc: dict[str, Any]) -> list[Row]:
    rows = []
    for article in doc.get("data", []):
        for para in article.get("paragraphs", []):
            for qa in para.get("qas", []):
                answers = qa.get("answers", [])
                rows.append({
                    "id": qa["id"],
                    "title": article.get("title", ""),
                    "context": para["context"],
                    "question": qa["question"],
                    "answers": {
                        "text": [a["text"] for a in answers],
                        "answer_start": [a["answer_start"] for a in answers],
                    },
                    "is_impossible": qa.get("is_impossible", False),
                })
    return rows


def _load_hub(spec: DatasetSpec, split: str) -> list[Row]:
    """A Hub dataset id (needs network; kept as the real code path for online users)."""
    from datasets import load_dataset

    try:
        ds = load_dataset(spec.path, spec.name, revision=spec.revision, split=split)
    except Exception as err:
        raise DataError(
            f"could not load Hub dataset '{spec.path}' split '{split}': {one_line(err, 300)} — "
            "check the id and your network, or point the task at local files with --data"
        ) from None
    return [dict(r) for r in ds]


def get_field(row: Row, path: str) -> Any:
    """``a.b`` looks up ``row['a']['b']``; raises KeyError naming the missing part."""
    value: Any = row
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(part)
    return value
