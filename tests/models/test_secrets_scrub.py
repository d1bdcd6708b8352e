"""The API key in every form a server can send it back is removed before anything is stored.

Unit cases for ``KeyScrubber`` (each form, each alignment, fragments, the scrub-then-cut
order, placeholders), then one run end to end: a local OpenAI-shaped server answers with the
key raw, base64-encoded, URL-encoded and cut, and fails some requests with an error body whose
key straddles the 300-character cut; the results store, the response cache, the JSON export
and ``show`` (table and --json) must hold no form of it.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fault_server import ServerThread

from llmbench.models.openai.scrub import FRAGMENT, MASK, KeyScrubber

KEY = "sk-proj-Zq8/Xv+T2mLk9Wd=R7pYc4NbH1sEfGu"  # '/', '+', '=' make the URL forms differ
PASSWORD = "hunter2-Pa55word/XYZ"  # in --base-url http://user:PASSWORD@host


def lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def leaked_forms(key: str) -> list[str]:
    """Every form the scrubber promises to remove, as a leak detector (independent of it)."""
    forms = [key, quote(key, safe=""), quote_plus(key), lower_hex(quote(key, safe=""))]
    hexed = key.encode().hex()
    for h in (hexed, hexed.upper()):
        forms += [h[i : i + 2 * FRAGMENT] for i in range(len(h) - 2 * FRAGMENT + 1)]
    for prefix in ("", "Bearer ", "user:", "ab"):
        blob = base64.b64encode((prefix + key).encode()).decode()
        forms.append(blob[len(prefix) * 4 // 3 + 4 : -4])  # a stretch inside the key's part
        forms.append(base64.urlsafe_b64encode((prefix + key).encode()).decode()[len(prefix) * 4 // 3 + 4 : -4])
    forms += [key[i : i + FRAGMENT] for i in range(len(key) - FRAGMENT + 1)]
    return forms


def leaks(text: str, key: str = KEY) -> list[str]:
    return [f for f in leaked_forms(key) if f and f in text]


def test_hex_forms_of_the_key_are_removed() -> None:
    hexed = KEY.encode().hex()
    for text in (f"dump {hexed} end", f"DUMP {hexed.upper()}", f"cut {hexed[:40]}", f"tail {hexed[30:]}",
                 f"in bytes {(b'Bearer ' + KEY.encode()).hex()}"):
        assert leaks(text)
        clean = KeyScrubber(KEY).scrub(text)
        assert leaks(clean) == [] and MASK in clean, clean


def test_url_credentials_are_found_and_redacted() -> None:
    from llmbench.models.openai.scrub import Scrubber, redact_url, redact_urls, url_secrets

    url = f"http://user:{quote(PASSWORD, safe='')}@127.0.0.1:9/v1?api-key=sk-in-query-123456&x=1"
    assert url_secrets(url) == [PASSWORD, "sk-in-query-123456"]
    assert redact_url(url) == f"http://user:{MASK}@127.0.0.1:9/v1?api-key={MASK}&x=1"
    assert redact_url("https://api.example.com/v1") == "https://api.example.com/v1"
    assert redact_urls({"options": {"base_url": url, "n": 3}, "tags": ["https://x/?token=abc"]}) == {
        "options": {"base_url": redact_url(url), "n": 3}, "tags": [f"https://x/?token={MASK}"]}
    both = Scrubber([KEY, PASSWORD])
    assert both.scrub(f"{KEY} and {PASSWORD}") == f"{MASK} and {MASK}"


@pytest.mark.parametrize("text", [
    f"invalid key {KEY}",
    f"Authorization: Bearer {KEY} was rejected",
    f"url=https://x/?api_key={quote(KEY, safe='')}&x=1",
    f"url=https://x/?api_key={quote_plus(KEY)}",
    f"lower hex {lower_hex(quote(KEY, safe=''))}",
    *(f"header {base64.b64encode((p + KEY + s).encode()).decode()} end"
      for p in ("", "B", "Be", "Bearer ", "user:") for s in ("", "x", "xy")),
    *(f"jwt-ish {base64.urlsafe_b64encode((p + KEY).encode()).decode()}" for p in ("", "a", "ab")),
    f"a proxy cut its message at {KEY[:20]}",
    f"{KEY[17:]} was the end of it",
    f"middle {KEY[5:25]} part",
    f"twice {KEY} and {KEY}",
])
def test_every_form_of_the_key_is_removed(text: str) -> None:
    assert leaks(text)  # the detector sees the leak before scrubbing
    clean = KeyScrubber(KEY).scrub(text)
    assert leaks(clean) == [], clean
    assert MASK in clean


def test_text_without_the_key_is_unchanged() -> None:
    text = "positive — the film was great; sk-proj- is how project keys start. " * 3
    assert KeyScrubber(KEY).scrub(text) == text


def test_scrub_then_cut_leaves_no_fragment_at_the_edge() -> None:
    """The bug: cut to 300 first, then replace the whole key — the key's first characters
    before the cut no longer match and stay in the stored error."""
    body = "x" * 285 + " " + KEY + " tail"
    naive = body[:300].replace(KEY, MASK)
    assert leaks(naive)  # the old order leaks
    clean = KeyScrubber(KEY).scrub_error(body, 300)
    assert len(clean) <= 300 and leaks(clean) == []


def test_a_placeholder_key_does_not_change_answers() -> None:
    """``EMPTY`` (local servers) is no secret: an answer containing the word keeps it,
    while an error message is still scrubbed of it."""
    s = KeyScrubber("EMPTY")
    assert s.scrub("the box is EMPTY") == "the box is EMPTY"
    assert s.scrub_error("bad key EMPTY", 100) == f"bad key {MASK}"


def test_the_adapter_cuts_only_scrubbed_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmbench.models.openai.adapter import OpenAIAdapter, OpenAIConfig

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    adapter = OpenAIAdapter(OpenAIConfig(model="m", base_url="http://127.0.0.1:9/v1"))
    error = adapter._scrub("HTTP 400: " + "y" * 280 + KEY, 300)
    assert len(error) <= 300 and leaks(error) == []
    assert leaks(adapter._clean(f"answer {base64.b64encode(KEY.encode()).decode()}")) == []


def test_a_key_in_the_base_url_is_not_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gateways that take the key in the query string: identity() is stored with every run."""
    from llmbench.models.openai.adapter import OpenAIAdapter, OpenAIConfig

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    adapter = OpenAIAdapter(OpenAIConfig(model="m", base_url=f"http://127.0.0.1:9/v1?api-key={quote(KEY, safe='')}"))
    assert leaks(json.dumps(adapter.identity())) == [] and leaks(repr(adapter)) == []
    assert adapter.identity()["base_url"] == f"http://127.0.0.1:9/v1?api-key={MASK}"


# -- end to end ---------------------------------------------------------------------------

ROWS = [{"id": f"r{i}", "text": f"review {i}", "label": ["negative", "positive"][i % 2]} for i in range(10)]
TASK = ("name: leak_demo\nkind: summarization\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nmetrics: [rouge]\nprompt: {template: '{{ input }}'}\n")


def leaky_app(key: str) -> Any:
    """Chat completions that answer review ``i`` with the key in form ``i % 5``, or (i % 5 == 4)
    fail with HTTP 400 and a body whose key straddles the 300-character cut."""
    app = FastAPI()
    forms = [key, base64.b64encode(f"Bearer {key}".encode()).decode(), quote(key, safe=""),
             f"cut here {key[:20]}"]

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        i = int(body["messages"][-1]["content"].split()[-1])
        if i % 5 == 4:
            return JSONResponse({"error": {"message": "z" * 265 + f" bad key {key} given", "type": "invalid"}},
                                status_code=400)
        return JSONResponse({
            "id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"summary {forms[i % 5]}"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
        })

    return app


def test_no_form_of_the_key_reaches_store_cache_export_or_show(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from llmbench.cli.main import main
    from llmbench.store import ResultStore

    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "task.yaml").write_text(TASK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "300")

    def cli(*argv: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as done:
            main(list(argv))
        out, err = capsys.readouterr()
        return int(done.value.code or 0), out + err

    db = str(tmp_path / "runs.db")
    with ServerThread(leaky_app(KEY)) as server:
        code, printed = cli("run", "-m", "openai:m", "--base-url", server.url, "-t", "task.yaml", "--store", db,
                            "--json-dir", "export", "--model-arg", "max_retries=0", "--resamples", "0")
    assert code == 2 and "2 failed samples" in printed, printed  # the two 400s are recorded errors
    run_id = ResultStore(db).runs()[0].id
    shown = [cli("show", run_id, "--store", db, "--samples", "10")[1],
             cli("show", run_id, "--store", db, "--json")[1]]
    export = json.loads(next((tmp_path / "export").glob("*.json")).read_text())
    stored = [s.prediction or "" for s in ResultStore(db).samples(run_id)]
    errors = [s.error or "" for s in ResultStore(db).samples(run_id)]
    assert sum(MASK in p for p in stored) == 8 and sum(MASK in e for e in errors) == 2  # scrubbed, not dropped
    assert all(len(e) <= 300 for e in errors if e)

    artifacts = {"printed": printed, "show": shown[0], "show --json": shown[1],
                 "export": json.dumps(export)}
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name not in {"rows.jsonl", "task.yaml"}:
            artifacts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert any("responses.sqlite" in name for name in artifacts)  # the cache was written and searched
    found = {name: leaks(text) for name, text in artifacts.items() if leaks(text)}
    assert found == {}


# -- every field, every form, every sink ----------------------------------------------------

FORMS = {
    "raw": KEY,
    "base64": base64.b64encode(f"Bearer {KEY}".encode()).decode(),
    "url": quote(KEY, safe=""),
    "hex": KEY.encode().hex(),
    "split": f"{KEY[:19]} ... {KEY[19:]}",
    "password": PASSWORD,
    "basic-auth": base64.b64encode(f"user:{PASSWORD}".encode()).decode(),
}
FIELDS = ("text", "finish_reason", "error-400", "error-500", "error-429", "headers", "tool")


def every_field_app() -> Any:
    """Chat completions for prompt ``review i``: field ``FIELDS[i % 7]`` of the answer carries
    the secret in form ``list(FORMS)[i // 7]``; every answer also echoes the request's
    Authorization header (Bearer key, or Basic user:password) in a response header."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        i = int(body["messages"][-1]["content"].split()[-1])
        field, secret = FIELDS[i % len(FIELDS)], list(FORMS.values())[i // len(FIELDS)]
        headers = {"x-echo-auth": request.headers.get("authorization", "")}
        if field == "headers":
            headers |= {"x-request-id": secret, "openai-organization": secret, "retry-after": secret}
        if field.startswith("error-"):
            status = int(field[-3:])
            return JSONResponse({"error": {"message": f"bad {secret}", "type": secret, "param": secret,
                                           "code": secret}}, status_code=status, headers=headers)
        message: dict[str, Any] = {"role": "assistant", "content": f"summary {secret}" if field == "text" else "ok"}
        if field == "tool":
            call = {"name": secret, "arguments": json.dumps({"k": secret})}
            message |= {"content": None, "refusal": secret,
                        "tool_calls": [{"id": secret, "type": "function", "function": call}]}
        return JSONResponse({
            "id": secret if field == "tool" else "c", "object": "chat.completion", "created": 0, "model": body["model"],
            "system_fingerprint": secret if field == "tool" else None,
            "choices": [{"index": 0, "finish_reason": f"stop {secret}" if field == "finish_reason" else "stop",
                         "message": message}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
        }, headers=headers)

    return app


def test_every_field_and_form_is_scrubbed_from_every_sink(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue 28 item 8: a key in ``finish_reason`` was stored raw in the run's usage, the
    samples' stats, the cache, the export and ``show``; a hex key in an error body stayed; the
    base URL's password was stored in the run config. Every field the client reads (answer
    text, finish reason, error bodies of retried and final failures, headers, tool fields),
    each in raw, base64, URL, hex and split form, and the base URL's password: none reaches the
    store file, the cache file, --json-dir, ``show``, ``show --json``, the output or the logs."""
    import logging

    from llmbench.cli.main import main
    from llmbench.store import ResultStore

    n = len(FIELDS) * len(FORMS)
    (tmp_path / "rows.jsonl").write_text("\n".join(
        json.dumps({"id": f"r{i}", "text": f"review {i}", "label": "x"}) for i in range(n)))
    (tmp_path / "task.yaml").write_text(TASK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "300")
    caplog.set_level(logging.DEBUG)

    def cli(*argv: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as done:
            main(list(argv))
        out, err = capsys.readouterr()
        return int(done.value.code or 0), out + err

    db = str(tmp_path / "runs.db")
    with ServerThread(every_field_app()) as server:
        url = server.url.replace("http://", f"http://user:{quote(PASSWORD, safe='')}@")
        code, printed = cli("run", "-m", "openai:m", "--base-url", url, "-t", "task.yaml", "--store", db,
                            "--json-dir", "export", "--model-arg", "max_retries=0", "--resamples", "0")
    errors_expected = 3 * len(FORMS)  # the error-400, -500 and -429 rows
    assert code == 2 and f"{errors_expected} failed samples" in printed, printed
    run = ResultStore(db).runs()[0]
    samples = ResultStore(db).samples(run.id)
    assert sum(MASK in (s.prediction or "") for s in samples) == len(FORMS)  # the text rows: scrubbed, kept
    assert sum(MASK in (s.error or "") for s in samples) >= 2 * len(FORMS)  # 400 and 500 bodies quoted, scrubbed
    reasons = run.usage.get("finish_reasons", {})
    assert sum(v for k, v in reasons.items() if MASK in k) == len(FORMS), reasons
    assert run.config["model"]["options"]["base_url"].startswith(f"http://user:{MASK}@")
    shown = {"show": cli("show", run.id, "--store", db, "--samples", str(n))[1],
             "show --json": cli("show", run.id, "--store", db, "--json", "--samples", str(n))[1]}
    assert f"stop {MASK}" in shown["show --json"]

    artifacts = {"printed": printed, **shown, "logs": caplog.text}
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name not in {"rows.jsonl", "task.yaml"}:
            artifacts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert any("responses.sqlite" in name for name in artifacts) and any("export" in name for name in artifacts)
    assert "HTTP Request" in caplog.text  # the HTTP stack did log (and was scrubbed)
    found = {name: leaks(text) + leaks(text, PASSWORD) for name, text in artifacts.items()}
    assert {name: forms for name, forms in found.items() if forms} == {}
