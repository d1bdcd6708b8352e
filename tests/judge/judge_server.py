"""A scripted judge behind a local OpenAI-compatible server (no model), for the judge tests.

It reads the prompt the built-in templates render and answers by rule, so every verdict is
known in advance:

* rubric ("Answer to grade:"): ``5`` when the answer equals the reference, ``1`` when it says
  "bad", an unparseable sentence when it says "ramble", else ``Score: 3``;
* pairwise ("Answer A:"): the shorter answer (``A`` / ``B``, ``tie`` when equally long), or
  always ``A`` when ``app.state.always_first`` is set (a judge with pure position bias), or an
  unparseable sentence when the task input says "ramble".

``app.state.calls`` counts the requests, so a test can see a rerun answered by the cache.
"""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def _section(text: str, head: str, tails: tuple[str, ...]) -> str:
    pattern = re.escape(head) + r"\n(.*?)\n\n(?:" + "|".join(re.escape(t) for t in tails) + ")"
    found = re.search(pattern, text, re.DOTALL)
    return found.group(1) if found else ""


def rubric_verdict(prompt: str) -> str:
    reference = _section(prompt, "Reference answer:", ("Answer to grade:",))
    answer = _section(prompt, "Answer to grade:", ("Score (",))
    if answer == reference:
        return "5"
    if "bad" in answer:
        return "1"
    if "ramble" in answer:
        return "Well, it depends on what you value."
    return "Score: 3"


def pairwise_verdict(prompt: str, always_first: bool) -> str:
    task_input = _section(prompt, "Task input:", ("Reference answer:", "Answer A:"))
    if "ramble" in task_input:
        return "Both have merits."
    if always_first:
        return "A"
    a = _section(prompt, "Answer A:", ("Answer B:",))
    b = _section(prompt, "Answer B:", ("Which answer",))
    return "tie" if len(a) == len(b) else ("A" if len(a) < len(b) else "B")


def judge_app() -> FastAPI:
    app = FastAPI()
    app.state.calls = 0
    app.state.always_first = False

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        app.state.calls += 1
        prompt = body["messages"][-1]["content"]
        if "Answer to grade:" in prompt:
            text = rubric_verdict(prompt)
        else:
            text = pairwise_verdict(prompt, app.state.always_first)
        return JSONResponse({
            "id": "chat-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 2, "total_tokens": 0},
        })

    return app
