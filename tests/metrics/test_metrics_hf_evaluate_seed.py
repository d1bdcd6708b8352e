"""``evaluate:`` metrics give the same value for the same input in every process.

HF's ``rouge`` bootstraps its default aggregate from numpy's global state; the local
``global_bootstrap`` module does the same, so two fresh processes disagree unless the
wrapper seeds what the module samples from.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmbench.metrics import MetricError, get_metric
from llmbench.metrics.hf_evaluate import seeded_global_rngs

MODULES = Path(__file__).parent / "evaluate_modules"
GLOBAL = MODULES / "global_bootstrap.py"

PREDS = [f"the cat {w} on the mat" for w in ("sat", "lay", "slept", "stood", "sat down")] * 6
REFS = [["the cat sat on the mat"], ["a dog lay there"], ["the cat slept"], ["cats stood"],
        ["the cat sat down on a mat"]] * 6

_CHILD = """
import json, sys
from llmbench.metrics import get_metric
preds, refs, args = json.loads(sys.argv[1])
metric = get_metric("evaluate:" + sys.argv[2], **args)
stats = [metric.sample_stats(prediction=p, references=r) for p, r in zip(preds, refs)]
print(json.dumps({v.name: [v.value, v.ci_low, v.ci_high, v.signature] for v in metric.aggregate(stats, n_resamples=5)}))
"""


def _in_fresh_process(args: dict[str, int]) -> dict[str, list[object]]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps([PREDS, REFS, args]), str(GLOBAL)],
        capture_output=True, text=True, check=True, timeout=300,
    )
    result: dict[str, list[object]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_same_value_in_two_processes() -> None:
    first, second = _in_fresh_process({}), _in_fresh_process({})
    assert first == second  # value, CI bounds and signature
    assert "|rng-seed:0" in str(first["overlap"][3])
    # The seed is a real input: another seed gives another (equally reproducible) value.
    values = []
    for seed in (0, 7):
        metric = get_metric(f"evaluate:{GLOBAL}", rng_seed=seed)
        stats = [metric.sample_stats(prediction=p, references=r) for p, r in zip(PREDS, REFS, strict=True)]
        values.append(metric.aggregate(stats, n_resamples=0)[0].value)
    assert values[0] == first["overlap"][0] != values[1]


def test_the_module_really_samples_from_numpy() -> None:
    """Loaded as ``evaluate`` loads it without a seed, the module's value follows numpy's
    global state at load time, so the test above could fail (two unseeded processes start
    from different OS entropy)."""
    import evaluate

    refs = [r[0] for r in REFS]
    values = set()
    for seed in (1, 2):
        np.random.seed(seed)
        module = evaluate.load(str(GLOBAL))
        values.add(module.compute(predictions=PREDS, references=refs)["overlap"])
    assert len(values) == 2


def test_caller_random_streams_are_left_alone() -> None:
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    with seeded_global_rngs(0):
        np.random.random()
        random.random()
    assert (np.random.random(), random.random()) == expected


def test_a_module_that_cannot_be_seeded_is_refused() -> None:
    metric = get_metric(f"evaluate:{MODULES / 'unseedable.py'}")
    stats = [metric.sample_stats(prediction=p, references=r) for p, r in zip(PREDS, REFS, strict=True)]
    with pytest.raises(MetricError, match=r"not reproducible.*noisy"):
        metric.aggregate(stats, n_resamples=0)
