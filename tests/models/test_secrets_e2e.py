"""The API key reaches the server and nothing else: after a real CLI run against a local
OpenAI-shaped server (whose error messages echo the key back), every artifact — the results
store, the response cache, the JSON export, the leaderboard site, the markdown and JSON
reports and everything printed — is searched for the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fault_server import ServerThread, fake_openai_app

pytestmark = pytest.mark.slow
SECRET = "sk-test-0123456789abcdefSECRET"
ROWS = [{"id": f"r{i}", "text": f"review {i}", "label": ["negative", "positive"][i % 2]} for i in range(12)]


def _leaky(app: Any, state: dict[str, bool]) -> Any:
    """While ``state["leak"]``, answers every third review with a 500 whose message quotes the
    Authorization header."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/chat/completions"):
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            leaky = any(f"review {i}\\n".encode() in body or f"review {i}\"".encode() in body for i in (0, 3, 6, 9))
            if state["leak"] and leaky:
                payload = json.dumps({"error": {"message": f"invalid key {auth}", "type": "server_error"}}).encode()
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": payload})
                return

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            await app(scope, replay, send)
            return
        await app(scope, receive, send)

    return wrapped


def test_the_key_is_in_no_artifact(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "task.yaml").write_text(
        "name: secret_demo\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
        "scoring: [generate]\ngeneration: {max_new_tokens: 4}\n")
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "LLMBENCH_CACHE": str(tmp_path / "cache"), "NO_COLOR": "1"}
    printed = []

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "llmbench", *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=120)
        printed.extend([proc.stdout, proc.stderr])
        return proc

    state = {"leak": True}
    with ServerThread(_leaky(fake_openai_app(), state)) as server:
        args = ("run", "-m", "openai:gpt-4o-mini", "--base-url", server.url, "-t", "task.yaml",
                "--store", "db.sqlite", "--json-dir", "export", "--model-arg", "max_retries=0", "--resamples", "50")
        run = cli(*args)
        assert run.returncode == 2 and "incomplete" in run.stderr, run.stderr  # failed samples: cannot decide
        assert "4 failed samples" in run.stdout  # the leaky answers became recorded errors
        state["leak"] = False
        rerun = cli(*args)  # retries only the failed samples; the run is complete
        assert "8 hit / 4 miss" in rerun.stdout and "failed" not in rerun.stdout
    env["COLUMNS"] = "60"  # narrow on purpose: run ids are never shortened
    listed = cli("runs", "--store", "db.sqlite").stdout
    run_id = cli("runs", "--store", "db.sqlite", "--csv").stdout.splitlines()[1].split(",")[0]
    assert "secret_demo" in listed  # the narrow table still shows the runs
    assert cli("show", run_id, "--store", "db.sqlite", "--json", "--samples", "12").returncode == 0
    assert cli("report", "--store", "db.sqlite", "--out", "site").returncode == 0
    assert cli("report", "--store", "db.sqlite", "--format", "markdown", "--out", "-").returncode == 0
    assert cli("report", "--store", "db.sqlite", "--format", "json", "--out", "rep").returncode == 0

    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name not in {"rows.jsonl", "task.yaml"}]
    assert {"db.sqlite", "responses.sqlite", "index.html"} <= {p.name for p in files}
    assert any(p.suffix == ".json" and p.parent.name == "export" for p in files)
    assert any(p.suffix == ".json" and p.parent.name == "rep" for p in files)
    assert "secret\\_demo (accuracy" in printed[-4]  # the markdown report shows the completed run
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    leaks += [f"printed output {i}" for i, text in enumerate(printed) if SECRET in text]
    assert leaks == []
    exports = [p.read_text() for p in files if p.parent.name == "export"]
    # the failures are on record with the server's message, the key in it scrubbed
    assert sum(text.count("last error: HTTP 500: invalid key Bearer ***") for text in exports) == 4
