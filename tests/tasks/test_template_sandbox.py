"""A task file is data, not code: prompt templates render in Jinja2's immutable sandbox.

Each payload below runs a shell command or reaches Python internals under a plain
``jinja2.Environment`` (the first test proves that, so the payloads are real). Under the
sandbox each is a one-line ``TaskError`` naming the task file, and the file the command
would have written does not exist. A template in the *data* is only text.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest

from llmbench.tasks import TaskError, load_task

ROWS = [{"id": "r0", "text": "great film", "label": "positive"},
        {"id": "r1", "text": "dull film", "label": "negative"}]
TASK = ("name: sandbox\nkind: classification\ndataset: {path: rows.jsonl}\n"
        "fields: {id: id, input: text, target: label}\nlabels: [negative, positive]\n")


def payloads(marker: Path) -> dict[str, str]:
    """Templates that write ``marker`` (or reach os/Python internals) if they are executed."""
    cmd = f"touch {marker}"
    return {
        "cycler_globals": f"{{{{ cycler.__init__.__globals__.os.popen('{cmd}').read() }}}}",
        "joiner_globals": f"{{{{ joiner.__init__.__globals__.os.system('{cmd}') }}}}",
        "namespace_globals": f"{{{{ namespace.__init__.__globals__.os.popen('{cmd}').read() }}}}",
        "lipsum_globals": f"{{{{ lipsum.__globals__['os'].popen('{cmd}').read() }}}}",
        "self_context": ("{{ self._TemplateReference__context.cycler.__init__.__globals__.os"
                         f".popen('{cmd}').read() }}}}"),
        "set_then_call": f"{{% set g = cycler.__init__.__globals__ %}}{{{{ g.os.popen('{cmd}').read() }}}}",
        "attr_filter": (f"{{{{ (cycler|attr('__init__')|attr('__globals__'))['os'].popen('{cmd}')"
                        ".read() }}"),
        "subclasses": ("{% for c in ''.__class__.__mro__[1].__subclasses__() %}"
                       f"{{% if c.__name__ == 'Popen' %}}{{{{ c('{cmd}', shell=True) }}}}{{% endif %}}"
                       "{% endfor %}"),
        "str_mro": "{{ ''.__class__.__mro__ }}",
        "input_class": "{{ input.__class__.__base__.__subclasses__() }}",
        "format_escape": "{{ '{0.__class__.__mro__}'.format(input) }}",
        "mutate_row": "{{ row.update({'text': 'x'}) }}{{ input }}",
    }


PAYLOAD_NAMES = sorted(payloads(Path("m")))


def write_task(tmp: Path, template: str, key: str = "template") -> Path:
    (tmp / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    path = tmp / "task.yaml"
    path.write_text(TASK + "prompt:\n  " + key + ": " + json.dumps(template) + "\n")
    return path


@pytest.mark.parametrize("name", ["cycler_globals", "joiner_globals", "lipsum_globals", "set_then_call",
                                  "attr_filter", "namespace_globals"])
def test_the_payloads_run_commands_in_a_plain_environment(tmp_path: Path, name: str) -> None:
    """Proof that the payloads are live: a plain Environment executes them."""
    marker = tmp_path / "pwned"
    jinja2.Environment().from_string(payloads(marker)[name]).render(input="x")
    assert marker.exists()


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
@pytest.mark.parametrize("key", ["template", "target_template"])
def test_a_template_escape_is_one_line_naming_the_file(tmp_path: Path, name: str, key: str) -> None:
    marker = tmp_path / "pwned"
    path = write_task(tmp_path, payloads(marker)[name], key)
    with pytest.raises(TaskError) as err:
        task = load_task(str(path))
        task.build_requests(task.samples(), "loglikelihood")
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg, msg
    assert f"prompt.{key}" in msg
    assert not marker.exists()


def test_the_error_says_sandbox_and_how_to_fix(tmp_path: Path) -> None:
    path = write_task(tmp_path, payloads(tmp_path / "m")["cycler_globals"])
    with pytest.raises(TaskError) as err:
        load_task(str(path)).samples()  # found when the samples are first built: before any model
    assert "outside the template sandbox" in str(err.value) and "remove the attribute access" in str(err.value)


def test_a_template_in_the_data_is_only_text(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    rows = [{"id": "r0", "text": payloads(marker)["cycler_globals"], "label": "positive"}]
    path = write_task(tmp_path, "Review: {{ input }}\nLabel:")
    (tmp_path / "rows.jsonl").write_text(json.dumps(rows[0]))
    task = load_task(str(path))
    (request,) = task.build_requests(task.samples(), "generate")
    assert request.prompt == f"Review: {rows[0]['text']}\nLabel:"
    assert not marker.exists()


def test_ordinary_templates_still_work(tmp_path: Path) -> None:
    """Filters, loops, conditionals and reading ``row`` are what templates are for."""
    template = ("{% for c in choices %}{{ loop.index }}. {{ c|upper }}\n{% endfor %}"
                "{{ row.text|title if row.id == 'r0' else input }} ({{ input|length }})")
    path = write_task(tmp_path, template)
    task = load_task(str(path))
    prompts = [r.prompt for r in task.build_requests(task.samples(), "generate")]
    assert prompts == ["1. NEGATIVE\n2. POSITIVE\nGreat Film (10)", "1. NEGATIVE\n2. POSITIVE\ndull film (9)"]
