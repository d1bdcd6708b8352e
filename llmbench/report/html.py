"""The static leaderboard site: index (overview), charts, one page per task, shipped assets.

Safety model, in layers: Jinja2 autoescaping is always on, so every model-written string
reaches the markup as text; sample data travels as JSON inside ``<script
type="application/json">`` with ``<``, ``>``, ``&`` and the JS line separators escaped
(no ``</script>`` or ``<!--`` can end or change the element); the page script renders it with
``textContent`` only; and a Content-Security-Policy forbids inline scripts and every network
fetch, so even a mistake in the above could neither run injected code nor phone home.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from llmbench.report import charts, fmt
from llmbench.report.jsonsafe import finite
from llmbench.report.leaderboard import AGGREGATE_DEFINITION, Leaderboard, TaskDetail

ASSETS = ("style.css", "app.js")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_UNSAFE = re.compile("[<>&\u2028\u2029]")


def json_for_script(data: Any) -> Markup:
    """JSON that is inert inside ``<script type="application/json">``: no ``</``, no ``<!--``."""
    text = json.dumps(finite(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Markup(_JSON_UNSAFE.sub(lambda m: _JSON_ESCAPES[m.group()], text))


def task_slug(name: str) -> str:
    """A file-name-safe page name; a hash keeps names that differ only in odd characters apart."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") or "task"
    if slug != name:
        slug += "-" + hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"task-{slug}.html"


def sample_slug(name: str) -> str:
    """The task's sample page (one page per task; ``#<sample id>`` picks the sample)."""
    return "samples-" + task_slug(name).removeprefix("task-")


def csv_slug(name: str, table: str) -> str:
    return task_slug(name).removesuffix(".html") + f"-{table}.csv"


def _csv(rows: list[list[Any]]) -> str:
    """CSV text (stdlib ``csv``: quoting of commas, quotes and newlines done right). A cell that a
    spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) is prefixed with ``'``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow(["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in row])
    return buf.getvalue()


def overview_csv(lb: Leaderboard) -> str:
    head = ["model", "kind", "win_rate", "win_tasks", *(f"{c.task}:{c.primary}" for c in lb.columns),
            *(f"{c.task}:mark" for c in lb.columns), "tokens", "cost_usd", "latency_p50_s"]
    rows: list[list[Any]] = [head]
    for row in lb.rows:
        cells = [row.cells.get(c.task) for c in lb.columns]
        rows.append([row.model, row.kind, row.win_rate, row.win_tasks,
                     *(c.value if c is not None else None for c in cells),
                     *(_mark(c) for c in cells), row.tokens, row.cost, row.latency_p50])
    return _csv(rows)


def _mark(c: Any) -> str:
    if c is None:
        return ""
    if c.best:
        return "best"
    words = [w for w in (c.badge, "≈ best" if c.tied else "", "" if c.comparable else c.note or "not comparable") if w]
    return "; ".join(words)


def metrics_csv(detail: TaskDetail) -> str:
    rows: list[list[Any]] = [["model", "run_id", "scoring_mode", "n", *detail.value_names]]
    for m in detail.metrics:
        rows.append([m.model, m.run_id, m.scoring_mode, m.n,
                     *((m.values.get(n) or {}).get("value") for n in detail.value_names)])
    return _csv(rows)


def samples_csv(detail: TaskDetail) -> str:
    rows: list[list[Any]] = [["sample_id", "model", "input", "reference", "prediction", "score", "error"]]
    for model, preds in detail.predictions.items():
        for sid in detail.sample_order:
            pred = preds.get(sid)
            if pred is not None:
                sample = detail.samples[sid]
                rows.append([sid, model, sample["input"], " | ".join(sample["refs"]), pred["p"], pred["s"], pred["e"]])
    return _csv(rows)


def environment() -> Environment:
    env = Environment(loader=PackageLoader("llmbench.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=fmt.num, ci=fmt.ci, when=fmt.when, money=fmt.money, seconds=fmt.seconds,
                       tokens=fmt.tokens, pval=fmt.pval, slug=task_slug, sample_slug=sample_slug, csv_slug=csv_slug)
    return env


def _colors(lb: Leaderboard) -> dict[str, int]:
    return {row.model: i % charts.N_COLORS for i, row in enumerate(lb.rows)}


def _task_charts(lb: Leaderboard, detail: TaskDetail, colors: dict[str, int]) -> dict[str, Any]:
    col = detail.column
    y_title = f"{col.primary} ({'higher' if col.higher_is_better else 'lower'} is better)"
    by_model = {row.model: row.cells.get(col.task) for row in lb.rows}
    references = frozenset(row.model for row in lb.rows if row.reference)
    scatters: list[dict[str, Any]] = []
    for key, title in (("latency", "median latency per sample"), ("cost", "cost of the run (USD)"),
                       ("tokens", "tokens (prompt + completion)")):
        pts, missing = [], []
        for model, cell in by_model.items():
            if cell is None or cell.value is None or not cell.comparable:
                continue
            x = {"latency": cell.latency_p50, "cost": cell.cost, "tokens": cell.tokens}[key]
            if x is None or (key != "latency" and x <= 0):
                missing.append(model)
            else:
                pts.append((model, float(x), cell.value))
        if pts:
            chart = charts.scatter(pts, colors=colors, x_title=title, y_title=y_title, x_fmt=key,
                                   metric=col.metric, higher_is_better=col.higher_is_better, references=references)
            chart.note = f"no {key} recorded for: {', '.join(missing)}" if missing else ""
            scatters.append({"key": key, "label": key, "chart": chart})
    series = {m: detail.history[m] for m in colors if detail.history.get(m)}  # legend in overview order
    trend = charts.trend(series, colors=colors, metric=col.metric, y_title=col.primary) if series else None
    return {"scatters": scatters, "trend": trend}


def _better(detail: TaskDetail) -> dict[str, bool]:
    """Sort direction per metric value (first click puts the best model on top)."""
    out: dict[str, bool] = {}
    for row in detail.metrics:
        for name, v in row.values.items():
            out.setdefault(name, bool(v["higher_is_better"]))
    return out


def _ranked(lb: Leaderboard, detail: TaskDetail) -> list[str]:
    """The task's models, best first (the browser opens on the best; side-by-side on the top two)."""
    cells = {row.model: row.cells.get(detail.column.task) for row in lb.rows}

    def key(model: str) -> tuple[bool, int, str]:
        cell = cells.get(model)
        rank = cell.rank if cell is not None else None
        return rank is None, rank or 0, model

    return sorted(detail.predictions, key=key)


def _browser_data(detail: TaskDetail, models: list[str]) -> dict[str, Any]:
    col = detail.column
    percent = fmt.decimals(col.metric) == 1  # the declared scale: per-sample scores are on it too
    samples = {k: {f: v for f, v in s.items() if f != "shared_prompt"} for k, s in detail.samples.items()}
    return {"task": col.task, "primary": col.primary,
            "higher_is_better": col.higher_is_better, "order": detail.sample_order, "samples": samples,
            "models": models, "predictions": detail.predictions, "total": detail.n_total,
            "decimals": fmt.decimals(col.metric), "full": 100.0 if percent else 1.0,
            "sample_page": sample_slug(col.task)}


def _sample_data(detail: TaskDetail, models: list[str]) -> dict[str, Any]:
    return {"task": detail.column.task, "order": detail.sample_order, "samples": detail.samples,
            "models": models, "records": detail.records, "task_page": task_slug(detail.column.task)}


def _reliability_chart(detail: TaskDetail, colors: dict[str, int]) -> charts.Chart | None:
    """The task's reliability diagram (one line per model with calibration values), or None."""
    bd = detail.breakdown
    if bd is None or not bd.reliability:
        return None
    return charts.reliability([(r.model, r.bins) for r in bd.reliability], colors=colors)


def write_site(lb: Leaderboard, out: Path) -> Path:
    """Write ``index.html``, ``charts.html``, ``ratings.html`` (when a judge compared models),
    ``task-*.html``, ``samples-*.html`` (one sample
    at a time), a CSV of each table and ``assets/`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    colors = _colors(lb)
    kinds = sorted({c.kind for c in lb.columns})
    # Cost only where a price is known: local models and baselines have none, and a column of
    # dashes says nothing; without any priced run the column is left out.
    has_cost = any(row.cost is not None for row in lb.rows)
    refs = [row for row in lb.rows if row.reference]
    common = {"lb": lb, "kinds": kinds, "colors": colors, "has_cost": has_cost,
              "aggregate_definition": AGGREGATE_DEFINITION,
              "modes": sorted({c.scoring_mode for row in lb.rows if not row.reference for c in row.cells.values()}),
              "ranked_rows": [row for row in lb.rows if not row.reference], "ref_rows": refs}
    pages: dict[str, str] = {
        "index.html": env.get_template("index.html").render(page="overview", **common),
    }
    if lb.ratings:  # the ratings view: its own page, linked from every page's tabs
        pages["ratings.html"] = env.get_template("ratings.html").render(page="ratings", **common)
    chart_sets = {task: _task_charts(lb, d, colors) for task, d in lb.tasks.items()}
    pages["charts.html"] = env.get_template("charts.html").render(page="charts", chart_sets=chart_sets, **common)
    for task, detail in lb.tasks.items():
        models = _ranked(lb, detail)
        rows = sorted(detail.metrics, key=lambda r: models.index(r.model) if r.model in models else len(models))
        pages[task_slug(task)] = env.get_template("task.html").render(
            page=task, detail=detail, metric_rows=rows, data=json_for_script(_browser_data(detail, models)),
            better=_better(detail), reliability=_reliability_chart(detail, colors), **common)
        pages[sample_slug(task)] = env.get_template("sample.html").render(
            page=task, detail=detail, data=json_for_script(_sample_data(detail, models)), **common)
        pages[csv_slug(task, "metrics")] = metrics_csv(detail)
        pages[csv_slug(task, "samples")] = samples_csv(detail)
    pages["overview.csv"] = overview_csv(lb)
    for pattern in ("task-*.html", "samples-*.html", "task-*.csv", "ratings.html"):
        for stale in out.glob(pattern):
            if stale.name not in pages:
                stale.unlink()
    for name, html in pages.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out / name)
    assets = out / "assets"
    assets.mkdir(exist_ok=True)
    source = resources.files("llmbench.report") / "assets"
    for name in ASSETS:
        with resources.as_file(source / name) as path:
            shutil.copyfile(path, assets / name)
    return out / "index.html"
