"""Judge prompts: Jinja templates rendered in the project's template sandbox.

A judge template is data a user (or a colleague's repository) supplies, exactly like a task
file's prompt, so it renders in the same ``ImmutableSandboxedEnvironment`` the tasks use
(``llmbench.tasks.yaml_task``): no attribute escapes, no unsafe calls. Its text, with the scale
and the decoding settings, is part of the judge's fingerprint, so a reworded prompt makes a
judged number non-comparable with the old one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
import jinja2.sandbox

from llmbench.errors import UserError, one_line
from llmbench.tasks.yaml_task import _ENV as SANDBOX  # the one sandbox; never a plain Environment
from llmbench.types import ChatMessage, GenerationConfig, Prompt


class JudgeError(UserError):
    """A judge cannot run as asked (bad template, scale, run or label file); one line, exit 2."""


RUBRIC_TEMPLATE = """\
You are grading an answer against a reference. Reply with a single integer from \
{{ scale_min }} (wrong or useless) to {{ scale_max }} (as good as the reference) and nothing else.
{% if criteria %}
Criteria: {{ criteria }}
{% endif %}
Task input:
{{ input }}

Reference answer:
{{ reference }}

Answer to grade:
{{ prediction }}

Score ({{ scale_min }}-{{ scale_max }}):"""

PAIRWISE_TEMPLATE = """\
You are comparing two answers to the same task. Reply with exactly one of: A, B, tie.
{% if criteria %}
Criteria: {{ criteria }}
{% endif %}
Task input:
{{ input }}
{% if reference %}
Reference answer:
{{ reference }}
{% endif %}
Answer A:
{{ answer_a }}

Answer B:
{{ answer_b }}

Which answer is better (A, B or tie)?"""


@dataclass(frozen=True)
class JudgePrompt:
    """A compiled judge template and what it is part of (the fingerprint)."""

    source: str  # the template text
    where: str  # "the built-in rubric template" or the file name, for messages
    chat: bool
    config: GenerationConfig
    #: How the verdict is read: ``generate`` (the judge writes it; parsed strictly) or
    #: ``loglikelihood`` (the most likely of the declared options: "1".."5", or A / B / tie).
    method: Literal["generate", "loglikelihood"] = "generate"

    def __post_init__(self) -> None:
        try:
            SANDBOX.parse(self.source)
        except jinja2.TemplateSyntaxError as err:
            raise JudgeError(f"judge template {self.where}: line {err.lineno}: {one_line(err.message, 160)} "
                             "— fix the template syntax") from None

    def render(self, item_id: str, **variables: Any) -> Prompt:
        """The prompt for one item: text, or one user message when the judge is a chat model."""
        try:
            text = SANDBOX.from_string(self.source).render(**variables)
        except jinja2.sandbox.SecurityError as err:
            raise JudgeError(f"judge template {self.where} (item '{item_id}') reaches outside the template "
                             f"sandbox ({one_line(err, 160)}) — use only the documented variables") from None
        except jinja2.UndefinedError as err:
            raise JudgeError(f"judge template {self.where} (item '{item_id}') uses {err.message} — "
                             f"available: {', '.join(sorted(variables))}") from None
        except Exception as err:  # an expression that fails ({{ 1/0 }}) is the template's fault
            raise JudgeError(f"judge template {self.where} (item '{item_id}') failed: {type(err).__name__}: "
                             f"{one_line(err, 160)} — fix the template") from None
        return (ChatMessage(role="user", content=text),) if self.chat else text

    def fingerprint(self, **extra: Any) -> str:
        """sha256 (16 hex) of the template, prompt style, decoding and ``extra`` (the scale)."""
        blob = json.dumps({"template": self.source, "chat": self.chat, "method": self.method,
                           "config": self.config.model_dump(mode="json"), **extra},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_template(path: Path | None, default: str) -> tuple[str, str]:
    """(template text, how messages name it): the file's text, or the built-in default."""
    if path is None:
        return default, "(built-in)"
    try:
        return path.read_text(encoding="utf-8"), f"'{path}'"
    except FileNotFoundError:
        raise JudgeError(f"judge template '{path}' does not exist — check --template") from None
    except (OSError, UnicodeDecodeError) as err:
        raise JudgeError(f"cannot read judge template '{path}': {one_line(err, 160)} — give a UTF-8 "
                         "text file") from None
