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


def test_progress_lines_every_tenth() -> None:
    from io import StringIO

    from rich.console import Console

    from llmbench.cli.run import ProgressLines

    buf = StringIO()
    lines = ProgressLines("m · t", Console(file=buf, width=200), every_s=3600)
    lines.start(100)
    for _ in range(100):
        lines.advance(1)
    lines.finish()
    printed = buf.getvalue().splitlines()
    assert printed[0] == "m · t: 100 samples"
    assert [ln.split(" · ")[1].split(":")[1].strip().split(" ")[0] for ln in printed[1:]] == [
        f"{k}/100" for k in range(10, 101, 10)]
