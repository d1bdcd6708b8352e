"""``llmbench import lm-eval|inspect`` and ``llmbench tasks convert lm-eval:PATH``.

Registered by ``cli.main._register_commands``. ``tasks`` stays a command (the task list) and
gains the ``convert`` subcommand: the existing ``tasks`` command becomes the group's default.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmbench.cli.options import DEFAULT_STORE, StoreOpt, console

if TYPE_CHECKING:
    from llmbench.store import ResultStore, RunInfo

import_app = typer.Typer(no_args_is_help=True, help="Import another harness's results into the store "
                         "(lm-eval output folders, inspect_ai logs).")


@import_app.command("lm-eval")
def import_lmeval(
    results: Annotated[Path, typer.Argument(help="lm-eval's --output_path folder (results_*.json and "
                                            "--log_samples samples_*.jsonl) or one results_*.json.")],
    store: StoreOpt = DEFAULT_STORE,
    aggregate_only: Annotated[bool, typer.Option("--aggregate-only", help="Keep lm-eval's task numbers "
                                                 "only, without per-sample records.")] = False,
    label: Annotated[str | None, typer.Option("--label", help="Name the model (default: lm-eval:<backend>:"
                                              "<model name>).")] = None,
) -> None:
    """Store lm-eval runs: per-sample records replayed through the translated task, else aggregate-only."""
    from llmbench.bridge.lmeval import import_results
    from llmbench.store import ResultStore

    db = ResultStore(store)
    _print(db, import_results(db, results, aggregate_only=aggregate_only, label=label))


@import_app.command("inspect")
def import_inspect(
    log: Annotated[Path, typer.Argument(help="An inspect_ai log (.eval or .json) or a folder of them.")],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Store inspect_ai runs with their per-sample scores (paired by sample id and epoch)."""
    from llmbench.bridge.inspect_log import import_logs
    from llmbench.store import ResultStore

    db = ResultStore(store)
    _print(db, import_logs(db, log))


def _print(db: ResultStore, run_ids: list[str]) -> None:
    from rich.markup import escape

    for run_id in run_ids:
        info = db.run(run_id)
        kind = "aggregate-only" if "aggregate-only" in info.tags else f"{info.n_samples} samples"
        console.print(f"imported {info.id}  {escape(info.model)} on {escape(info.task)}  ({kind})", highlight=False)


def convert_cmd(
    ref: Annotated[str, typer.Argument(help="lm-eval:PATH — an lm-eval task file or a folder of them.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder to write NAME.yaml files to "
                                             "(default: print the YAML).")] = None,
) -> None:
    """Write the llmbench task file equivalent to an lm-eval task file (refused keys: one line)."""
    from llmbench.tasks.lmeval import PREFIX, LmEvalError, task_files, to_yaml, translate

    if not ref.startswith(PREFIX):
        raise LmEvalError(f"'{ref}' is not an lm-eval reference — write lm-eval:PATH")
    path = Path(ref.removeprefix(PREFIX))
    for file in task_files(path):
        mapping = translate(file)
        text = to_yaml(mapping, file)
        if out is None:
            console.out(text, end="", highlight=False)
            continue
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{mapping['name']}.yaml"
        target.write_text(text, encoding="utf-8")
        console.print(f"wrote {target}", highlight=False)


def show_as(db: ResultStore, runs: Sequence[RunInfo], fmt: str, out: Path) -> None:
    """``llmbench show RUN --format lm-eval``: each run in lm-eval's output layout under ``out``."""
    from llmbench.bridge import BridgeError
    from llmbench.bridge.lmeval import export_run

    if fmt != "lm-eval":
        raise BridgeError(f"--format {fmt!r} is not known — use --format lm-eval")
    for info in runs:
        for path in export_run(db, info, out):
            console.print(f"wrote {path}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``import`` to the main CLI (once: main() may run twice in a process). ``tasks convert``
    is dispatched by the ``tasks`` command itself, which also takes Python task files."""
    if any(g.name == "import" for g in app.registered_groups):
        return
    app.add_typer(import_app, name="import")


__all__ = ["DEFAULT_STORE", "register"]
