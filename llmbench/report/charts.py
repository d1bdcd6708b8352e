"""Chart geometry for inline SVG: quality vs cost/latency with its Pareto front, and score trends.

Why hand-drawn SVG instead of a charting library: the site must open from disk with no
network and no third-party code to audit, and two chart types do not justify a dependency.
This module only computes coordinates and tick labels; the Jinja templates (autoescaped)
emit the SVG elements, so model names reach the page as escaped text.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from llmbench.report import fmt

W, H = 560, 320
LEFT, RIGHT, TOP, BOTTOM = 58, 30, 14, 42
N_COLORS = 8


@dataclass
class Axis:
    lo: float
    hi: float
    log: bool = False

    def frac(self, v: float) -> float:
        if self.log:
            lo, hi, v = math.log10(self.lo), math.log10(self.hi), math.log10(max(v, self.lo))
        else:
            lo, hi = self.lo, self.hi
        return 0.5 if hi == lo else (v - lo) / (hi - lo)


@dataclass
class Point:
    x: float
    y: float
    label: str
    title: str
    color: int
    front: bool = False
    #: On the front drawn with the baselines included (the page's toggle; off by default).
    front_all: bool = False
    #: A baseline's point: drawn as a reference, not part of the default front.
    reference: bool = False
    anchor: str = "start"  # label side: "end" near the right edge so it stays inside the plot
    # The raw values behind a scatter point, for the page's budget filter (None on other charts).
    x_value: float | None = None
    y_value: float | None = None

    @property
    def label_x(self) -> float:
        return self.x - 8 if self.anchor == "end" else self.x + 8


@dataclass
class Chart:
    width: int = W
    height: int = H
    x_title: str = ""
    y_title: str = ""
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    lines: list[tuple[str, int]] = field(default_factory=list)  # (path d, color)
    bands: list[tuple[str, int]] = field(default_factory=list)  # (path d, color)
    front: str = ""
    #: The Pareto front with the baselines counted (shown by the page's toggle).
    front_all: str = ""
    legend: list[tuple[str, int]] = field(default_factory=list)
    note: str = ""
    higher_is_better: bool = True  # of the y values: the budget filter names the best point it keeps

    @property
    def plot(self) -> tuple[int, int, int, int]:
        return LEFT, TOP, self.width - LEFT - RIGHT, self.height - TOP - BOTTOM


def _px(axis: Axis, v: float) -> float:
    return round(LEFT + axis.frac(v) * (W - LEFT - RIGHT), 1)


def _py(axis: Axis, v: float) -> float:
    return round(H - BOTTOM - axis.frac(v) * (H - TOP - BOTTOM), 1)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out, v = [], first
    while v <= hi + 1e-9 * step:
        out.append(round(v, 12))
        v += step
    return out


def _padded(values: list[float], pad: float = 0.08) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    span = hi - lo or abs(hi) or 1.0
    return lo - pad * span, hi + pad * span


def pareto(points: list[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and quality."""
    sign = 1.0 if higher_is_better else -1.0
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -sign * points[i][1]))
    front, best = [], -math.inf
    for i in order:
        q = sign * points[i][1]
        if q > best:
            front.append(i)
            best = q
    return front


def _x_axis(xs: list[float]) -> Axis:
    positive = [x for x in xs if x > 0]
    if positive and len(positive) == len(xs) and max(positive) / min(positive) > 100:
        return Axis(10 ** math.floor(math.log10(min(positive))), 10 ** math.ceil(math.log10(max(positive))), log=True)
    lo, hi = _padded(xs)
    return Axis(max(lo, 0.0) if min(xs) >= 0 else lo, hi)


def scatter(points: list[tuple[str, float, float]], *, colors: dict[str, int], x_title: str, y_title: str,
            x_fmt: str, metric: str, higher_is_better: bool, references: frozenset[str] = frozenset()) -> Chart:
    """Quality (y) against cost or latency (x), with the Pareto front drawn as a step line.

    The default front leaves out ``references`` (baselines): a majority-label baseline answers
    in microseconds for nothing, so it would sit on every front and hide which *models* trade
    quality for cost. ``front_all`` counts them, for the page's toggle."""
    chart = Chart(x_title=x_title, y_title=y_title, higher_is_better=higher_is_better)
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    xa = _x_axis(xs)
    ya = Axis(*_padded(ys))
    chart.x_ticks = _ticks_x(xa, x_fmt)
    chart.y_ticks = _y_ticks(ya, metric)
    models = [i for i, p in enumerate(points) if p[0] not in references]
    front = {models[j] for j in pareto([(points[i][1], points[i][2]) for i in models], higher_is_better)}
    front_all = set(pareto([(x, y) for _, x, y in points], higher_is_better))
    for i, (label, x, y) in enumerate(points):
        ref = label in references
        title = f"{label}: {fmt.num(y, metric)} at {_fmt_x(x, x_fmt)}" + (" (baseline)" if ref else "") + (
            " (Pareto front)" if i in front else "")
        px = _px(xa, x)
        anchor = "end" if px > LEFT + 0.6 * (W - LEFT - RIGHT) else "start"
        chart.points.append(Point(px, _py(ya, y), label, title, colors.get(label, 0), front=i in front,
                                  front_all=i in front_all, reference=ref, anchor=anchor, x_value=x, y_value=y))
    chart.front = _step([p for i, p in enumerate(chart.points) if i in front])
    chart.front_all = _step([p for i, p in enumerate(chart.points) if i in front_all])
    return chart


def _step(front: list[Point]) -> str:
    ordered = sorted(front, key=lambda p: p.x)
    if not ordered:
        return ""
    d = f"M{ordered[0].x},{ordered[0].y}"
    for prev, p in itertools.pairwise(ordered):
        d += f" L{p.x},{prev.y} L{p.x},{p.y}"
    return d


def distinct(ticks: list[tuple[float, float]], label: Callable[[float, int], str], max_extra: int = 3
             ) -> list[tuple[float, str]]:
    """Tick labels that never repeat ("2 µs 2 µs 2 µs"): more precision until they differ,
    then (if still equal) only the first of each run of equal labels is kept."""
    for extra in range(max_extra + 1):
        labels = [label(v, extra) for _, v in ticks]
        if len(set(labels)) == len(labels):
            return [(pos, text) for (pos, _), text in zip(ticks, labels, strict=True)]
    out: list[tuple[float, str]] = []
    for (pos, v) in ticks:
        text = label(v, max_extra)
        if not out or out[-1][1] != text:
            out.append((pos, text))
    return out


def _y_ticks(axis: Axis, metric: str) -> list[tuple[float, str]]:
    return distinct([(_py(axis, t), t) for t in nice_ticks(axis.lo, axis.hi)],
                    lambda v, extra: fmt.num(v, metric, extra=extra))


def _fmt_x(x: float, kind: str) -> str:
    return {"cost": fmt.money, "latency": fmt.seconds}.get(kind, lambda v: fmt.tokens(int(v)))(x)


def _fmt_x_precise(x: float, kind: str, extra: int) -> str:
    """``_fmt_x`` with ``extra`` more significant digits (for ticks closer than its rounding)."""
    if extra == 0:
        return _fmt_x(x, kind)
    if kind == "latency":
        for unit, scale in (("µs", 1e-6), ("ms", 1e-3), ("s", 1.0)):
            if x < scale * 1000 or unit == "s":
                return f"{x / scale:.{extra}f} {unit}"
    if kind == "cost":
        return f"${x:.{4 + extra}f}"
    return f"{x:,.{extra}f}"


def _ticks_x(axis: Axis, kind: str) -> list[tuple[float, str]]:
    if axis.log:
        lo, hi = round(math.log10(axis.lo)), round(math.log10(axis.hi))
        ticks = [(_px(axis, 10.0 ** e), 10.0 ** e) for e in range(lo, hi + 1)]
    else:
        ticks = [(_px(axis, t), t) for t in nice_ticks(axis.lo, axis.hi) if t >= axis.lo]
    return distinct(ticks, lambda v, extra: _fmt_x_precise(v, kind, extra))


def _ts(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0


def trend(series: dict[str, list[dict]], *, colors: dict[str, int], metric: str, y_title: str) -> Chart:
    """Score over stored runs per model, with the 95% CI as a translucent band.

    A model with one run has no trend: it is left out and named in ``note`` ("needs ≥2 runs")
    rather than drawn as a lone dot that reads like a data point on a line. An empty chart
    (no model with two runs) has no points; the page then shows only the note."""
    chart = Chart(x_title="run date (UTC)", y_title=y_title)
    lone = [m for m, s in series.items() if len(s) < 2]
    series = {m: s for m, s in series.items() if len(s) >= 2}
    if lone:
        chart.note = f"needs ≥2 runs for a trend: {', '.join(lone)}"
    pts = [p for s in series.values() for p in s]
    times = [_ts(p["created_at"]) for p in pts]
    ys = [v for p in pts for v in (p["value"], p["ci_low"], p["ci_high"]) if v is not None]
    if not pts or not ys:
        return chart
    t_lo, t_hi = min(times), max(times)
    if t_hi == t_lo:
        t_lo, t_hi = t_lo - 43200, t_hi + 43200
    pad = 0.04 * (t_hi - t_lo)
    xa, ya = Axis(t_lo - pad, t_hi + pad), Axis(*_padded(ys))
    chart.y_ticks = _y_ticks(ya, metric)
    chart.x_ticks = _run_ticks(xa, sorted(set(times))) or _time_ticks(xa)
    for model, points in series.items():
        color = colors.get(model, 0)
        chart.legend.append((model, color))
        xy = [(_px(xa, _ts(p["created_at"])), p) for p in points]
        chart.lines.append((" ".join(f"{'M' if i == 0 else 'L'}{x},{_py(ya, p['value'])}"
                                     for i, (x, p) in enumerate(xy)), color))
        if all(p["ci_low"] is not None and p["ci_high"] is not None for _, p in xy):
            upper = [f"{x},{_py(ya, p['ci_high'])}" for x, p in xy]
            lower = [f"{x},{_py(ya, p['ci_low'])}" for x, p in reversed(xy)]
            chart.bands.append(("M" + " L".join(upper + lower) + " Z", color))
        for x, p in xy:
            ci = fmt.ci(p["ci_low"], p["ci_high"], metric)
            title = f"{model} · {fmt.when(p['created_at'])} · {fmt.num(p['value'], metric)} {ci} · run {p['run_id']}"
            if not p.get("comparable", True):
                title += " · other task version/prompt"
            chart.points.append(Point(x, _py(ya, p["value"]), model, title, color, front=p.get("comparable", True)))
    return chart


def _run_ticks(axis: Axis, stamps: list[float], n: int = 6) -> list[tuple[float, str]]:
    """With a few run times (a week of nightlies), a dated tick under each run, so every point
    reads off its date; with more, None (regular ticks instead)."""
    if len(stamps) > n:
        return []
    days = {datetime.fromtimestamp(t, tz=UTC).date() for t in stamps}
    label = "%Y-%m-%d" if len(days) == len(stamps) else "%m-%d %H:%M"
    ticks = [(_px(axis, t), t) for t in stamps]
    out = distinct(ticks, lambda v, _: datetime.fromtimestamp(v, tz=UTC).strftime(label), max_extra=0)
    # Two labels closer than ~70 px would overprint: keep the first of such neighbours.
    kept: list[tuple[float, str]] = []
    for pos, text in out:
        if not kept or pos - kept[-1][0] >= 70:
            kept.append((pos, text))
    return kept


def _time_ticks(axis: Axis, n: int = 6) -> list[tuple[float, str]]:
    """Ticks on whole days (or whole hours for short spans), at most about ``n`` of them."""
    span = axis.hi - axis.lo
    day = 86400.0
    if span >= 2 * day:
        step, label = day * math.ceil(span / day / n), "%Y-%m-%d"
    else:
        step = 3600.0 * next((h for h in (1, 2, 3, 6, 12, 24) if span / (3600 * h) <= n), 24)
        label = "%m-%d %H:%M"
    first = math.ceil(axis.lo / step) * step
    stamps = [first + i * step for i in range(int((axis.hi - first) // step) + 1)]
    return [(_px(axis, t), datetime.fromtimestamp(t, tz=UTC).strftime(label)) for t in stamps]


def reliability(models: list[tuple[str, list[dict]]], *, colors: dict[str, int]) -> Chart:
    """Reliability diagram: per model, each non-empty confidence bin's accuracy (y) against its
    mean confidence (x), joined in bin order; the diagonal (``front``) is perfect calibration,
    points below it are over-confident. ``models``: (model, bins as ``reliability_bins`` dicts)."""
    chart = Chart(x_title="confidence (mean of the bin)", y_title="accuracy in the bin")
    axis = Axis(0.0, 1.0)
    ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    chart.x_ticks = [(_px(axis, t), f"{t:.1f}") for t in ticks]
    chart.y_ticks = [(_py(axis, t), f"{t:.1f}") for t in ticks]
    chart.front = f"M{_px(axis, 0.0)},{_py(axis, 0.0)} L{_px(axis, 1.0)},{_py(axis, 1.0)}"
    for model, bins in models:
        color = colors.get(model, 0)
        chart.legend.append((model, color))
        filled = [b for b in bins if b["count"] and b["confidence"] is not None and b["accuracy"] is not None]
        xy = [(_px(axis, b["confidence"]), _py(axis, b["accuracy"]), b) for b in filled]
        if xy:
            chart.lines.append((" ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y, _) in enumerate(xy)), color))
        for x, y, b in xy:
            title = (f"{model} · confidence ({b['lo']:.2f}, {b['hi']:.2f}] · {b['count']} samples · "
                     f"accuracy {b['accuracy']:.3f} · mean confidence {b['confidence']:.3f}")
            chart.points.append(Point(x, y, model, title, color))
    return chart
