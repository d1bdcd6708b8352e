"""Reading a YAML configuration file (a task, a suite) into a mapping, with one-line errors.

Ground floor: imports only ``llmbench.errors``, so both the task loader (a middle layer) and
the suite loader (the top) use it. The two used to carry their own copies of these four
checks, and the copies had already drifted (only one named the offending byte, only one
mentioned permissions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from llmbench.errors import UserError


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping (PyYAML keeps the last
    silently, so ``metrics:`` written twice would quietly drop the first list)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key '{key}' appears twice in one mapping (the last would win)", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_mapping(path: Path, *, what: str, keys: str, error: type[UserError]) -> dict[str, Any]:
    """The top-level mapping of the YAML file ``path``, or ``error`` as one line that names
    the file (and the line where there is one) and how to fix it.

    ``what`` names the file in messages ("task", "suite"); ``keys`` lists a few of its
    top-level keys, for the "must be a mapping" hint ("name:, kind:, dataset:").
    """
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except OSError as err:
        raise error(f"cannot read {what} file '{path}': {err.strerror} — check the path and its "
                    "permissions") from None
    except UnicodeDecodeError as err:
        text = path.read_bytes()
        line = text[: err.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not UTF-8 text (byte 0x{text[err.start]:02x}) — save the {what} "
                    "file as UTF-8") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error(f"{where}: invalid YAML ({getattr(err, 'problem', err)}) — fix the syntax") from None
    if not isinstance(raw, dict):
        raise error(f"{path}: a {what} file must be a YAML mapping ({keys}, ...) — write one "
                    "`key: value` setting per top-level line")
    return raw
