"""How fast does an ``openai:`` run get going? Fork -> first request at the server.

An API run should cost the process start, the ``openai`` client and llmbench's own imports
— never torch or transformers, which an ``openai:`` run does not need. A fake
OpenAI-compatible server runs in this process (a thread; idle until the request comes)
and notes the wall-clock time its first request arrives; the client is the real CLI,
``llmbench run -m openai:... --base-url ...`` on a 20-sample task, started fresh each
repeat. Reported per repeat: fork -> first request, fork -> exit, and whether torch or
transformers were imported; for reference, a bare ``python -c pass`` and
``python -c "import openai"``; with ``--importtime``, the largest imports of one run
(``python -X importtime``). The load average is stored with the numbers: on a busy
machine the seconds say more about the scheduler than about llmbench.

    .venv/bin/python bench/api_startup.py                  # 5 repeats
    .venv/bin/python bench/api_startup.py --repeats 3 --importtime
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

TARGET_S = 1.0
SAMPLES = 20
HEAVY = ("torch", "transformers")
# The CLI as `python -m llmbench` runs it, plus one line at exit naming the heavy modules loaded.
WRAPPER = (
    "import atexit, json, sys\n"
    f"atexit.register(lambda: print('HEAVY ' + json.dumps(sorted({{m.split('.')[0] for m in sys.modules}}"
    f" & {set(HEAVY)!r})), file=sys.stderr))\n"
    "sys.argv = ['llmbench', *sys.argv[1:]]\n"
    "from llmbench.cli.main import entry\n"
    "entry()\n"
)


class FirstRequest:
    """A minimal OpenAI-compatible chat endpoint that records when each request arrives."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> dict[str, Any]:
            self.arrivals.append(time.time())
            body = await request.json()
            return {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "positive"}}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}

        self.app = app

    def serve(self) -> tuple[str, Any]:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1", server


def _task(folder: Path) -> Path:
    rows = [{"id": f"r{i}", "text": f"review {i}", "label": ["negative", "positive"][i % 2]}
            for i in range(SAMPLES)]
    (folder / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    path = folder / "task.yaml"
    path.write_text("name: api_startup\nkind: classification\ndataset: {path: rows.jsonl}\n"
                    "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n"
                    "scoring: [generate]\ngeneration: {max_new_tokens: 2}\n")
    return path


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(start time.time(), wall seconds, the finished process)."""
    start = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    return start, time.perf_counter() - t0, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--importtime", action="store_true", help="also list the largest imports of one run")
    args = ap.parse_args()

    fake = FirstRequest()
    url, server = fake.serve()
    py = str(c.PY if c.PY.exists() else Path(sys.executable))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _task(folder)
        env = c.bench_env(OPENAI_API_KEY="EMPTY", LLMBENCH_CACHE=str(folder / "cache"), NO_COLOR="1")
        bare = [_timed([py, "-c", "pass"], env, folder)[1] for _ in range(args.repeats)]
        openai_only = [_timed([py, "-c", "import openai"], env, folder)[1] for _ in range(args.repeats)]
        for k in range(args.repeats):
            fake.arrivals.clear()
            argv = [py, "-c", WRAPPER, "run", "-m", "openai:bench-model", "--base-url", url,
                    "-t", "task.yaml", "--store", f"db{k}.sqlite", "--no-cache", "--resamples", "0"]
            start, wall, proc = _timed(argv, env, folder)
            if proc.returncode != 0 or not fake.arrivals:
                raise SystemExit(f"the run failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
            heavy = next((json.loads(ln[6:]) for ln in proc.stderr.splitlines() if ln.startswith("HEAVY ")), None)
            rows.append({"first_request_s": min(fake.arrivals) - start, "exit_s": wall,
                         "requests": len(fake.arrivals), "heavy_imports": heavy})
        imports: list[tuple[str, float]] = []
        if args.importtime:
            argv = [py, "-X", "importtime", "-c", WRAPPER, "run", "-m", "openai:bench-model", "--base-url", url,
                    "-t", "task.yaml", "--store", "it.sqlite", "--no-cache", "--resamples", "0"]
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=folder, timeout=300)
            for line in proc.stderr.splitlines():
                if line.startswith("import time:") and "|" in line:
                    _, cumulative, name = line[len("import time:"):].split("|")
                    if cumulative.strip().isdigit():
                        imports.append((name.rstrip(), int(cumulative) / 1e6))
            imports = sorted((i for i in imports if not i[0].startswith("  ")), key=lambda i: -i[1])[:12]
    server.should_exit = True

    first = c.median([r["first_request_s"] for r in rows])
    load = os.getloadavg()
    print(c.table(["repeat", "fork -> first request (s)", "fork -> exit (s)", "requests", "torch/transformers"],
                  [[k + 1, r["first_request_s"], r["exit_s"], r["requests"],
                    ",".join(r["heavy_imports"] or []) or "none"] for k, r in enumerate(rows)],
                  title=f"openai: run of {SAMPLES} samples against a local fake server"))
    print(f"\nbare `python -c pass`: {c.median(bare):.3f} s · `import openai`: {c.median(openai_only):.3f} s "
          f"(medians of {args.repeats})")
    print(f"median fork -> first request: {first:.3f} s (target < {TARGET_S:g} s on an idle machine: "
          f"{c.verdict(first < TARGET_S)}) · load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"on {os.cpu_count()} CPUs")
    if imports:
        print("\nlargest imports (cumulative s, -X importtime):")
        for name, secs in imports:
            print(f"  {secs:6.3f}  {name.strip()}")
    heavy_any = sorted({m for r in rows for m in (r["heavy_imports"] or [])})
    if heavy_any:
        print(f"\nWARNING: an openai: run imported {', '.join(heavy_any)}")
    path = c.write_json("api_startup", {
        "samples": SAMPLES, "target_s": TARGET_S, "median_first_request_s": first,
        "median_exit_s": c.median([r["exit_s"] for r in rows]), "repeats": rows,
        "bare_python_s": c.median(bare), "import_openai_s": c.median(openai_only),
        "heavy_imports": heavy_any, "largest_imports": imports,
    })
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
