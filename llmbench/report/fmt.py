"""Number and time formatting shared by the console, Markdown and HTML reports.

Metrics keep their reference tool's scale (accuracy/F1/ROUGE 0-1; BLEU/chrF/SQuAD 0-100),
so the number of decimals follows the scale rather than the magnitude: 0.5 BLEU and 0.5
accuracy mean very different things and should not look alike. Which metric is on which
scale is declared once, by the metric's registration (``metrics.registry``), and stored
with every run; this module keeps no list of its own.
"""

from __future__ import annotations

import math
from datetime import datetime


def decimals(metric: str) -> int:
    from llmbench.metrics.registry import declared_scale

    return 1 if metric and declared_scale(metric) == "percent" else 3


def num(x: float | None, metric: str = "", *, sign: bool = False, extra: int = 0) -> str:
    """A metric number at its scale's precision; '—' when unknown or undefined."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    d = decimals(metric) + extra
    return f"{x:+.{d}f}" if sign else f"{x:.{d}f}"


def ci(low: float | None, high: float | None, metric: str = "", *, sign: bool = False, extra: int = 0) -> str:
    if low is None or high is None:
        return ""
    return f"[{num(low, metric, sign=sign, extra=extra)}, {num(high, metric, sign=sign, extra=extra)}]"


def pval(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def p_is(p: float | None) -> str:
    """'p = 0.031' / 'p < 0.001' for sentences."""
    text = pval(p)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def when(iso: str | None) -> str:
    """'2025-06-01 03:00 UTC' from a stored ISO timestamp (kept as-is if it does not parse)."""
    if not iso:
        return "—"
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def money(x: float | None) -> str:
    if x is None:
        return "—"
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"


def seconds(x: float | None) -> str:
    if x is None:
        return "—"
    if x < 1e-3:
        return f"{x * 1e6:.0f} µs"
    return f"{x * 1e3:.0f} ms" if x < 1 else f"{x:.2f} s"


def tokens(x: int | None) -> str:
    if not x:
        return "—"
    return f"{x / 1e6:.2f}M" if x >= 1e6 else (f"{x / 1e3:.1f}k" if x >= 1e4 else f"{x:,}")
