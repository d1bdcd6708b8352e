"""How close does ``OpenAIAdapter`` get to ideal concurrency?

A trivial OpenAI-compatible server (no model) answers every chat request after a fixed
latency (100 ms by default). ``requests × latency / concurrency`` is then the best
possible wall time; the ratio to it measures the client's own overhead (HTTP, the
``openai`` client, the event-loop thread, the result queue). The server runs in its
own process so that its CPU use does not share the client's GIL.

    .venv/bin/python bench/api_concurrency.py                  # 1,000 requests each
    .venv/bin/python bench/api_concurrency.py --requests 200 --requests-c1 50
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import sys
import time
import urllib.request
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _serve(port: int, latency_s: float) -> None:
    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": "echo", "object": "model", "created": 0,
                                            "owned_by": "bench"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict:
        body = await request.json()
        await asyncio.sleep(latency_s)
        return {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", backlog=4096)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("benchmark server did not start") from None
            time.sleep(0.1)


def measure(url: str, n: int, concurrency: int) -> tuple[float, int, float]:
    """(wall seconds, errors, final adaptive limit) for ``n`` requests."""
    from llmbench.models.openai.adapter import OpenAIAdapter, OpenAIConfig
    from llmbench.types import GenerationConfig, Request

    adapter = OpenAIAdapter(OpenAIConfig(model="echo", base_url=url, api="chat",
                                         concurrency=concurrency, timeout_s=30))
    requests = [Request(sample_id=str(i), kind="generate", prompt=f"request {i}",
                        config=GenerationConfig(max_new_tokens=1)) for i in range(n)]
    list(adapter.run(requests[: min(n, concurrency)]))  # warm the connection pool
    start = time.perf_counter()
    errors = sum(1 for _, r in adapter.run(requests) if r.error is not None)
    wall = time.perf_counter() - start
    limit = adapter.limiter.limit
    adapter.close()
    return wall, errors, limit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000, help="requests per concurrency level")
    ap.add_argument("--requests-c1", type=int, default=None,
                    help="requests at concurrency 1 (default: --requests; 1,000 take 100+ s)")
    ap.add_argument("--latency", type=float, default=0.1, help="server latency in seconds")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    args = ap.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "EMPTY")

    port = _free_port()
    server = mp.get_context("spawn").Process(target=_serve, args=(port, args.latency),
                                             daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(url)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"server latency {args.latency * 1000:.0f} ms, {os.cpu_count()} CPUs, "
              f"load average {load} (a busy machine inflates the ratios)\n")
        print(f"{'concurrency':>11} {'requests':>8} {'wall s':>8} {'ideal s':>8} {'ratio':>6} "
              f"{'req/s':>7} {'errors':>6}")
        for c in args.concurrency:
            n = args.requests_c1 if (c == 1 and args.requests_c1) else args.requests
            wall, errors, _ = measure(url, n, c)
            ideal = n * args.latency / c
            print(f"{c:>11} {n:>8} {wall:>8.2f} {ideal:>8.2f} {wall / ideal:>6.2f} "
                  f"{n / wall:>7.1f} {errors:>6}", flush=True)
    finally:
        server.terminate()
        server.join(timeout=10)


if __name__ == "__main__":
    main()
