"""The ``llmbench`` command line: run | tasks | runs | show | serve | finetune | report | compare | gate."""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llmbench.cli.options import DEFAULT_STORE, StoreOpt, check_run_args, console, err_console, parse_kv
from llmbench.errors import require_extra
from llmbench.types import REQUEST_KINDS

if TYPE_CHECKING:
    from rich.console import Console

    from llmbench.store import ResultStore, RunInfo

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Evaluate language models on classification, translation, QA and summarization. "
                       "Exit codes: 0 ok, 1 regression (gate), 2 user error or cannot decide, 3 internal "
                       "error (--debug shows the traceback).")


def _print_version(value: bool) -> None:
    if value:
        from llmbench._version import __version__
        from llmbench.errors import EXIT_OK

        console.print(f"llmbench {__version__}", highlight=False)
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Print the traceback of an internal error "
                                        "(also LLMBENCH_DEBUG=1; accepted anywhere on the line).")] = False,
) -> None:
    """Evaluate language models on classification, translation, QA and summarization."""


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


@app.command("tasks")
def tasks_cmd(
    args: Annotated[list[str] | None, typer.Argument(
        help="Python task files to import first (their @register_task classes are listed too); or "
             "'convert lm-eval:PATH' to write the llmbench task file of an lm-evaluation-harness one.",
        show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="With convert: folder to write NAME.yaml "
                                             "files to (default: print the YAML).")] = None,
) -> None:
    """List built-in and plugin tasks with their kind, scoring modes and metrics
    (`tasks convert lm-eval:PATH` translates lm-eval task files)."""
    if args and args[0] == "convert":
        if len(args) != 2:
            raise typer.BadParameter("give one lm-eval reference: llmbench tasks convert lm-eval:PATH [-o DIR]")
        from llmbench.cli.bridge import convert_cmd

        convert_cmd(args[1], out)
        return
    if out is not None:
        raise typer.BadParameter("--out applies to 'tasks convert lm-eval:PATH' only")
    from rich.table import Table

    from llmbench.tasks import TaskError, list_tasks, load_task
    from llmbench.tasks.python_file import import_task_file

    for file in args or ():
        import_task_file(Path(file))

    table = Table("task", "kind", "scoring", "metrics", "source")
    for name, origin in list_tasks():
        try:
            t = load_task(origin if origin.endswith(".yaml") else name)
            table.add_row(name, t.kind, ", ".join(t.scoring), ", ".join(m.name for m in t.metrics), origin)
        except TaskError as err:
            table.add_row(name, "[red]error[/red]", "", str(err), origin)
    console.print(table)


@app.command("run")
def run_cmd(
    model: Annotated[list[str], typer.Option("--model", "-m", help="hf:PATH | openai:MODEL | baseline:NAME")] = [],  # noqa: B006
    task: Annotated[list[str], typer.Option("--task", "-t", help="Task file or name.")] = [],  # noqa: B006
    suite: Annotated[Path | None, typer.Option(help="Suite file (models x tasks x options).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate a seeded sub-sample of N per task.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Ignore the suite's sample cap.")] = False,
    seed: Annotated[int | None, typer.Option(help="Seed for sub-sampling and bootstrap (few-shot examples are "
                                             "drawn with the task's prompt.fewshot.seed).")] = None,
    model_arg: Annotated[list[str], typer.Option("--model-arg", help="Adapter option KEY=VALUE (all models).")] = [],  # noqa: B006
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL for openai: models.")] = None,
    chat: Annotated[bool | None, typer.Option("--chat/--no-chat", help="Render prompts as chat messages.")] = None,
    data: Annotated[str | None, typer.Option(help="Local file to use as the task's data.")] = None,
    scoring: Annotated[str | None, typer.Option(help="Force a scoring mode the task accepts: "
                                                + " | ".join(REQUEST_KINDS) + ".")] = None,
    tag: Annotated[list[str], typer.Option(help="Tag the runs (e.g. nightly).")] = [],  # noqa: B006
    perturb: Annotated[list[str], typer.Option("--perturb", help="Also run each task with its input perturbed "
                                               "(typo, case, whitespace, punctuation, contraction, expansion, "
                                               "confusables; NAME:key=value), reported as robustness; "
                                               "repeatable.")] = [],  # noqa: B006
    repeats: Annotated[int, typer.Option(min=1, max=100, help="Answer every sample K times with decoding seeds "
                                         "seed..seed+K-1 (models that sample); the report shows the "
                                         "between-repeat noise and the gate averages the repeats.")] = 1,
    store: StoreOpt = DEFAULT_STORE,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the response cache.")] = False,
    resamples: Annotated[int | None, typer.Option(min=0, help="Bootstrap resamples for confidence intervals.")] = None,
    json_dir: Annotated[Path | None, typer.Option("--json-dir", help="Write a JSON export per run here.")] = None,
    executor: Annotated[str | None, typer.Option(help="Where models answer: local (this process, the default) or "
                                                 "ray (replicas on a Ray cluster; see the README).")] = None,
    checkpoint_seconds: Annotated[float | None, typer.Option(
        "--checkpoint-seconds", min=0.01, help="Commit answers to the response cache about this often "
                                               "(default 30), so an interrupted run resumes from there.")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Join this Ray cluster (auto | HOST:PORT) instead of starting a local Ray "
                              "instance (implies --executor ray).")] = None,
) -> None:
    """Evaluate models on tasks; prints every metric with its 95% CI and stores the runs."""
    _quiet_libraries()
    from llmbench.cli.run import execute_plan
    from llmbench.errors import Interrupted
    from llmbench.executors import EXECUTORS
    from llmbench.plan import RunPlan, plan_from_args, plan_from_suite

    check_run_args(models=model, seed=seed, resamples=resamples, tags=tag, json_dir=json_dir, base_url=base_url)
    options = parse_kv(model_arg, "--model-arg")
    if base_url:
        options["base_url"] = base_url
    if scoring is not None and scoring not in REQUEST_KINDS:
        raise typer.BadParameter(f"--scoring '{scoring}' is not a mode — use {' | '.join(REQUEST_KINDS)}")
    if suite is not None:
        if scoring is not None:
            raise typer.BadParameter("--scoring applies to --model runs; in a suite set 'scoring:' per model")
        if model or task or perturb or repeats != 1:
            raise typer.BadParameter("give either --suite or --model/--task/--perturb/--repeats, not both (a "
                                     "suite sets 'perturb:' and 'repeats:')")
        plan: RunPlan = plan_from_suite(suite, limit=limit, full=full, seed=seed, tags=tuple(tag),
                                        resamples=resamples, extra_options=options)
    else:
        if not model or not task:
            raise typer.BadParameter("give at least one --model and one --task (or --suite FILE)")
        plan = plan_from_args(model, task, limit=limit, seed=seed, options=options, chat=chat,
                              data=data, tags=tuple(tag), resamples=resamples, scoring=scoring,
                              perturb=tuple(perturb), repeats=repeats)
    if executor is not None and executor not in EXECUTORS:
        raise typer.BadParameter(f"--executor '{executor}' is not an executor — use {' or '.join(EXECUTORS)}")
    if executor is not None or ray_address is not None:  # the command line wins over the suite
        plan = dataclasses.replace(plan, executor=executor or ("ray" if ray_address else plan.executor),
                                   ray_address=ray_address or plan.ray_address)
    try:
        code = execute_plan(plan, store=store, use_cache=not no_cache, json_dir=json_dir, console=console,
                            checkpoint_seconds=checkpoint_seconds)
    except Interrupted as err:
        # typer turns an interrupt into exit 130 before the boundary sees it: say what was saved here
        err_console.print(f"interrupted — {err.saved}", markup=False, highlight=False, soft_wrap=True)
        raise
    raise typer.Exit(code)


@app.command("runs")
def runs_cmd(
    store: StoreOpt = DEFAULT_STORE,
    task: Annotated[str | None, typer.Option(help="Only runs of this task.")] = None,
    model: Annotated[str | None, typer.Option(help="Only runs whose model name contains this.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag.")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Delete failed and interrupted runs (never complete, "
                                        "incomplete or live ones), then list what is left.")] = False,
    rm: Annotated[list[str], typer.Option("--rm", help="Delete the runs a reference names (run id, unique "
                                          "prefix, batch id, last:TAG, prev:TAG); repeatable.")] = [],  # noqa: B006
    csv: Annotated[bool, typer.Option("--csv", help="Print the listed runs as CSV (one row per run, "
                                      "every metric value in its own column) instead of a table.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Show every column, however narrow the terminal.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete with --rm without asking (needed where "
                                      "there is no terminal to ask, e.g. CI).")] = False,
) -> None:
    """List stored runs: status (running only while its process lives), batch, primary metric."""
    from llmbench.store import open_existing

    db = open_existing(store)  # never creates a store; a stub (no tables) is an error, not an empty list
    try:
        _list_runs(db, task=task, model=model, tag=tag, prune=prune, rm=rm, csv=csv, wide=wide, yes=yes)
    finally:
        db.close()  # --rm/--prune wrote: fold the log into the file


def _list_runs(db: ResultStore, *, task: str | None, model: str | None, tag: str | None, prune: bool,
               rm: list[str], csv: bool, wide: bool, yes: bool) -> None:
    from rich.markup import escape

    from llmbench.report.console import runs_table, runs_width
    from llmbench.store import state

    if rm:
        _remove_runs(db, rm, err_console if csv else console, yes=yes)  # CSV on stdout stays clean
    if csv:
        _print_csv(db, [r for r in db.runs(task=task, tag=tag) if model is None or model in r.model])
        return
    if prune:
        removed = db.prune()
        console.print(f"removed {len(removed)} failed or interrupted run(s)"
                      + (f": {', '.join(r.id for r in removed)}" if removed else ""), highlight=False)
    # columns give way by priority to a narrow terminal (model, task, primary, status always stay);
    # ids are never shortened: users copy them into `show`/`compare`
    rows: list[dict[str, str]] = []
    failed: list[str] = []
    for r in db.runs(task=task, tag=tag):
        if model is not None and model not in r.model:
            continue
        prim = next((m.value for m in db.metrics(r.id) if m.value.name == r.primary_metric), None)
        value = f"{r.primary_metric}={prim.value:.4f}" if prim else "-"
        status = state(r)
        if status == "failed" and r.reason:
            failed.append(f"{r.id}: {r.reason}")
        rows.append({"run": r.id, "batch": "=run" if r.batch_id == r.id else r.batch_id,
                     "created": r.created_at[:19].replace("T", " "), "status": status, "model": r.model,
                     "task": r.task, "mode": r.scoring_mode, "primary": value, "n": str(r.n_samples),
                     "tags": ",".join(r.tags)})
    table, hidden = runs_table(rows, console.width, wide=wide)
    if wide:  # a console as wide as the table: every column whole, the terminal wraps the lines
        from rich.console import Console as WideConsole

        WideConsole(width=max(console.width, runs_width(rows)), highlight=False).print(table)
    else:
        console.print(table)
    if hidden:
        console.print(f"[dim]{len(rows)} run(s); hidden at {console.width} cols: {', '.join(hidden)} "
                      "(--wide shows all)[/dim]", highlight=False)
    for line in failed:
        console.print(f"[red]failed[/red] {escape(line)}", highlight=False, soft_wrap=True)


def _remove_runs(db: ResultStore, refs: list[str], out: Console, *, yes: bool = False) -> None:
    """Resolve every reference first (an ambiguous or unknown one deletes nothing), refuse live
    runs, ask (unless ``--yes``), then delete in one transaction."""
    from llmbench.store import StoreError, resolve, state

    doomed = {r.id: r for ref in refs for r in resolve(db, ref).runs}
    live = [r.id for r in doomed.values() if state(r) == "running"]
    if live:
        raise StoreError(f"run(s) {', '.join(live)} are still running — wait for them or stop them first")
    if not yes and not _confirm_delete(list(doomed)):
        out.print("nothing deleted", highlight=False)
        return
    db.delete(list(doomed))
    out.print(f"removed {len(doomed)} run(s): {', '.join(doomed)}", highlight=False)


def _confirm_delete(ids: list[str]) -> bool:
    """``runs --rm 2026`` (a prefix) used to delete at once: ask on a terminal, refuse without one."""
    from llmbench.errors import UserError

    shown = ", ".join(ids[:5]) + (f", … ({len(ids)} runs)" if len(ids) > 5 else "")
    if not sys.stdin.isatty():
        raise UserError(f"runs --rm would delete {len(ids)} run(s) ({shown}) and there is no terminal to ask — "
                        "pass --yes to confirm")
    return bool(typer.confirm(f"delete {len(ids)} run(s): {shown}?", default=False, err=True))


def _print_csv(db: ResultStore, runs: list[RunInfo]) -> None:
    """One row per run: what it was, its counts and usage, and every metric value as a column."""
    import csv as csv_module

    values = {r.id: {m.value.name: m.value.value for m in db.metrics(r.id)} for r in runs}
    metric_names = sorted({name for v in values.values() for name in v})
    fields = ["run_id", "batch_id", "created_at", "status", "model", "task", "task_version", "scoring_mode",
              "primary_metric", "n_samples", "n_errors", "tags", *metric_names]
    writer = csv_module.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in runs:
        writer.writerow({"run_id": r.id, "batch_id": r.batch_id, "created_at": r.created_at, "status": r.status,
                         "model": r.model, "task": r.task, "task_version": r.task_version,
                         "scoring_mode": r.scoring_mode, "primary_metric": r.primary_metric,
                         "n_samples": r.n_samples, "n_errors": r.n_errors, "tags": ",".join(r.tags),
                         **values[r.id]})


@app.command("show")
def show_cmd(
    run_id: Annotated[str, typer.Argument(help="Run id or unique prefix, batch id, last:TAG or prev:TAG "
                                          "(every run of a batch is shown).")],
    store: StoreOpt = DEFAULT_STORE,
    samples: Annotated[int, typer.Option(help="Also print the first N samples in full: the prompt as sent, "
                                         "the raw output, the parsed prediction, per-choice log-likelihoods, "
                                         "tokens, latency, error.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full JSON export (every sample with "
                                          "the same fields).")] = False,
    fmt: Annotated[str | None, typer.Option("--format", help="lm-eval: write lm-eval-shaped results_*.json "
                                            "and samples_*.jsonl to --out.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for --format files.")] = Path("."),
) -> None:
    """Scores of one run with confidence intervals; per-sample records on request."""
    import json

    from rich.markup import escape

    from llmbench.cli.run import flag_lines, metrics_table, sample_lines, usage_line
    from llmbench.store import open_existing, resolve, state

    db = open_existing(store)  # a read command never creates a store
    selection = resolve(db, run_id)  # the grammar of compare and gate; ambiguity is an error
    if fmt is not None:  # another harness's layout (llmbench/bridge, issue 27)
        from llmbench.cli.bridge import show_as

        show_as(db, selection.runs, fmt, out)
        return
    if as_json:
        exports = [db.export_json(info.id) for info in selection.runs]
        body = exports[0] if len(exports) == 1 else exports
        sys.stdout.write(json.dumps(body, indent=1, default=str) + "\n")
        return
    for info in selection.runs:
        console.print(f"[bold]{info.id}[/bold]  {escape(info.model)} on {escape(info.task)} (v{info.task_version})  "
                      f"mode={info.scoring_mode} ({info.scoring_method})  status={state(info)}  batch={info.batch_id}")
        console.print(f"created {info.created_at}  samples={info.n_samples} errors={info.n_errors}  "
                      f"cache hits={info.cache_hits} misses={info.cache_misses}  tags={escape(','.join(info.tags))}")
        if info.reason:
            console.print(f"[red]reason:[/red] {escape(info.reason)}", highlight=False, soft_wrap=True)
        for note in info.notes:  # how the adapter computed the answers (a fallback it took)
            console.print(f"[dim]note:[/dim] {escape(note)}", highlight=False, soft_wrap=True)
        console.print(metrics_table([m.value for m in db.metrics(info.id)], info.primary_metric))
        usage = info.run_usage
        if line := usage_line(usage):
            console.print(line, highlight=False, soft_wrap=True)
        for line in flag_lines(usage):
            console.print(f"[yellow]{line}[/yellow]", highlight=False, soft_wrap=True)
        for rec in db.samples(info.id)[:samples] if samples else []:
            for line in sample_lines(rec):
                console.print(escape(line), highlight=False, soft_wrap=True)
    from llmbench.cli.judge import print_judgements
    from llmbench.cli.robustness import print_for_runs

    print_for_runs(console, db, selection.runs)  # perturbed runs beside their clean runs (report.robustness)
    print_judgements(console, db, selection.runs)  # its judged runs (a task's or suite's judge:)


@app.command("serve")
def serve_cmd(
    model: Annotated[str, typer.Argument(help="Model spec, e.g. hf:path/to/model")],
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8000,
    model_arg: Annotated[list[str], typer.Option("--model-arg", help="Adapter option KEY=VALUE.")] = [],  # noqa: B006
    name: Annotated[str | None, typer.Option(help="Model name the API reports (default: the spec).")] = None,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar="LLMBENCH_SERVE_API_KEY", show_default=False,
        help="Require 'Authorization: Bearer KEY' on every endpoint (needed to bind a non-loopback "
             "address; prefer the environment variable, a command line is visible to other users).")] = None,
    max_body_bytes: Annotated[int, typer.Option(
        "--max-body-bytes", min=1024, help="Largest request body accepted; a bigger one is answered 413 "
        "before it is read (default 4 MiB).")] = 4 * 2**20,
) -> None:
    """Serve a local model as an OpenAI-compatible API (/v1/completions, /v1/chat/completions)."""
    from llmbench.serve.auth import check_bind

    check_bind(host, api_key)  # before the model loads
    require_extra("serve", "llmbench serve", "fastapi", "uvicorn")
    _quiet_libraries()
    from llmbench.models import load_adapter
    from llmbench.serve.app import serve

    adapter = load_adapter(model, parse_kv(model_arg, "--model-arg"))
    serve(adapter, name or model, host=host, port=port, api_key=api_key, max_body_bytes=max_body_bytes)


@app.command("finetune")
def finetune_cmd(
    task: Annotated[str, typer.Option(help="Classification task (file or name) whose train split is used.")],
    base: Annotated[str, typer.Option(help="Base model folder, Hub id, or 'minilm' (the packaged all-MiniLM-L6-v2).")],
    out: Annotated[Path, typer.Option(help="Output folder for the fine-tuned model.")],
    seed: Annotated[int, typer.Option(help="Seed (training is deterministic for a seed).")] = 0,
    epochs: Annotated[float, typer.Option(help="Training epochs.")] = 1.0,
    max_train_samples: Annotated[int | None, typer.Option(help="Cap the training set.")] = None,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 32,
    learning_rate: Annotated[float, typer.Option(help="Learning rate (2e-4 suits small encoders).")] = 2e-4,
) -> None:
    """Fine-tune a sequence-classification head on a task's train split."""
    _quiet_libraries()
    from llmbench.finetune import FinetuneConfig, finetune

    result = finetune(FinetuneConfig(task=task, base=base, out=out, seed=seed, epochs=epochs,
                                     max_train_samples=max_train_samples, batch_size=batch_size,
                                     learning_rate=learning_rate), console=console)
    console.print(f"saved {result.out}  validation accuracy={result.validation_accuracy:.4f} "
                  f"({result.steps} steps, {result.seconds:.0f} s)")


def _register_commands() -> None:
    # Imported, never guarded: a bug in a command module must fail loudly, not remove commands.
    from llmbench.cli.report import register

    register(app)
    from llmbench.cli.bridge import register as register_bridge  # import, tasks convert (issue 27)

    register_bridge(app)
    from llmbench.cli.judge import register as register_judge

    register_judge(app)
    from llmbench.cli.power import register as register_plan  # `llmbench plan` (samples to detect a drop)

    register_plan(app)


def _command() -> Any:
    """The click command of ``app``, with on/off flags shown as flags: typer prints a type
    column (``<bool>``) beside ``--no-cache`` that reads as if the flag took a value. (Typer
    vendors its own click, so the options are recognised by their ``is_flag``.)"""
    group = typer.main.get_command(app)

    def flags(command: Any) -> None:
        for param in command.params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
        for sub in getattr(command, "commands", {}).values():
            flags(sub)

    flags(group)
    return group


def _debug_requested(argv: list[str]) -> bool:
    """``--debug`` anywhere on the line (or LLMBENCH_DEBUG=1) shows internal tracebacks."""
    if "--debug" in argv:
        argv.remove("--debug")
        return True
    return os.environ.get("LLMBENCH_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> None:
    """The error boundary: every outcome leaves through one of the documented exit codes.

    A ``UserError`` (or a usage error from click) is one escaped line and exit 2; an
    interrupt is exit 130; anything else is a bug: one line that says so, exit 3 (never 1,
    which the nightly recipe reads as "regression").
    """
    from typer.exceptions import TyperException

    from llmbench.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError, one_line

    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    _register_commands()
    try:
        # Not standalone: click hands usage errors to us, so they too are one line, not a box.
        code = _command().main(args=args, prog_name="llmbench", standalone_mode=False)
    except TyperException as err:  # click's usage errors (typer vendors click)
        ctx = getattr(err, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        if message:  # empty when no command was given: the help text has been printed instead
            _print_error(f"{one_line(message, None)}{hint}")
        sys.exit(getattr(err, "exit_code", EXIT_USER_ERROR))
    except (typer.Abort, KeyboardInterrupt):
        code = EXIT_INTERRUPTED
    except UserError as err:
        _print_error(one_line(err, None))
        sys.exit(err.exit_code)
    except Exception as err:  # the boundary: a bug, reported as one line and exit 3
        if debug:
            import traceback

            traceback.print_exc()
        where = "the traceback is above" if debug else "rerun with --debug for the traceback"
        _print_error(f"internal error (a bug in llmbench, please report it): {type(err).__name__}: "
                     f"{one_line(err, 300)} — {where}")
        sys.exit(EXIT_INTERNAL)
    if code == EXIT_INTERRUPTED:  # typer reports Ctrl-C as this code, not as an exception
        err_console.print(f"interrupted — run it again to resume from the cache: llmbench {shlex.join(args)}",
                          markup=False, highlight=False, soft_wrap=True)
    sys.exit(code if isinstance(code, int) else 0)


def _print_error(message: str) -> None:
    from rich.markup import escape

    # Escaped: a label such as `[/INST]` in a message is text, not rich markup.
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)


def entry() -> None:
    """The console script: ``main``, then leave without tearing the interpreter down.

    With torch and transformers loaded, Python's module and object teardown takes about a
    second after the work is done. By the time ``main`` returns, every result is committed
    and the cache is closed, so this flushes the streams, runs the atexit handlers and exits
    at once. (In-process callers, such as tests, use ``main``, which raises SystemExit.)
    """
    import atexit
    import contextlib
    import logging

    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if done.code is not None and not isinstance(done.code, int):
            print(done.code, file=sys.stderr)
    logging.shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (e.g. `llmbench runs | head`)
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
