"""`llmbench run` in a CI log: progress lines while it runs, failure reasons, and exit 2 when incomplete."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from llmbench import registry
from llmbench.models.base import ModelAdapter
from llmbench.types import Request, RequestKind, Response

ROWS = [{"id": f"r{i:02d}", "question": f"q {i}", "answer": f"q {i}"} for i in range(40)]
TASK = "name: ci_qa\nkind: qa\ndataset: {path: rows.jsonl}\nfields: {id: id, input: question, target: answer}\n"


class Flaky(ModelAdapter):
    """Echoes the input; fails every fifth sample with one of two reasons."""

    supports: frozenset[RequestKind] = frozenset({"generate"})

    def __init__(self) -> None:
        self.name = "flaky"

    def identity(self) -> dict[str, Any]:
        return {"backend": "flaky"}

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for i, req in enumerate(requests):
            n = int(req.sample_id[1:])
            if n % 5 == 0:
                yield i, Response(error="HTTP 503 [overloaded]" if n % 10 else "timed out after 30 s")
            else:
                yield i, Response(text=req.input)


@pytest.fixture(autouse=True)
def flaky_backend() -> Iterator[None]:
    registry.models.register("flaky", lambda name, options: Flaky(), origin="plugin:test")
    yield
    registry.models._items.pop("flaky", None)


def test_progress_lines_reasons_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from llmbench.cli.main import main

    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "task.yaml").write_text(TASK)
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as done:
        main(["run", "-m", "flaky:x", "-t", str(tmp_path / "task.yaml"), "--store", str(tmp_path / "r.db"),
              "--resamples", "0"])
    out, err = capsys.readouterr()
    assert done.value.code == 2  # incomplete is "cannot decide", never the gate's 1
    assert "ci_qa: 40 samples" in out and "ci_qa: 40/40 (100%)" in out  # plain progress lines, not a bar
    assert "4 × HTTP 503 [overloaded]" in out and "4 × timed out after 30 s" in out
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "1 of 1 run(s) incomplete" in lines[0] and "rerun" in lines[0]


def test_progress_lines_at_honest_time_intervals() -> None:
    """A line per ``every_s`` of wall time (from the timer, also while nothing lands), none for
    a batch that lands at once, and a rate counted from the start of work, not of the load."""
    from io import StringIO

    from rich.console import Console

    from llmbench.plan import ProgressLines

    now = [0.0]
    buf = StringIO()
    lines = ProgressLines("m · t", Console(file=buf, width=200), every_s=10, clock=lambda: now[0])
    for t in (5.0, 10.0, 19.0):  # the model loads for 20 s: one "loading" line, at 10 s
        now[0] = t
        lines.tick()
    now[0] = 20.0
    lines.start(100)
    now[0] = 29.0
    lines.advance(40)  # a batch lands: no burst of lines
    lines.tick()
    now[0] = 30.0
    lines.tick()
    now[0] = 35.0
    lines.advance(60)
    lines.tick()  # 5 s since the last line: nothing
    now[0] = 40.0
    lines.finish()
    printed = buf.getvalue().splitlines()
    assert printed == ["m · t: loading the model (10 s)",
                       "m · t: 100 samples (model ready after 20.0 s)",
                       "m · t: 40/100 (40%) · 10.0 s · 4.0/s",
                       "m · t: 100/100 (100%) · 20.0 s · 5.0/s"]
