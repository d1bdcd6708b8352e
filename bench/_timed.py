"""Run a harness's own CLI entry point with a timer around its evaluation phase.

    python bench/_timed.py lmeval   ARGS...   == lm_eval ARGS...   (lm_eval.__main__:cli_evaluate)
    python bench/_timed.py llmbench ARGS...   == llmbench ARGS...  (llmbench.cli.main:entry)

This is exactly what each console script runs, plus a wrapper around the function that
is the evaluation phase (``lm_eval.evaluator.evaluate``: build requests, run the model,
compute metrics; ``llmbench.runner.evaluate``: build requests, run the model, score,
bootstrap, store). Model loading and task loading happen before it in both harnesses.
On exit it prints one ``BENCH_JSON {...}`` line to stderr with the phase times (seconds
since this script started). Runs under either venv: it imports nothing of its own.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time

T0 = time.perf_counter()
_events: dict[str, float] = {}
_evals: list[float] = []


def _report() -> None:
    _events["exit"] = time.perf_counter() - T0
    _events["eval_s"] = sum(_evals)
    _events["n_evals"] = len(_evals)
    sys.stderr.write("BENCH_JSON " + json.dumps(_events) + "\n")
    sys.stderr.flush()


def _timed(fn):  # type: ignore[no-untyped-def]
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        _events.setdefault("eval_start", start - T0)
        try:
            return fn(*args, **kwargs)
        finally:
            end = time.perf_counter()
            _evals.append(end - start)
            _events["eval_end"] = end - T0

    return wrapper


def _mark_first_request() -> None:
    """Record ``first_request``: when the HF adapter is first asked to answer. The weights
    load lazily (inside the evaluation phase), so this, not ``eval_start``, is where the
    fixed cost ends."""
    import llmbench.models.hf.adapter as hf

    original = hf.HFAdapter.run

    def run(self, requests):  # type: ignore[no-untyped-def]
        _events.setdefault("first_request", time.perf_counter() - T0)
        return original(self, requests)

    hf.HFAdapter.run = run


def _count_model_calls() -> None:
    """Count requests handed to the HF adapter and forward passes of its model
    (``model_requests``, ``model_forwards``); a fully cached run has zero of both."""
    import llmbench.models.hf.adapter as hf

    _events["model_requests"] = 0
    _events["model_forwards"] = 0
    original = hf.HFAdapter.run

    def run(self, requests):  # type: ignore[no-untyped-def]
        _events["model_requests"] += len(requests)
        model = self.runtime.model
        if not getattr(model, "_bench_counted", False):
            model._bench_counted = True

            def hook(*_args):  # type: ignore[no-untyped-def]
                _events["model_forwards"] += 1

            model.register_forward_hook(hook)
        return original(self, requests)

    hf.HFAdapter.run = run


def main() -> None:
    which, args = sys.argv[1], sys.argv[2:]
    atexit.register(_report)
    if which == "lmeval":
        import lm_eval.evaluator as ev

        _events["imported"] = time.perf_counter() - T0
        ev.evaluate = _timed(ev.evaluate)
        from lm_eval.__main__ import cli_evaluate

        sys.argv = ["lm_eval", *args]
        cli_evaluate()
    elif which == "llmbench":
        import llmbench.runner as runner

        _events["imported"] = time.perf_counter() - T0
        runner.evaluate = _timed(runner.evaluate)
        _mark_first_request()
        if os.environ.get("BENCH_COUNT_CALLS"):
            _count_model_calls()
        from llmbench.cli.main import entry

        sys.argv = ["llmbench", *args]
        entry()
    else:
        raise SystemExit(f"usage: {sys.argv[0]} lmeval|llmbench ARGS...")


if __name__ == "__main__":
    main()
