"""Task templates cannot hang or fill memory (issue 28, item 6): each payload that ran past
60 s, took 52 s or died with exit 3 is refused within 5 s as one line naming the task file;
ordinary templates still render. The CLI side (exit 2, one line, store intact) is in
tests/core/test_bad_input.py (``template_dos_*``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from llmbench.tasks import TaskError, load_task
from llmbench.tasks.template import MAX_CHARS, TemplateLimit, render
from llmbench.tasks.yaml_task import _ENV

BASE = ("name: dos\nkind: classification\ndataset: {path: d.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n")


def _payloads() -> list[tuple[str, str]]:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "core"))
    from test_bad_input import TEMPLATE_DOS

    return TEMPLATE_DOS


@pytest.mark.parametrize(("template", "why"), _payloads())
def test_a_hostile_template_stops_within_5_seconds_naming_the_file(template: str, why: str,
                                                                   tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text(json.dumps({"id": "a", "text": "t", "label": "positive"}) + "\n")
    path = tmp_path / "dos.yaml"
    path.write_text(BASE + "prompt: {template: " + json.dumps(template) + "}\n")
    start = time.monotonic()
    with pytest.raises(TaskError) as err:
        load_task(str(path)).load_split("test")
    assert time.monotonic() - start < 5.0
    message = str(err.value)
    assert str(path) in message and "prompt.template" in message and why in message, message
    assert "\n" not in message


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ input|upper }} {{ 2**10 }} {{ '{:>5}'.format(1) }} {{ '%05d' % 7 }}", "T 1024     1 00007"),
    ("{% for i in range(3) %}{{ i }}{% endfor %} {{ 'ab' * 2 }} {{ 'a b'|replace(' ', '-') }}", "012 abab a-b"),
    ("{{ ', '.join(['x', 'y']) }} {{ 'x'|center(5) }}| {{ lipsum(1)|length > 0 }}", "x, y   x  | True"),
    ("{{ 10**20 }} {{ '{:,}'.format(8000000000) }} {{ 12345678901|round }}", "100000000000000000000 8,000,000,000 "
     "12345678901"),
])
def test_ordinary_templates_render_as_before(template: str, expected: str) -> None:
    assert render(_ENV.from_string(template), input="t") == expected


def test_output_is_bounded_even_when_each_piece_is_small() -> None:
    template = _ENV.from_string("{% for i in range(20) %}{{ s }}{% endfor %}")
    with pytest.raises(TemplateLimit, match="output"):
        render(template, s="x" * (MAX_CHARS // 10))


def test_the_time_bound_keeps_an_outer_tracer_running() -> None:
    """``render`` chains to a tracer already installed (coverage), and restores it."""
    import sys

    seen: list[str] = []

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        seen.append(frame.f_code.co_name)
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        assert render(_ENV.from_string("{{ x|upper }}"), x="a") == "A"
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)
    assert seen


def test_render_equals_jinjas_own_render_with_globals_and_shadowing() -> None:
    """``render`` builds its context from the flattened globals (the driver renders a prompt
    per sample); every template below gives exactly what the sandbox's own ``render`` gives:
    globals (``range``, ``namespace``, ``cycler``, ``joiner``, ``dict``, a template's own), a
    variable that hides a global, loops, macros, and the same error for an undefined name."""
    import jinja2 as j

    cases: list[tuple[str, dict[str, object]]] = [
        ("{{ input }}", {"input": "x é"}),
        ("{% for i in range(3) %}{{ i }}{% endfor %}|{{ dict(a=1) }}", {}),
        ("{% set ns = namespace(n=0) %}{% for c in choices %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}",
         {"choices": ["a", "b"]}),
        ("{% set c = cycler('x', 'y') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{% set j = joiner('+') %}"
         "{{ j() }}a{{ j() }}b", {}),
        ("{{ range }}", {"range": "shadowed"}),
        ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(row.q) }}{{ own }}", {"row": {"q": 1}}),
    ]
    for source, variables in cases:
        template = _ENV.from_string(source, globals={"own": "G"})
        assert render(template, **variables) == template.render(**variables), source
    strict = _ENV.from_string("{{ missing }}")
    with pytest.raises(j.UndefinedError) as ours:
        render(strict)
    with pytest.raises(j.UndefinedError) as theirs:
        strict.render()
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(("template", "traced"), [
    ("Question: {{ input }}\nAnswer:", False),
    ("{{ input|upper }} {{ 'ab' * 2 }} {% if input %}{{ row.q }}{% else %}-{% endif %}{% set x = 1 %}{{ x }}", False),
    ("{% for i in range(2) %}{{ i }}{% endfor %}", True),
    ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(input) }}", True),
    ("{% block b %}{{ input }}{% endblock %}", True),
])
def test_only_templates_that_can_repeat_their_own_code_are_traced(template: str, traced: bool,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The time bound traces a template's frames; one whose syntax repeats nothing (no loop,
    macro, block, include) runs each statement once and renders untraced, as fast as Jinja's
    own render, with the same text."""
    import sys

    calls: list[object] = []
    real = sys.settrace
    monkeypatch.setattr(sys, "settrace", lambda fn: (calls.append(fn), real(fn)))
    compiled = _ENV.from_string(template)
    text = render(compiled, input="t", row={"q": 1})
    monkeypatch.undo()
    assert text == compiled.render(input="t", row={"q": 1})
    assert bool(calls) == traced


PLAIN_VARIABLES = [
    {"input": "a b\n", "context": "C", "target": "t", "row": {"x": 1}},
    {"input": "é \u2028", "context": None, "target": "t", "row": {"x": 1}},
    {"input": "{{ x }}", "context": "", "target": "", "row": {}},
]


@pytest.mark.parametrize("source", [
    "{{ input }}", " {{ target }}", "Q: {{ input }}\nA:", "{{- input -}}  \n", "{{ input }}{{ context }}",
    "x {# note #} {{ input }}", "{% raw %}{{ input }}{% endraw %}", "", "{{ lipsum }}", "{{ row.x }}",
    "{{ input | upper }}", "{{ missing }}",
])
def test_plain_templates_render_what_jinja_renders(source: str) -> None:
    """Text and bare variables are joined without Jinja when every variable is a string;
    anything else (a global, an undefined name, None, a filter) is Jinja's, as before."""
    template = _ENV.from_string(source)
    for variables in PLAIN_VARIABLES:
        try:
            expected: object = template.render(**variables)
        except Exception as err:  # the same failure is expected of both
            expected = type(err)
        try:
            got: object = render(template, **variables)
        except Exception as err:
            got = type(err)
        assert got == expected, (source, variables)


def test_a_plain_template_keeps_the_size_limit() -> None:
    with pytest.raises(TemplateLimit):
        render(_ENV.from_string("Q: {{ input }}"), input="x" * MAX_CHARS)
