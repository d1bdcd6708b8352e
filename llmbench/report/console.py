"""Terminal output of ``compare`` and ``gate`` (rich tables; JSON lives on the result objects).

Every value a model or a task file wrote (model names, sample ids) is printed as plain text
through ``rich.text.Text`` / ``escape`` so that a sample id like ``[red]x`` is not read as
console markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from llmbench.report import fmt
from llmbench.report.compare import Comparison, Pair
from llmbench.report.gate import GateResult, group_regressions, regression_line
from llmbench.report.html import task_slug
from llmbench.report.paired import PairedValue

MAX_IDS = 20
#: Flipped samples printed with their text per list (the JSON keeps ``compare.MAX_TEXTS``).
MAX_TEXT_ROWS = 5


def _ids(ids: list[str], limit: int = MAX_IDS) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", … (+{len(ids) - limit} more)" if len(ids) > limit else "")


def _style(v: PairedValue, alpha: float) -> str:
    if v.p is None or v.p >= alpha or v.delta == 0:
        return ""
    return "red" if v.drop > 0 else "green"


#: The test names as the table prints them (short: the table fits 80 columns).
_TESTS = {"mcnemar-exact": "mcnemar", "paired-bootstrap": "bootstrap"}


def pair_table(pair: Pair, alpha: float = 0.05, only: list[PairedValue] | None = None) -> Table:
    """The values of a pair, one line each: numbers never wrap (an 80-column terminal used to
    split every CI over two lines); a long value name folds instead."""
    table = Table(box=None, header_style="bold underline", pad_edge=False, padding=(0, 1))
    for col, justify in (("value", "left"), ("A", "right"), ("B", "right"), ("B − A", "right"),
                         ("95% CI", "right"), ("p", "right"), ("test", "left")):
        table.add_column(col, justify=justify, no_wrap=col != "value",  # type: ignore[arg-type]
                         overflow="fold" if col == "value" else "ellipsis")
    for v in only if only is not None else pair.values:
        arrow = "" if v.higher_is_better else " (lower is better)"
        table.add_row(escape(v.name) + arrow, fmt.num(v.a, v.metric, extra=1), fmt.num(v.b, v.metric, extra=1),
                      fmt.num(v.delta, v.metric, sign=True, extra=1),
                      fmt.ci(v.ci_low, v.ci_high, v.metric, sign=True, extra=1), fmt.pval(v.p),
                      _TESTS.get(v.test, v.test),
                      style=_style(v, alpha))
    return table


def _pair_header(pair: Pair) -> str:
    a, b = pair.a, pair.b
    return (f"[bold]{escape(pair.task)}[/bold]  A: {escape(a.model)} ({a.id})  B: {escape(b.model)} ({b.id})  "
            f"shared samples: {pair.n_shared}")


def _clip(text: str | None, width: int) -> str:
    """One line of at most ``width`` characters (a long input is cut in the middle of nothing)."""
    flat = " ".join((text if text is not None else "(none)").split())
    return flat if len(flat) <= width else flat[: max(width - 1, 1)] + "…"


def _sample_lines(console: Console, pair: Pair, ids: list[str], seen: set[str],
                  limit: int = MAX_TEXT_ROWS) -> None:
    """Each flipped sample with its text: input, reference, A's and B's predictions, one line each
    (a sample already printed for another value of the pair is not printed again)."""
    width = max(40, min(console.width, 160) - 14)
    for sid in ids[:limit]:
        t = pair.texts.get(sid)
        if t is None or sid in seen:
            continue
        seen.add(sid)
        console.print(Text(f"      {sid}"), highlight=False)
        for label, value in (("input", t.input), ("reference", t.reference), ("A", t.a), ("B", t.b)):
            console.print(Text(f"        {label:<9} {_clip(value, width)}"), highlight=False)
    if len(ids) > limit:
        console.print(Text(f"      … {len(ids) - limit} more (--json lists them all)"), highlight=False)


def _flips(console: Console, v: PairedValue, pair: Pair | None = None, seen: set[str] | None = None) -> None:
    seen = set() if seen is None else seen
    if v.right_to_wrong is None or v.wrong_to_right is None:
        if v.largest_drops:
            rows = ", ".join(f"{s} ({fmt.num(x, v.metric)}→{fmt.num(y, v.metric)})" for s, x, y in v.largest_drops)
            console.print(f"    {escape(v.name)} largest per-sample drops: {escape(rows)}", highlight=False,
                          soft_wrap=True)
            if pair is not None:
                _sample_lines(console, pair, [s for s, _, _ in v.largest_drops], seen)
        return
    for word, ids in (("right → wrong", v.right_to_wrong), ("wrong → right", v.wrong_to_right)):
        console.print(f"    {escape(v.name)} {word} ({len(ids)}): {escape(_ids(ids)) or '—'}", highlight=False,
                      soft_wrap=True)
        if pair is not None:
            _sample_lines(console, pair, ids, seen)


def print_warnings(console: Console, warnings: list[str]) -> None:
    for w in warnings:
        console.print(f"[bold yellow]WARNING[/bold yellow] {escape(w)}", highlight=False, soft_wrap=True)


def print_comparison(console: Console, cmp: Comparison, alpha: float = 0.05) -> None:
    console.print(f"A = {escape(cmp.a.label)}   B = {escape(cmp.b.label)}   (B − A; paired over shared sample ids)",
                  highlight=False, soft_wrap=True)
    print_warnings(console, cmp.warnings)
    for pair in cmp.pairs:
        console.print()
        console.print(_pair_header(pair), highlight=False, soft_wrap=True)
        for m in pair.mismatches:
            console.print(f"  [bold red]MISMATCH[/bold red] {escape(m)} — these numbers are not comparable",
                          highlight=False, soft_wrap=True)
        if pair.model_change:
            console.print(f"  [bold red]MODEL CHANGED[/bold red] {escape(pair.model_change)}",
                          highlight=False, soft_wrap=True)
        for diff in pair.system:
            console.print(f"  system: {escape(diff)} (a property of each model, compared as it is)",
                          highlight=False, soft_wrap=True)
        line = cmp.verdict_line(pair)
        if line:
            console.print(f"  [bold]decision[/bold] (leaderboard, select): {escape(line)}", highlight=False,
                          soft_wrap=True)
        for note in pair.notes:
            console.print(f"  note: {escape(note)}", highlight=False, soft_wrap=True)
        if pair.values:
            console.print(pair_table(pair, alpha))
            for v in pair.values:
                if v.p is None:
                    console.print(f"  not tested: {escape(v.name)} — {escape(v.note or 'no test')}",
                                  highlight=False, soft_wrap=True)
            seen: set[str] = set()
            for v in _flip_values(pair.values):
                _flips(console, v, pair, seen)
            _page_hint(console, pair, _flip_values(pair.values))
    if cmp.only_a or cmp.only_b:
        console.print()
    if cmp.only_a:
        console.print(f"only in A: {escape(', '.join(cmp.only_a))}", highlight=False)
    if cmp.only_b:
        console.print(f"only in B: {escape(', '.join(cmp.only_b))}", highlight=False)


def print_gate(console: Console, result: GateResult) -> None:
    cmp = result.comparison
    console.print(f"gate: baseline = {escape(cmp.a.label)}   candidate = {escape(cmp.b.label)}   "
                  f"alpha={result.alpha:g}  max-drop={result.max_drop:g}", highlight=False, soft_wrap=True)
    incomplete = [r for r in cmp.b.runs if r.status != "complete"]
    if incomplete:
        console.rule("[bold red]CANDIDATE INCOMPLETE[/bold red]")
    print_warnings(console, result.warnings)
    if incomplete:
        console.rule(style="red")
    for o in result.opt_outs:
        console.print(f"[bold yellow]OPT-OUT[/bold yellow] {escape(o)}", highlight=False, soft_wrap=True)
    n_pairs = len({id(f.pair) for f in result.checked})
    if result.decision == "cannot_decide":
        console.print(f"[bold red]CANNOT DECIDE[/bold red] {len(result.reasons)} reason(s); no significant drop "
                      f"among the values that were tested:", highlight=False, soft_wrap=True)
        for r in result.reasons:
            console.print(f"  - {escape(r)}", highlight=False, soft_wrap=True)
        return
    if not result.regressions:
        console.print(f"[bold green]PASS[/bold green] no significant drop in {len(result.checked)} metric value(s) "
                      f"over {n_pairs} run pair(s), every one tested", highlight=False, soft_wrap=True)
        return
    n_groups = sum(len(groups) for _, groups in group_regressions(result.regressions))
    console.print(f"[bold red]FAIL[/bold red] {n_groups} regression(s) ({len(result.regressions)} of "
                  f"{len(result.checked)} metric value(s) significantly worse) over {n_pairs} run pair(s):",
                  highlight=False, soft_wrap=True)
    for r in result.reasons:
        console.print(f"  also cannot decide: {escape(r)}", highlight=False, soft_wrap=True)
    for pair, groups in group_regressions(result.regressions):
        console.print()
        console.print(_pair_header(pair), highlight=False, soft_wrap=True)
        for values in groups:
            console.print(f"  {escape(regression_line(values))}", style="red", highlight=False, soft_wrap=True)
        flipped = _flip_values([v for g in groups for v in g])
        printed: set[str] = set()
        for v in flipped:
            _flips(console, v, pair, printed)
        _page_hint(console, pair, flipped)


def _page_hint(console: Console, pair: Pair, values: list[PairedValue]) -> None:
    """Where the flipped samples open whole (prompt, raw output, log-likelihoods...) on the site."""
    if any(v.right_to_wrong or v.wrong_to_right or v.largest_drops for v in values):
        page = "samples-" + task_slug(pair.task).removeprefix("task-")
        console.print(Text(f"    each sample opens whole on the site: leaderboard/{page}#<id>"), style="dim",
                      highlight=False)


def _flip_values(values: list[PairedValue]) -> list[PairedValue]:
    """The values whose flips are worth listing: one per set of identical flips (the values of one
    metric share them), with largest drops only where something changed."""
    seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    out = []
    for v in values:
        if v.binary:
            key = (tuple(v.right_to_wrong or ()), tuple(v.wrong_to_right or ()))
            if key in seen:
                continue
            seen.add(key)
            out.append(v)
        elif v.largest_drops and v.delta != 0:
            out.append(v)
    return out


#: ``llmbench runs`` columns in display order, and the order in which they give way to a narrow
#: terminal: model, task, primary score and status always stay (issue: at 80 columns they
#: shrank to nothing); ``--wide`` shows every column whatever the width.
RUN_COLUMNS = ("run", "batch", "created", "status", "model", "task", "mode", "primary", "n", "tags")
RUN_PRIORITY = ("model", "task", "primary", "status", "run", "n", "mode", "created", "batch", "tags")
_RUN_KEEP = 4
_FOLD = frozenset({"model", "task", "mode", "primary", "tags"})


def runs_width(rows: list[dict[str, str]]) -> int:
    """The width every run column needs at its natural size (``--wide`` prints at least this)."""
    return sum(max([len(c), *(len(r.get(c, "")) for r in rows)]) for c in RUN_COLUMNS) + 2 * (len(RUN_COLUMNS) - 1)


def runs_columns(rows: list[dict[str, str]], width: int, *, wide: bool = False) -> list[str]:
    """The columns that fit ``width`` (display order): the four that always stay, then the others
    by priority while their natural width still fits (two spaces between columns)."""
    if wide:
        return list(RUN_COLUMNS)
    natural = {c: max([len(c), *(len(r.get(c, "")) for r in rows)]) for c in RUN_COLUMNS}
    chosen = list(RUN_PRIORITY[:_RUN_KEEP])
    used = sum(natural[c] for c in chosen) + 2 * (len(chosen) - 1)
    for col in RUN_PRIORITY[_RUN_KEEP:]:
        if used + 2 + natural[col] <= width:
            chosen.append(col)
            used += 2 + natural[col]
    return [c for c in RUN_COLUMNS if c in chosen]


def runs_table(rows: list[dict[str, str]], width: int, *, wide: bool = False) -> tuple[Table, list[str]]:
    """The ``runs`` table for a terminal ``width`` columns wide, and the columns left out. Values
    are plain text (a model name like ``[red]x`` is not markup); ids never wrap (users copy them)."""
    shown = runs_columns(rows, width, wide=wide)
    table = Table(box=None, header_style="bold underline", pad_edge=False, padding=(0, 1))  # 2 spaces a gap
    for col in shown:
        table.add_column(col, no_wrap=col not in _FOLD, overflow="fold" if col in _FOLD else "ellipsis")
    for r in rows:
        table.add_row(*(Text(r.get(c, "")) for c in shown))
    return table, [c for c in RUN_COLUMNS if c not in shown]
