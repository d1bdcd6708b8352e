"""``llmbench.report.jsonsafe.finite``: the one NaN/Infinity-to-null rule of every JSON report."""

from __future__ import annotations

import json
import math

from llmbench.report.jsonsafe import finite


def test_non_finite_floats_become_null_at_any_depth() -> None:
    data = {"a": math.nan, 1: [1.5, math.inf, (-math.inf, "x")], "n": {"deep": [None, 2]}, "ok": 0.25}
    safe = finite(data)
    assert safe == {"a": None, "1": [1.5, None, [None, "x"]], "n": {"deep": [None, 2]}, "ok": 0.25}
    json.dumps(safe, allow_nan=False)  # strict JSON: would raise on any NaN left behind


def test_paired_values_are_json_safe() -> None:
    from llmbench.report.paired import PairedValue

    value = PairedValue(metric="f1", name="f1_macro", higher_is_better=True, n=3, a=0.5, b=math.nan,
                        delta=math.nan, largest_drops=[("s1", 0.5, math.nan)])
    out = value.to_json()
    assert out["b"] is None and out["drop"] is None and out["largest_drops"][0]["b"] is None
    json.dumps(out, allow_nan=False)
