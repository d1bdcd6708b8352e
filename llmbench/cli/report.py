"""``llmbench report | compare | gate`` — registered on the main typer app by ``register``.

Exit codes: ``report`` and ``compare`` 0 on success; ``gate`` 0 = every gated value tested and
none dropped significantly, 1 = a metric dropped significantly, 2 = it cannot decide (unknown
reference, nothing shared, an untested value, a missing or incomplete candidate pair, another
model behind a label, a mismatched benchmark, or no baseline yet) — see ``report.gate``.
User errors print one line on stderr and exit 2 here, so the codes hold
whether or not the main CLI lists ``ReportError`` among its user errors.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from llmbench.cli.options import DEFAULT_STORE, StoreOpt, check_writable_folder
from llmbench.cli.select import select_cmd
from llmbench.errors import EXIT_UNDECIDED
from llmbench.report.jsonsafe import finite
from llmbench.store import ResultStore, open_existing

if TYPE_CHECKING:
    from llmbench.report.compare import Comparison
    from llmbench.report.power import Detectable
    from llmbench.report.robustness import Robustness


class Format(StrEnum):
    html = "html"
    markdown = "markdown"
    json = "json"


# Bounded as `run --resamples` is (llmbench.suite.MAX_RESAMPLES): a billion would run for hours.
Resamples = Annotated[int, typer.Option(help="Paired bootstrap resamples (0: no CI).", min=0, max=100_000)]
Seed = Annotated[int, typer.Option(help="Bootstrap seed.", min=0, max=2**32 - 1)]
Alpha = Annotated[float, typer.Option(help="Significance level of the paired tests.")]
AllowMetric = Annotated[list[str], typer.Option(
    "--allow-metric", help="Let this evaluate:<path> metric module be imported to rebuild stored values "
    "(code the store names is never imported otherwise); repeatable.")]


def report_cmd(
    out: Annotated[Path, typer.Option(help="Output folder ('-': stdout, markdown/json).")] = Path("leaderboard"),
    store: StoreOpt = DEFAULT_STORE,
    format: Annotated[Format, typer.Option("--format", "-f", help="html (static site), markdown, json.")] = Format.html,
    alpha: Alpha = 0.05,
    resamples: Resamples = 1000,
    seed: Seed = 0,
    max_samples: Annotated[int | None, typer.Option(help="Samples per task kept for the browser.", min=1)] = 5000,
    with_samples: Annotated[bool, typer.Option("--with-samples", help="json: include the samples too.")] = False,
    allow_metric: AllowMetric = [],  # noqa: B006
) -> None:
    """Write the leaderboard (overview, charts, per-task pages) from the results store."""
    from llmbench.report import html, leaderboard, text

    _check_alpha(alpha)
    _allow_metrics(allow_metric)
    if str(out) == "-" and format is Format.html:
        raise _report_error("--out - (stdout) works with --format markdown or json; html needs a folder")
    if str(out) != "-":  # before the (long) build: an --out that is a file or unwritable is one line
        check_writable_folder(out, "--out")
    lb = leaderboard.build(open_existing(store), alpha=alpha, n_resamples=resamples, seed=seed,
                           max_samples=max_samples)
    if format is Format.html:
        index = html.write_site(lb, out)
        Console().print(f"wrote {escape(str(index))} ({_n(len(lb.rows), 'model')} × {_n(len(lb.columns), 'task')}) "
                        "— open it from disk", highlight=False, soft_wrap=True)
        return
    body = text.to_markdown(lb) if format is Format.markdown else text.to_json(lb, with_samples=with_samples)
    if str(out) == "-":
        sys.stdout.write(body)
        return
    out.mkdir(parents=True, exist_ok=True)
    target = out / ("leaderboard.md" if format is Format.markdown else "leaderboard.json")
    target.write_text(body, encoding="utf-8")
    Console().print(f"wrote {escape(str(target))}", highlight=False, soft_wrap=True)


def compare_cmd(
    run_a: Annotated[str, typer.Argument(help="A: run id, prefix, batch id, last:TAG or prev:TAG.")],
    run_b: Annotated[str, typer.Argument(help="B: same forms; differences are B − A.")],
    store: StoreOpt = DEFAULT_STORE,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    alpha: Alpha = 0.05,
    resamples: Resamples = 1000,
    seed: Seed = 0,
    allow_metric: AllowMetric = [],  # noqa: B006
) -> None:
    """Compare two runs or batches: every shared metric with a paired 95% CI, p-value and flipped samples."""
    from llmbench.report import console, refs
    from llmbench.report.compare import compare

    _check_alpha(alpha)
    _allow_metrics(allow_metric)
    db = open_existing(store)
    cmp = compare(db, refs.resolve(db, run_a), refs.resolve(db, run_b), n_resamples=resamples, seed=seed,
                  decide=True, alpha=alpha)
    cmp = _pool_repeats(db, cmp, resamples, seed)
    if not cmp.pairs:
        raise _report_error(f"{cmp.a.label} and {cmp.b.label} share no task — A has "
                            f"{', '.join(cmp.only_a) or 'nothing'}; B has {', '.join(cmp.only_b) or 'nothing'}")
    robust = _robustness(db, cmp, resamples, seed)
    if as_json:
        data = {**cmp.to_json(), "robustness": [r.to_json() for r in robust]}
        sys.stdout.write(json.dumps(finite(data), indent=1, ensure_ascii=False) + "\n")
        console.print_warnings(Console(stderr=True), [*cmp.warnings, *_mismatch_lines(cmp)])
        return
    console.print_comparison(Console(), cmp, alpha)
    if robust:
        from llmbench.cli.robustness import table

        Console().print(table(robust))


def _pool_repeats(db: ResultStore, cmp: Comparison, resamples: int, seed: int) -> Comparison:
    """Runs made with --repeats K: each value tested on the per-sample means over the K draws, the
    repeat runs not gated one by one (``report.noise.average_repeats``); unchanged without repeats."""
    from llmbench.report.noise import average_repeats

    return average_repeats(db, cmp, n_resamples=resamples, seed=seed)


def _robustness(db: ResultStore, cmp: Comparison, resamples: int, seed: int) -> list[Robustness]:
    """Both sides' runs under perturbation (``report.robustness``), for ``compare``."""
    from llmbench.report.robustness import for_runs

    return for_runs(db, [*cmp.a.runs, *cmp.b.runs], n_resamples=resamples, seed=seed)


def gate_cmd(
    baseline: Annotated[str, typer.Option(help="Baseline: run id, prefix, batch id, last:TAG or prev:TAG.")],
    candidate: Annotated[str, typer.Option(help="Candidate, same forms (e.g. last:nightly).")],
    store: StoreOpt = DEFAULT_STORE,
    max_drop: Annotated[float, typer.Option(help="Ignore drops up to this size (metric units).", min=0.0)] = 0.0,
    alpha: Alpha = 0.05,
    metric: Annotated[list[str], typer.Option("--metric", help="Gate only these values/metrics ('primary' = "
                                              "each task's primary); repeatable. Default: all.")] = [],  # noqa: B006
    allow_mismatch: Annotated[bool, typer.Option("--allow-mismatch", help="Compare runs made with another "
                                                 "task version/prompt/scoring mode (printed).")] = False,
    allow_untested: Annotated[bool, typer.Option("--allow-untested", help="Pass although some gated values "
                                                 "could not be tested (printed).")] = False,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="Pass although baseline (model, task) "
                                                "pairs are missing or incomplete in the candidate (printed).")] = False,
    allow_model_change: Annotated[bool, typer.Option("--allow-model-change", help="Compare although a label "
                                                     "names another model in the candidate (printed).")] = False,
    allow_metric: AllowMetric = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Also write the JSON decision here "
                                                  "(CI artifact; written for every outcome).")] = None,
    resamples: Resamples = 1000,
    seed: Seed = 0,
) -> None:
    """Exit 0 if every gated value was tested and none dropped significantly, 1 if one dropped,
    2 if the gate cannot decide (JSON "decision": pass | regression | cannot_decide | no_baseline)."""
    from llmbench.errors import UserError
    from llmbench.report import console, refs
    from llmbench.report.compare import compare
    from llmbench.report.gate import error_json, internal_error_json, no_baseline_json, run_gate

    def emit(data: dict[str, object]) -> str:
        body = json.dumps(finite(data), indent=1, ensure_ascii=False) + "\n"
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(body, encoding="utf-8")
        return body

    try:
        _check_alpha(alpha)
        _allow_metrics(allow_metric)
        db = open_existing(store)
        cand = refs.resolve(db, candidate)
        missing = _missing_baseline(db, baseline)
        if missing is not None:
            body = emit(no_baseline_json(baseline, candidate, missing))
            if as_json:
                sys.stdout.write(body)
            Console(stderr=as_json).print(f"NO BASELINE {escape(missing)} — nothing to gate against yet",
                                          highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_UNDECIDED)
        base = refs.resolve(db, baseline)
        result = run_gate(_pool_repeats(db, compare(db, base, cand, n_resamples=resamples, seed=seed), resamples,
                                        seed), max_drop=max_drop,
                          alpha=alpha, metrics=metric, allow_mismatch=allow_mismatch,
                          allow_untested=allow_untested, allow_missing=allow_missing,
                          allow_model_change=allow_model_change)
    except (typer.Exit, KeyboardInterrupt):
        raise
    except UserError as err:  # every user error, not only ReportError (a metric, a store): exit 2
        emit(error_json(str(err)))
        raise
    except Exception as err:  # a bug: exit 3 at the boundary, and the artifact still says so
        emit(internal_error_json(err))
        raise
    body = emit(result.to_json())
    if as_json:
        sys.stdout.write(body)
        err_console = Console(stderr=True)
        console.print_warnings(err_console, result.warnings)
        for line in (*(f"OPT-OUT {o}" for o in result.opt_outs), *(f"CANNOT DECIDE {r}" for r in result.reasons)):
            err_console.print(escape(line), highlight=False, soft_wrap=True)
    else:
        console.print_gate(Console(), result)
    _print_power(result.power, stderr=as_json)
    raise typer.Exit(result.code)


def _print_power(found: list[Detectable], *, stderr: bool) -> None:
    """The smallest drop each gated value could have caught (``report.power``), after the decision."""
    from llmbench.report.power import lines

    out = Console(stderr=stderr)
    for line in lines(found):
        out.print(escape(line), highlight=False, soft_wrap=True)


def _missing_baseline(db: ResultStore, ref: str) -> str | None:
    """Why a ``last:TAG`` / ``prev:TAG`` baseline names no batch yet (the first night), else None.

    Only a tag reference can be "not yet": an id or prefix that resolves to nothing is a typo
    and stays a user error."""
    from llmbench.report.refs import batches_with_tag

    for prefix, need in (("last:", 1), ("prev:", 2)):
        if ref.startswith(prefix) and ref[len(prefix):]:
            tag = ref[len(prefix):]
            have = len(batches_with_tag(db.runs(), tag))
            if have < need:
                return f"'{ref}': {have} batch(es) tagged '{tag}' in the store, {ref} needs {need}"
    return None


def _allow_metrics(names: list[str]) -> None:
    from llmbench.metrics.registry import trust_code_metric

    for name in names:
        trust_code_metric(name)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _mismatch_lines(cmp: object) -> list[str]:
    pairs = getattr(cmp, "pairs", [])
    return [*(f"MISMATCH {p.title}: {m}" for p in pairs for m in p.mismatches),
            *(f"MODEL CHANGED {p.title}: {p.model_change}" for p in pairs if p.model_change)]


def _report_error(message: str) -> Exception:
    from llmbench.report.errors import ReportError

    return ReportError(message)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise _report_error(f"--alpha must be between 0 and 1, got {alpha}")


COMMANDS: dict[str, Callable[..., None]] = {"report": report_cmd, "compare": compare_cmd, "gate": gate_cmd,
                                            "select": select_cmd}


def register(app: typer.Typer) -> None:
    """Add report, compare and gate to the main CLI (called by ``llmbench.cli.main``)."""
    known = {c.name for c in app.registered_commands}
    for name, fn in COMMANDS.items():
        if name not in known:
            app.command(name)(fn)
