"""What a run ran on: package versions, interpreter, hardware, task files' git commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from contextlib import suppress
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("llmbench", "torch", "transformers", "tokenizers", "datasets", "scikit-learn",
            "sacrebleu", "rouge-score", "evaluate", "openai", "numpy")


@lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        with suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def git_commit(path: Path) -> str | None:
    """The commit of the repository holding ``path`` (+ '-dirty' if it has local edits)."""
    folder = path if path.is_dir() else path.parent
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--", str(path)],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head


def environment(task_source: str | None = None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "cpu_count": os.cpu_count(),
        "packages": _versions(),
    }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        env["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            env["cuda_device"] = torch.cuda.get_device_name(0)
    if task_source and Path(task_source).exists():
        env["task_git_commit"] = git_commit(Path(task_source))
    return env
