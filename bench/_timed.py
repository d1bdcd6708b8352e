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


_shapes: list[list[int]] = []


def _report() -> None:
    _events["exit"] = time.perf_counter() - T0
    log = os.environ.get("BENCH_CALL_LOG")
    if log and _shapes:
        with open(log, "w", encoding="utf-8") as fh:
            json.dump(_shapes, fh)
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


def _hook_forwards(model) -> None:  # type: ignore[no-untyped-def]
    """Count the forward passes of ``model`` (once per model) and log each one's input shape
    ``[rows, new tokens, padded rows]`` (``padded rows`` = rows whose
    attention mask has a zero). Both harnesses get the same hook, so their decode steps and
    batch shapes can be compared as counts, which a busy machine does not disturb."""
    if getattr(model, "_bench_counted", False):
        return
    model._bench_counted = True
    _events.setdefault("model_forwards", 0)
    _events.setdefault("model_tokens", 0)

    def hook(_module, args, kwargs, _out):  # type: ignore[no-untyped-def]
        _events["model_forwards"] += 1
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            ids = kwargs.get("decoder_input_ids")
        if ids is not None:
            rows, width = int(ids.shape[0]), int(ids.shape[1])
            mask = kwargs.get("attention_mask")
            padded = int((mask == 0).any(-1).sum()) if mask is not None and mask.dim() == 2 else 0
            _events["model_tokens"] += rows * width
            _shapes.append([rows, width, padded])

    model.register_forward_hook(hook, with_kwargs=True)


def _time_model_load() -> None:
    """Record ``load_s``: seconds llmbench spends loading the weights. They load lazily,
    inside ``runner.evaluate``, whereas lm-eval loads them before ``evaluator.evaluate``; so
    ``eval_s - load_s`` is llmbench's phase on the same footing as lm-eval's ``eval_s``."""
    import llmbench.models.hf.adapter as hf

    original = hf.HFAdapter._load

    def load(self):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return original(self)
        finally:
            _events["load_s"] = _events.get("load_s", 0.0) + time.perf_counter() - start

    hf.HFAdapter._load = load


def _count_model_calls() -> None:
    """Count requests handed to the HF adapter and forward passes of its model
    (``model_requests``, ``model_forwards``); a fully cached run has zero of both."""
    import llmbench.models.hf.adapter as hf

    _events["model_requests"] = 0
    _events["model_forwards"] = 0
    original = hf.HFAdapter.run

    def run(self, requests):  # type: ignore[no-untyped-def]
        _events["model_requests"] += len(requests)
        _hook_forwards(self.runtime.model)
        return original(self, requests)

    hf.HFAdapter.run = run


def _count_lmeval_calls() -> None:
    """The same forward counter on lm-eval's ``HFLM`` model (hooked once it has loaded)."""
    from lm_eval.models.huggingface import HFLM

    _events["model_forwards"] = 0
    original = HFLM.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        _hook_forwards(self.model)

    HFLM.__init__ = init


def main() -> None:
    which, args = sys.argv[1], sys.argv[2:]
    atexit.register(_report)
    if which == "lmeval":
        import lm_eval.evaluator as ev

        _events["imported"] = time.perf_counter() - T0
        ev.evaluate = _timed(ev.evaluate)
        if os.environ.get("BENCH_COUNT_CALLS"):
            _count_lmeval_calls()
        from lm_eval.__main__ import cli_evaluate

        sys.argv = ["lm_eval", *args]
        cli_evaluate()
    elif which == "llmbench":
        import llmbench.runner as runner

        _events["imported"] = time.perf_counter() - T0
        runner.evaluate = _timed(runner.evaluate)
        _mark_first_request()
        _time_model_load()
        if os.environ.get("BENCH_COUNT_CALLS"):
            _count_model_calls()
        from llmbench.cli.main import entry

        sys.argv = ["llmbench", *args]
        entry()
    else:
        raise SystemExit(f"usage: {sys.argv[0]} lmeval|llmbench ARGS...")


if __name__ == "__main__":
    main()
