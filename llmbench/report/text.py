"""The leaderboard as Markdown (PR comments) and as JSON (dashboards).

Markdown is rendered by GitHub and friends, which allow some inline HTML, so every cell that
comes from the store is escaped: HTML-special characters become entities and Markdown
punctuation that could start a link, emphasis or a table break is backslash-escaped.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llmbench.errors import one_line
from llmbench.report import fmt
from llmbench.report.jsonsafe import finite
from llmbench.report.leaderboard import AGGREGATE_DEFINITION, Cell, Column, Leaderboard

# Inside a table cell only these can change the rendering ("-", "+", "#" matter at line starts only).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_escape(text: str) -> str:
    text = one_line(text, None)  # a table cell is one line
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_cell(c: Cell | None, col: Column) -> str:
    if c is None or c.value is None:
        return "·"
    value = fmt.num(c.value, col.metric)
    value = f"**{value}**" if c.best else value
    mark = " ★" if c.best else " ≈" if c.tied else " ⚠" if not c.comparable else ""
    ci = fmt.ci(c.ci_low, c.ci_high, col.metric)
    ci = " · ".join(x for x in (ci, f"MDE {fmt.num(c.mde, col.metric)}" if c.mde is not None else "") if x)
    out = f"{value}{mark} <sub>{md_escape(ci)}</sub>" if ci else f"{value}{mark}"
    extra = [md_escape(c.badge)] if c.badge else []
    extra += [md_escape(s) for s in c.system]
    if not c.comparable and c.note:
        extra.append(md_escape(c.note))
    return out + (f" <sub>{' · '.join(extra)}</sub>" if extra else "")


def to_markdown(lb: Leaderboard) -> str:
    out = ["## llmbench leaderboard", ""]
    if not lb.rows:
        return "\n".join([*out, "_No complete run in the store yet._", ""])
    head = ["model", "kind", *(f"{md_escape(c.task)} ({md_escape(c.primary)} {'↑' if c.higher_is_better else '↓'})"
                              for c in lb.columns), "win rate (coverage)", "tokens", "cost", "latency p50", "last run"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join([":--", ":--", *(["--:"] * len(lb.columns)), "--:", "--:", "--:", "--:", "--:"]) + "|")
    n_tasks = len(lb.columns)
    for row in lb.rows:
        kind = row.kind + (f" (from {md_escape(row.finetuned_from)})" if row.finetuned_from else "")
        cells = [_md_cell(row.cells.get(col.task), col) for col in lb.columns]
        win = "·" if row.win_rate is None else f"{row.win_rate:.2f} ({row.win_tasks}/{n_tasks})"
        tail = [win, fmt.tokens(row.tokens), fmt.money(row.cost), fmt.seconds(row.latency_p50),
                fmt.when(row.last_run)]
        out.append("| " + " | ".join([md_escape(row.model), kind, *cells, *tail]) + " |")
    out += ["", "**Best per task** (the same answer as the site, `llmbench select` and `llmbench compare`):", ""]
    out += [f"- {md_escape(col.summary)}" for col in lb.columns]
    out += ["", f"★ best · ≈ not significantly different from the best (paired test on the shared samples, "
            f"α = {lb.alpha}) · ≤ baseline: not significantly above the task's best baseline (paired test, "
            "p shown), never starred · ⚠ not comparable with its column (task version, scored sample set or metric "
            "definition; the reason is written in the cell), never ranked · a scoring mode or prompt of its own is "
            "shown in the cell and ranked as it is · baselines are reference rows, never ranked · "
            "brackets: 95% CI · MDE: the smallest drop the gate catches in 80% of nights (alpha 0.05; paired "
            "with the model's previous run, else the one-run bound)", "",
            f"_Win rate:_ {md_escape(AGGREGATE_DEFINITION)}", ""]
    out += [f"- {md_escape(s)}" for s in lb.skipped]
    notes = _scoring_notes(lb)
    out += [f"- note: {md_escape(n)}" for n in notes]
    out += robustness_markdown(lb.robustness)
    out += ratings_markdown(lb.ratings)
    return "\n".join(out) + ("\n" if lb.skipped or notes or lb.robustness or lb.ratings else "")


def _scoring_notes(lb: Leaderboard) -> list[str]:
    """``task · model: note`` for every ranked run's scoring notes (a fallback its adapter took)."""
    out: list[str] = []
    for col in lb.columns:
        detail = lb.tasks.get(col.task)
        if detail is not None and detail.breakdown is not None:
            out += [f"{col.task} · {line}" for line in detail.breakdown.scoring_notes]
    return out


def ratings_markdown(views: list[dict[str, Any]]) -> list[str]:
    """The ratings view (``report.ratings``): per task judged pairwise, each model's
    Bradley–Terry rating with its CI, raw and length-controlled win rate, comparisons and
    position consistency — the numbers ``llmbench judge pairwise`` prints."""
    out: list[str] = []
    for v in views:
        out += ["", f"### Ratings: {md_escape(v['task'])} (judged by {md_escape(v['judge'])}, "
                f"{v['n_comparisons']} comparisons, both orders)", "",
                "| model | Bradley–Terry rating | 95% CI | win rate | LC win rate | comparisons | consistency |",
                "|:--|--:|--:|--:|--:|--:|--:|"]
        for m in v["models"]:
            ci = "·" if m["ci_low"] is None or m["ci_high"] is None else f"[{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]"
            out.append(f"| {md_escape(m['model'])} | {m['rating']:+.3f} | {ci} | {m['win_rate']:.3f} | "
                       f"{m['lc_win_rate']:.3f} | {m['n_comparisons']} | {m['consistency']:.3f} |")
    return out


def robustness_markdown(found: list[dict[str, Any]]) -> list[str]:
    """The robustness view (``report.robustness``): per perturbation the score, the drop from the
    clean score with its paired CI, the invariance; per clean run the worst case."""
    if not found:
        return []
    out = ["", "### Robustness (perturbed inputs, paired with the clean run by sample id)", "",
           "| model | task | perturbation | score | drop [95% CI] | invariant | worst case |",
           "|:--|:--|:--|--:|--:|--:|--:|"]
    for r in found:
        m = r["metric"]
        out.append(f"| {md_escape(r['model'])} | {md_escape(r['task'])} | clean | {fmt.num(r['clean_score'], m)} "
                   f"|  |  | {fmt.num(r['worst_case'], m)} |")
        for p in r["perturbations"]:
            lo, hi = p["ci_low"], p["ci_high"]
            if r["higher_is_better"] and lo is not None and hi is not None:
                lo, hi = 0.0 - hi, 0.0 - lo  # the stored CI is of perturbed - clean; a drop is its negation
            out.append(f"|  |  | {md_escape(p['perturbation'])} | {fmt.num(p['score'], m)} | "
                       f"{fmt.num(p['drop'], m, sign=True)} {md_escape(fmt.ci(lo, hi, m, sign=True))} | "
                       f"{p['invariance']:.1%} |  |")
    out += ["", "invariant: share of samples whose answer did not change · worst case (HELM): mean over samples "
            "of the lowest score among the clean run and every perturbation"]
    return out


def to_json(lb: Leaderboard, *, with_samples: bool = False) -> str:
    """Stable JSON: columns, rows with their cells, per-task metrics and history (samples on request)."""
    return json.dumps(finite(lb.to_json(with_samples=with_samples)), indent=1, ensure_ascii=False,
                      allow_nan=False) + "\n"
