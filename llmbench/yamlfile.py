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


def read_mapping(path: Path, *, what: str, keys: str, error: type[UserError]) -> dict[str, Any]:
    """The top-level mapping of the YAML file ``path``, or ``error`` as one line that names
    the file (and the line where there is one) and how to fix it.

    ``what`` names the file in messages ("task", "suite"); ``keys`` lists a few of its
    top-level keys, for the "must be a mapping" hint ("name:, kind:, dataset:").
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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
