"""Where llmbench keeps its files, and whether a model name means a local folder or a Hub id.

Ground floor: imports nothing from the package, so the response cache, the GGUF converter,
the HF loader and fine-tuning all ask this one module. Each rule used to be written twice
and the copies drifted (only one cache root expanded ``~``; only one local-path test knew
that ``models/foo`` with a ``./models`` folder present is a mistyped path, not a Hub org).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CACHE_ENV = "LLMBENCH_CACHE"

# A Hub repository id: "name" or "org/name", letters, digits, '_', '-', '.'.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def cache_root() -> Path:
    """``$LLMBENCH_CACHE`` (``~`` expanded; empty counts as unset), else ``~/.cache/llmbench``.

    Everything llmbench caches lives below it: ``responses.sqlite``, ``gguf/``, ``arch/``.
    """
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "llmbench"


def expand_cache(value: str) -> str:
    """``$LLMBENCH_CACHE/rest`` (or ``${LLMBENCH_CACHE}/rest``) as that path below ``cache_root()``.

    Lets a suite keep its fine-tuned models in the one cache with everything else, including
    its default when the variable is unset, which a shell-style expansion cannot give: a job
    that points ``LLMBENCH_CACHE`` at a persisted folder then reuses the fine-tuned model too.
    Any other value is returned unchanged.
    """
    for token in ("${" + CACHE_ENV + "}", "$" + CACHE_ENV):
        if value == token or value.startswith(token + "/"):
            return str(cache_root().absolute()) + value[len(token):]  # a relative root: from the cwd, as for the cache
    return value


def is_hub_id(name: str) -> bool:
    """Whether ``name`` is shaped like a Hub repository id (it may still be a folder too)."""
    return _HUB_ID.match(name) is not None


def looks_local(path: str) -> bool:
    """Whether ``path`` must be a local folder: it exists, or it cannot be a Hub id.

    Explicitly relative or absolute paths (``./x``, ``/x``, ``~/x``) are local even when
    missing, so the error says "does not exist" instead of a Hub lookup failing offline.
    """
    p = Path(path).expanduser()
    if p.exists() or not is_hub_id(path) or path.startswith(("~", ".", "/")):
        return True
    # "models/foo" where ./models exists is a typo'd local path, not a Hub org
    return "/" in path and Path(path.split("/", 1)[0]).is_dir()
