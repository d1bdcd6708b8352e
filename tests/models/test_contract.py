"""A model backend written the way a plugin author would: against ``ModelAdapter`` alone.

It subclasses the documented base, implements only ``identity`` and ``run`` (plus a scoring
method name), registers under a new backend name, and then must work everywhere a built-in
model does: ``llmbench run`` (answers cached, a rerun sends nothing), and ``llmbench serve``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from llmbench import registry
from llmbench.models.base import ModelAdapter
from llmbench.types import Request, RequestKind, Response, Usage

ROWS = [{"id": f"r{i}", "question": f"What is item {i}?", "answer": f"item {i}"} for i in range(5)]
TASK = ("name: plugin_qa\nkind: qa\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: question, target: answer}\n")


class ShoutAdapter(ModelAdapter):
    """Answers every generate request with its raw input in upper case."""

    supports: frozenset[RequestKind] = frozenset({"generate"})
    calls: list[str] = []  # noqa: RUF012 - shared on purpose: counts calls across instances

    def __init__(self, name: str) -> None:
        self.name = f"shout:{name}"

    def identity(self) -> dict[str, Any]:
        return {"backend": "shout", "name": self.name}

    def scoring_method(self, kind: RequestKind) -> str:
        return "upper-case"

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for i, req in enumerate(requests):
            ShoutAdapter.calls.append(req.sample_id)
            text = (req.input or (req.prompt if isinstance(req.prompt, str) else req.prompt[-1].content)).upper()
            yield i, Response(text=text, usage=Usage(prompt_tokens=3, completion_tokens=2))


def _factory(name: str, options: dict[str, Any]) -> ModelAdapter:
    return ShoutAdapter(name)


@pytest.fixture(autouse=True)
def shout_backend() -> Iterator[None]:
    registry.models.register("shout", _factory, origin="plugin:test")
    ShoutAdapter.calls.clear()
    yield
    registry.models._items.pop("shout", None)


def test_plugin_adapter_runs_through_the_cli_and_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from llmbench.cli.main import main
    from llmbench.store import ResultStore

    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "task.yaml").write_text(TASK)
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    store = str(tmp_path / "runs.db")
    argv = ["run", "-m", "shout:loud", "-t", str(tmp_path / "task.yaml"), "--store", store, "--resamples", "0"]
    for _ in range(2):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0, capsys.readouterr().err
    assert sorted(ShoutAdapter.calls) == [r["id"] for r in ROWS]  # the second run was all cache hits
    runs = ResultStore(store).runs()
    assert len(runs) == 2 and {r.scoring_method for r in runs} == {"upper-case"}
    assert {r.status for r in runs} == {"complete"}


def test_plugin_adapter_is_served() -> None:
    from fastapi.testclient import TestClient

    from llmbench.serve.app import create_app

    app = create_app(ShoutAdapter("loud"), "shout")
    with TestClient(app) as client:
        reply = client.post("/v1/completions", json={"model": "shout", "prompt": "hello there", "max_tokens": 8})
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["text"] == "HELLO THERE"
        # The adapter has no token scorer: a logprobs request is refused, not faked.
        refused = client.post("/v1/completions", json={"model": "shout", "prompt": "hi", "max_tokens": 1,
                                                       "logprobs": 1, "echo": True})
        assert refused.status_code == 400
