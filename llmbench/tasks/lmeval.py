"""lm-evaluation-harness 0.4 task files, translated into llmbench's own task schema.

A translator, not an interpreter: an lm-eval YAML (with its ``include:`` chain) becomes one
``TaskSpec`` mapping, the same closed schema a native task file is checked against, and then
runs through the ordinary task classes. Anything outside the subset below is refused in one
line that names the key and says how to write the equivalent as a Python task. Above all,
``!function`` (code named by a data file) is never imported: the YAML loader turns the tag
into a marker, and the translator refuses it — except lm-eval 0.4.13's own HellaSwag
``process_docs``, recognised by the hash of its *source text* (read, never executed) and
mapped to llmbench's built-in ``preprocess: hellaswag``.

The subset: ``dataset_path``/``dataset_name``/``dataset_kwargs.data_files``, the splits,
``doc_to_text``/``doc_to_target``/``doc_to_choice`` as field names, Jinja or lists,
``output_type`` ``multiple_choice``/``generate_until``/``loglikelihood``/``loglikelihood_rolling``,
``description``, ``target_delimiter``, ``fewshot_delimiter``, ``num_fewshot``,
``fewshot_split``, ``fewshot_config.sampler`` ``first_n`` or the default (as llmbench's
``sequential`` sampler, seed 1234), ``generation_kwargs`` (``until``,
``max_gen_toks``, ``do_sample``,
``temperature``), ``metric_list`` (``acc``, ``acc_norm``, ``exact_match`` with its options as
``lmeval_exact_match`` — lm-eval's raw-string comparison, not llmbench's SQuAD one —, ``bleu``,
``chrf``, ``ter``, the perplexity family; for ``loglikelihood`` ``perplexity`` and ``acc``),
``filter_list`` pipelines (``take_first``, or ``regex`` then ``take_first``; the first is
llmbench's ``extract``, and with ``exact_match`` alone every pipeline is scored, one value each,
as gsm8k's ``strict-match`` and ``flexible-extract``), few-shot examples from the evaluated
``test_split`` (lm-eval's default sampler leaves the document out), ``group``/``tag``.
``repeats`` other than 1 is refused with the run option that
does it (``--repeats``).
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.nodes
import jinja2.sandbox
import yaml

from llmbench.tasks.base import Task, TaskError
from llmbench.tasks.spec import TaskSpec

PREFIX = "lm-eval:"
_MAX_INCLUDES = 16
_LMEVAL_DEFAULT_MAX_GEN = 256  # lm-eval 0.4's max_gen_toks when a task gives none
_PARSE_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(autoescape=False)  # parse only: nothing is rendered
_PYTHON_TASK = "write it as a Python task (subclass llmbench.tasks.Task, @register_task; see README)"
_IGNORED = {  # keys that change no prompt, request or score
    "task_alias", "should_decontaminate", "doc_to_decontamination_query", "metadata", "training_split",
    "validation_split", "test_split", "fewshot_split", "dataset_path", "dataset_name", "dataset_kwargs",
    "output_type", "doc_to_text", "doc_to_target", "doc_to_choice", "target_delimiter", "fewshot_delimiter",
    "num_fewshot", "generation_kwargs", "metric_list", "filter_list", "group", "tag", "task", "description",
    "process_docs", "fewshot_config", "repeats", "include",
}


class LmEvalError(TaskError):
    """An lm-eval task file outside the translated subset; the message is one line."""


@dataclass(frozen=True)
class Function:
    """A ``!function module.name`` value as read: a name, never imported."""

    ref: str


class _Loader(yaml.SafeLoader):
    """SafeLoader + ``!function`` read as a ``Function`` marker; every other tag is an error."""


def _function(loader: _Loader, node: yaml.Node) -> Function:
    return Function(str(loader.construct_scalar(node)))  # type: ignore[arg-type]


_Loader.add_constructor("!function", _function)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as err:
        raise LmEvalError(f"lm-eval task '{path}' cannot be read ({err.strerror}) — check the path") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        what = str(getattr(err, "problem", None) or err).splitlines()[0]
        raise LmEvalError(f"lm-eval task '{path}'{where}: not valid YAML ({what}) — fix the file") from None
    if not isinstance(data, dict):
        raise LmEvalError(f"lm-eval task '{path}' is not a mapping of keys — give an lm-eval task YAML")
    return data


def read_config(path: Path) -> dict[str, Any]:
    """The task's keys with its ``include:`` chain merged (the including file wins, as in lm-eval)."""
    chain: list[Path] = []
    config: dict[str, Any] = {}
    current: Path | None = path
    layers: list[dict[str, Any]] = []
    while current is not None:
        current = current.resolve()
        if current in chain:
            raise LmEvalError(f"lm-eval task '{path}': include cycle through '{current}' — break the cycle")
        if len(chain) >= _MAX_INCLUDES:
            raise LmEvalError(f"lm-eval task '{path}': more than {_MAX_INCLUDES} nested includes — flatten them")
        chain.append(current)
        data = _read(current)
        layers.append(data)
        include = data.get("include")
        if include is None:
            current = None
        elif isinstance(include, str):
            current = current.parent / include
            if not current.exists():
                raise LmEvalError(f"lm-eval task '{path}': include '{include}' does not exist next to "
                                  f"'{chain[-1]}' — fix the include path")
        else:
            raise LmEvalError(f"lm-eval task '{path}': include must be one file name — fix 'include'")
    for layer in reversed(layers):
        config.update(layer)
    config.pop("include", None)
    config["__dir__"] = str(chain[0].parent)
    return config


def task_files(path: Path) -> list[Path]:
    """The task files of ``path``: the file itself, or every ``*.yaml`` under a folder that names
    one task (``task: NAME``); group files (``task:`` a list) and templates are skipped."""
    if not path.exists():
        raise LmEvalError(f"lm-eval task '{path}' does not exist — check the path")
    if path.is_file():
        return [path]
    found = []
    for file in sorted(path.rglob("*.yaml")):
        try:
            if isinstance(_read(file).get("task"), str):
                found.append(file)
        except LmEvalError:
            continue  # a broken file that is not a task of this folder's is not ours to report
    if not found:
        raise LmEvalError(f"lm-eval folder '{path}' holds no task file (a YAML with 'task: NAME') — "
                          "give a task file or a folder of them")
    return found


# -- Jinja: what an lm-eval template reads ------------------------------------------------------
def _parse(template: str, key: str, where: str) -> jinja2.nodes.Template:
    try:
        return _PARSE_ENV.parse(template)
    except jinja2.TemplateSyntaxError as err:
        raise LmEvalError(f"{where}: {key}: Jinja syntax error ({err.message}) — fix the template") from None


def _as_row_template(template: str, key: str, where: str) -> str:
    """An lm-eval template (the doc's columns as variables) as an llmbench one (``row.column``):
    the same text in a ``{% with %}`` block that binds each column it reads from ``row``."""
    names = sorted(jinja2.meta.find_undeclared_variables(_parse(template, key, where)))
    if not names:
        return template
    binds = ", ".join(f"{n}=row[{n!r}]" for n in names)
    return f"{{% with {binds} %}}{template}{{% endwith %}}"


def _single_path(template: str) -> str | None:
    """``column`` or ``a.b`` when the template is just ``{{ a.b }}`` (surrounding spaces only)."""
    match = re.fullmatch(r"\s*\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}\s*", template)
    return match.group(1) if match else None


def _literal(text: str) -> str:
    """Plain text as a Jinja template that renders to itself."""
    return text if "{" not in text and "%" not in text else "{% raw %}" + text + "{% endraw %}"


# -- the translation ------------------------------------------------------------------------------
@dataclass
class _Ctx:
    path: Path
    config: dict[str, Any]

    @property
    def where(self) -> str:
        return f"lm-eval task '{self.path}'"

    def refuse(self, key: str, why: str, how: str = _PYTHON_TASK) -> LmEvalError:
        return LmEvalError(f"{self.where}: {key}: {why} — {how}")


#: sha256 of the source text lm-eval 0.4.13 writes for hellaswag's ``process_docs`` in the
#: ``configs`` of its results JSON (an imported run's task is translated from there)
HELLASWAG_DUMPED_SHA256 = "4020b018114de14b671f03b26b7e1ed763c728879f17852e17789fbc83b00150"


def _check_functions(ctx: _Ctx) -> str | None:
    """Refuse every ``!function``, but map lm-eval's own HellaSwag ``process_docs``."""
    preprocess = None
    dumped = ctx.config.get("process_docs")
    if isinstance(dumped, str):  # a results JSON's configs hold the function's source text
        if hashlib.sha256(dumped.encode()).hexdigest() != HELLASWAG_DUMPED_SHA256:
            raise ctx.refuse("process_docs", "a Python function (its source text here) is never run by llmbench")
        preprocess = "hellaswag"
    for key, value in ctx.config.items():
        if not isinstance(value, Function):
            if isinstance(value, list | dict) and _has_function(value):
                raise ctx.refuse(key, "holds a !function (code named by a data file; llmbench never imports it)")
            continue
        if key == "process_docs" and _is_lmeval_hellaswag(ctx, value):
            preprocess = "hellaswag"
            continue
        raise ctx.refuse(key, f"!function {value.ref} is code named by a data file, which llmbench never imports")
    return preprocess


def _has_function(value: Any) -> bool:
    if isinstance(value, Function):
        return True
    if isinstance(value, dict):
        return any(_has_function(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_function(v) for v in value)
    return False


def _function_source(file: Path, names: tuple[str, ...]) -> str | None:
    """The source text of functions ``names`` in ``file``, trailing spaces dropped (parsed, not run)."""
    try:
        text = file.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, SyntaxError, ValueError):
        return None
    found = {node.name: "\n".join(line.rstrip() for line in (ast.get_source_segment(text, node) or "").splitlines())
             for node in tree.body if isinstance(node, ast.FunctionDef)}
    if not all(n in found for n in names):
        return None
    return "\n".join(found[n] for n in names)


#: sha256 of the source text of lm-eval 0.4.13's hellaswag/utils.py ``preprocess`` and ``process_docs``:
#: the one ``!function`` llmbench knows, as its built-in ``preprocess: hellaswag``
#: (``llmbench/tasks/multiple_choice.py``, the same code; the fixture tests compare the two)
HELLASWAG_SOURCE_SHA256 = "28a0888aecb6bfa4567e53263e21d4e2aff7bbe06f2ee4f092420b75b6e963fb"


def _is_lmeval_hellaswag(ctx: _Ctx, fn: Function) -> bool:
    module, _, name = fn.ref.rpartition(".")
    if name != "process_docs" or not module or "/" in module:
        return False
    source = _function_source(Path(ctx.config["__dir__"]) / (module.replace(".", "/") + ".py"),
                              ("preprocess", "process_docs"))
    return source is not None and hashlib.sha256(source.encode()).hexdigest() == HELLASWAG_SOURCE_SHA256


def _dataset(ctx: _Ctx, output_type: str) -> dict[str, Any]:
    cfg = ctx.config
    split = cfg.get("test_split") or cfg.get("validation_split")
    if not split:
        raise ctx.refuse("test_split", "no test_split or validation_split to evaluate",
                         "add test_split: NAME to the file")
    out: dict[str, Any] = {"split": split}
    path = cfg.get("dataset_path")
    if not isinstance(path, str):
        raise ctx.refuse("dataset_path", "missing", "add dataset_path: HUB_ID (or json with data_files)")
    kwargs = cfg.get("dataset_kwargs") or {}
    if not isinstance(kwargs, dict) or set(kwargs) - {"data_files", "trust_remote_code"}:
        extra = sorted(set(kwargs) - {"data_files", "trust_remote_code"}) if isinstance(kwargs, dict) else []
        raise ctx.refuse(f"dataset_kwargs.{extra[0]}" if extra else "dataset_kwargs",
                         "only data_files is translated", "load the rows into local files and use data_files")
    if kwargs.get("trust_remote_code"):
        raise ctx.refuse("dataset_kwargs.trust_remote_code", "a dataset script is code llmbench never runs",
                         "convert the dataset to jsonl/parquet files and use data_files")
    if kwargs.get("data_files") is not None:
        files = kwargs["data_files"]
        base = Path(ctx.config["__dir__"])
        if isinstance(files, str):
            files = {split: files}
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise ctx.refuse("dataset_kwargs.data_files", "must be a file or a mapping split -> file",
                             "give one file per split")
        out["data_files"] = {k: str((base / v) if not Path(v).is_absolute() else v) for k, v in files.items()}
        if path not in {"json", "csv", "parquet"}:
            out["path"] = path
    else:
        out["path"] = path
        if cfg.get("dataset_name") is not None:
            out["name"] = str(cfg["dataset_name"])
    fewshot_split = cfg.get("fewshot_split") or cfg.get("training_split") or cfg.get("validation_split")
    if fewshot_split and int(cfg.get("num_fewshot") or 0) > 0:
        out["fewshot_split"] = fewshot_split
    return out


def _metrics(ctx: _Ctx, output_type: str, pipelines: list[_Pipeline]) -> tuple[list[str | dict[str, Any]], str]:
    """llmbench metrics and the primary value for lm-eval's ``metric_list`` (first entry = primary).
    ``exact_match`` is lm-eval's own (``lmeval_exact_match``: raw strings, the task's options),
    scored on every filter pipeline; with several pipelines no other metric is translated."""
    allowed = {
        "multiple_choice": {"acc": ("acc", "acc"), "acc_norm": ("acc", "acc_norm")},
        "generate_until": {"exact_match": ("lmeval_exact_match", "exact_match"), "bleu": ("bleu", "bleu"),
                           "chrf": ("chrf", "chrf"), "ter": ("ter", "ter")},
        "loglikelihood_rolling": {n: ("perplexity", n) for n in ("word_perplexity", "byte_perplexity",
                                                                  "bits_per_byte")},
        "loglikelihood": {"perplexity": ("continuation", "perplexity"), "acc": ("continuation", "acc")},
    }[output_type]
    entries = ctx.config.get("metric_list") or []
    if not isinstance(entries, list) or not entries:
        default = next(iter(allowed))
        entries = [{"metric": default}]
    metrics: list[str | dict[str, Any]] = []
    primary = ""
    for k, entry in enumerate(entries):
        name = entry.get("metric") if isinstance(entry, dict) else None
        key = f"metric_list[{k}]"
        if not isinstance(name, str):
            raise ctx.refuse(key, "a metric that is not a name (a !function or a mapping)")
        if name not in allowed:
            raise ctx.refuse(f"{key}.metric", f"'{name}' is not translated for {output_type} "
                             f"(translated: {', '.join(allowed)})", "drop it or " + _PYTHON_TASK)
        if len(pipelines) > 1 and name != "exact_match":
            raise ctx.refuse("filter_list[1]", f"several filter pipelines are translated for exact_match only, "
                             f"not {name}", "keep one pipeline, or one copy of the task file per pipeline")
        metric, value = allowed[name]
        if metric == "lmeval_exact_match":
            ref = {"name": metric, "args": _exact_match_args(ctx, entry, key, pipelines)}
            metrics.append(ref)
            primary = primary or pipelines[0].value
            continue
        options = set(entry) - {"metric", "aggregation", "higher_is_better"}
        if options:
            raise ctx.refuse(f"{key}.{sorted(options)[0]}", "metric option not translated",
                             "drop it or " + _PYTHON_TASK)
        if metric not in metrics:
            metrics.append(metric)
        primary = primary or value
    return metrics, primary


_EXACT_OPTIONS = ("ignore_case", "ignore_punctuation", "ignore_numbers")


def _exact_match_args(ctx: _Ctx, entry: dict[str, Any], key: str, pipelines: list[_Pipeline]) -> dict[str, Any]:
    """lm-eval's exact_match options and the task's filter pipelines as ``lmeval_exact_match``'s
    arguments (only those that differ from the defaults, so the metric's identity stays short)."""
    args: dict[str, Any] = {}
    options = set(entry) - {"metric", "aggregation", "higher_is_better", "regexes_to_ignore", *_EXACT_OPTIONS}
    if options:
        raise ctx.refuse(f"{key}.{sorted(options)[0]}", "not an option of lm-eval's exact_match",
                         "drop it or " + _PYTHON_TASK)
    for option in _EXACT_OPTIONS:
        value = entry.get(option, False)
        if not isinstance(value, bool):
            raise ctx.refuse(f"{key}.{option}", f"{value!r} is not true or false", "write true or false")
        if value:
            args[option] = True
    ignore = entry.get("regexes_to_ignore")
    if ignore is not None:
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise ctx.refuse(f"{key}.regexes_to_ignore", "must be a list of patterns", "give a list of text")
        for i, pattern in enumerate(ignore):
            _check_pattern(ctx, pattern, f"{key}.regexes_to_ignore[{i}]")
        args["regexes_to_ignore"] = list(ignore)
    if pipelines != [_Pipeline("none", None)]:
        args["filters"] = [{"name": p.name, **(p.extract or {})} for p in pipelines]
    prefix, suffix = _target_affixes(ctx)
    if prefix:
        args["target_prefix"] = prefix
    if suffix:
        args["target_suffix"] = suffix
    return args


def _target_affixes(ctx: _Ctx) -> tuple[str, str]:
    """The whitespace around the column in ``doc_to_target`` (babi's ``" {{answer}}"``), which
    lm-eval keeps in the reference its exact_match compares."""
    raw = ctx.config.get("doc_to_target")
    match = re.fullmatch(r"(\s*)\{\{.*\}\}(\s*)", raw, re.S) if isinstance(raw, str) else None
    return (match.group(1), match.group(2)) if match else ("", "")


def _check_pattern(ctx: _Ctx, pattern: str, key: str) -> None:
    from llmbench.textregex import compile_pattern

    try:
        compile_pattern(pattern)
    except ValueError as err:
        raise ctx.refuse(key, str(err), "fix the pattern") from None


@dataclass(frozen=True)
class _Pipeline:
    """One lm-eval filter pipeline: its name and the regex filter before ``take_first`` (None:
    ``take_first`` alone, the raw answer)."""

    name: str
    extract: dict[str, Any] | None

    @property
    def value(self) -> str:
        """lm-eval's key for exact_match on this pipeline (``lmeval_exact_match``'s value name)."""
        return "exact_match" if self.name == "none" else f"exact_match,{self.name}"


def _check_filters(ctx: _Ctx, output_type: str) -> list[_Pipeline]:
    """lm-eval's filter pipelines, each ``take_first`` alone (lm-eval's default: the one answer
    of a one-repeat task) or a ``regex`` then ``take_first``. No ``filter_list``: lm-eval's one
    pipeline ``none``. The first pipeline's regex is the task's ``extract`` (its prediction);
    every pipeline is scored by ``lmeval_exact_match``."""
    filters = ctx.config.get("filter_list")
    if filters is None:
        return [_Pipeline("none", None)]
    filters = filters if isinstance(filters, list) else [filters]
    pipelines: list[_Pipeline] = []
    for i, flt in enumerate(filters):
        functions = flt.get("filter", []) if isinstance(flt, dict) else None
        if not isinstance(functions, list):
            raise ctx.refuse(f"filter_list[{i}]", "not a named list of filters")
        name = flt.get("name") if isinstance(flt, dict) else None
        if not isinstance(name, str) or not name or "," in name:
            raise ctx.refuse(f"filter_list[{i}].name", "every pipeline needs a name (text without a comma)",
                             "add name: NAME")
        if name in {p.name for p in pipelines}:
            raise ctx.refuse(f"filter_list[{i}].name", f"'{name}' names two pipelines", "name them apart")
        if i > 0 and output_type != "generate_until":
            raise ctx.refuse(f"filter_list[{i}]", "a second filter pipeline is translated for generate_until only",
                             "keep one pipeline")
        extract: dict[str, Any] | None = None
        names = [fn.get("function") if isinstance(fn, dict) else None for fn in functions]
        for j, fname in enumerate(names):
            key = f"filter_list[{i}].filter[{j}]"
            if fname == "take_first" and j == len(names) - 1:
                continue
            if fname == "regex" and j == 0 and names[1:] == ["take_first"] and output_type == "generate_until":
                extract = _regex_filter(ctx, functions[j], key)
                continue
            raise ctx.refuse(key, f"filter '{fname}' here is not translated (translated: take_first, or regex "
                             "then take_first on generate_until)",
                             "write a Python task whose predict() extracts the answer")
        pipelines.append(_Pipeline(name, extract))
    return pipelines


def _regex_filter(ctx: _Ctx, fn: dict[str, Any], key: str) -> dict[str, Any]:
    """lm-eval's ``RegexFilter`` arguments (its defaults included) as llmbench's ``extract``."""
    extra = sorted(set(fn) - {"function", "regex_pattern", "group_select", "fallback"})
    if extra:
        raise ctx.refuse(f"{key}.{extra[0]}", "not an argument of lm-eval's regex filter", "remove it")
    pattern = fn.get("regex_pattern", r"#### (\-?[0-9\.\,]+)")
    group = fn.get("group_select", 0)
    fallback = fn.get("fallback", "[invalid]")
    if not isinstance(pattern, str) or not isinstance(group, int) or not isinstance(fallback, str):
        raise ctx.refuse(key, "regex_pattern and fallback must be text, group_select a whole number")
    _check_pattern(ctx, pattern, f"{key}.regex_pattern")
    return {"regex": pattern, "group_select": group, "fallback": fallback}


def _prompt(ctx: _Ctx, output_type: str, preprocess: str | None) -> tuple[dict[str, Any], str]:
    """The llmbench ``prompt`` block and ``fields.input`` for ``doc_to_text`` and friends."""
    cfg = ctx.config
    text = cfg.get("doc_to_text", "")
    if isinstance(text, int) or not isinstance(text, str):
        raise ctx.refuse("doc_to_text", "only a column name or a Jinja template is translated")
    input_field = text if re.fullmatch(r"[A-Za-z_]\w*", text) else None
    template = "{{ input }}" if input_field else _as_row_template(text, "doc_to_text", ctx.where)
    if input_field is None:  # the first column the template reads: the sample's stored input
        names = jinja2.meta.find_undeclared_variables(_parse(text, "doc_to_text", ctx.where))
        order = [n.name for n in _parse(text, "doc_to_text", ctx.where).find_all(jinja2.nodes.Name)]
        input_field = next((n for n in order if n in names), None)
    k = int(cfg.get("num_fewshot") or 0)
    description = cfg.get("description") or ""
    if not isinstance(description, str):
        raise ctx.refuse("description", "only text or a Jinja template is translated")
    prompt: dict[str, Any] = {}
    if description and k == 0:  # lm-eval: description + example, with nothing between
        template = _as_row_template(description, "description", ctx.where) + template
    elif description:
        if jinja2.meta.find_undeclared_variables(_parse(description, "description", ctx.where)) or \
                not description.endswith("\n\n"):
            raise ctx.refuse("description", "with num_fewshot > 0 only a fixed text ending in a blank line is "
                             "translated (llmbench puts the instruction once, before the examples)")
        prompt["instruction"] = description[:-2]
    if k:
        fewshot_config = cfg.get("fewshot_config") or {}
        if not isinstance(fewshot_config, dict):
            raise ctx.refuse("fewshot_config", "must be a mapping", "write fewshot_config: {sampler: first_n}")
        # lm-eval reads more here (``samples``: the pool itself; ``doc_to_text``/``doc_to_target``
        # /``doc_to_choice``: the examples' own format): translated without them, the examples
        # would come from another pool or in another format, so each is refused by name — unless
        # it is null or repeats the task's own value (lm-eval's resolved configs copy them there)
        other = sorted(str(key) for key, value in fewshot_config.items()
                       if key != "sampler" and value is not None and not _copied_from_task(cfg, str(key), value))
        if other:
            raise ctx.refuse(f"fewshot_config.{other[0]}", "not translated (of fewshot_config, only sampler is)",
                             "drop it, or write the task in llmbench's format (prompt.fewshot)")
        sampler = fewshot_config.get("sampler")
        if sampler not in (None, "default", "first_n"):
            raise ctx.refuse("fewshot_config.sampler", f"'{sampler}' is not translated (llmbench draws "
                             "k examples per sample with a seeded generator, or the first k with first_n)",
                             "drop it or use num_fewshot: 0")
        prompt["fewshot"] = {"k": k, "separator": cfg.get("fewshot_delimiter", "\n\n")}
        # MMLU's first_n: the first k rows of the few-shot split, in order; lm-eval's default
        # sampler: one generator seeded with lm-eval's default few-shot seed, 1234 (a run option
        # there, --seed's fourth value), drawing for each evaluated document in order
        prompt["fewshot"]["sampler"] = "first_n" if sampler == "first_n" else "sequential"
        if _fewshot_from_evaluated(ctx, sampler):
            prompt["fewshot"]["allow_evaluated_rows"] = True
    prompt["template"] = template
    delimiter = cfg.get("target_delimiter", " ")
    if output_type != "loglikelihood_rolling":
        prompt["target_template"] = _literal(str(delimiter)) + "{{ target }}"
    return prompt, input_field or ""


def _copied_from_task(cfg: dict[str, Any], key: str, value: Any) -> bool:
    """Whether a ``fewshot_config`` value is the one lm-eval copies from the task itself when it
    resolves a config (a results file's ``configs``): the task's own format and delimiters, its
    few-shot split, its ``process_docs`` (written there as the function's repr)."""
    if key == "split":
        return bool(value == cfg.get("fewshot_split"))
    if key == "process_docs":
        own = cfg.get("process_docs")
        return own is not None and (value == own or (isinstance(value, str) and value.startswith("<function ")))
    defaults = {"fewshot_delimiter": "\n\n", "target_delimiter": " "}
    return key in ("doc_to_text", "doc_to_target", "doc_to_choice", *defaults) and bool(
        value == cfg.get(key, defaults.get(key)))


def _fewshot_from_evaluated(ctx: _Ctx, sampler: Any) -> bool:
    """Whether the examples are drawn from the evaluated split. lm-eval's default sampler then
    draws k + 1 and drops the evaluated document, which is llmbench's ``sequential`` sampler on
    one split; it does so only when the few-shot split is the file's ``test_split`` (by name),
    and ``first_n`` never drops it, so those cases are refused rather than drawn otherwise."""
    cfg = ctx.config
    evaluated = cfg.get("test_split") or cfg.get("validation_split")
    fewshot = cfg.get("fewshot_split") or cfg.get("training_split") or cfg.get("validation_split")
    if fewshot != evaluated:
        return False
    if sampler == "first_n" or cfg.get("test_split") != fewshot:
        raise ctx.refuse("fewshot_split", f"examples from the evaluated split '{evaluated}' are translated only "
                         "with lm-eval's default sampler and the split as test_split (there lm-eval leaves the "
                         "evaluated document out; otherwise it may show a document its own answer)",
                         "give the examples their own split (fewshot_split: train)")
    return True


def _mc_choices(ctx: _Ctx) -> dict[str, Any]:
    raw = ctx.config.get("doc_to_choice")
    if isinstance(raw, list) and len(raw) >= 2 and all(isinstance(c, str | int) for c in raw):
        return {"templates": [_literal(str(c)) for c in raw]}
    if isinstance(raw, dict) and len(raw) >= 2:
        return {"templates": [_literal(str(c)) for c in raw.values()]}
    if isinstance(raw, str):
        if re.fullmatch(r"[A-Za-z_]\w*", raw):
            return {"field": raw}
        path = _single_path(raw)
        if path is not None:
            return {"field": path}
        match = re.fullmatch(r"\s*\{\{\s*\[(.*)\]\s*\}\}\s*", raw, re.S)
        if match is not None:
            items = [i.strip() for i in match.group(1).split(",") if i.strip()]
            if len(items) >= 2 and all(re.fullmatch(r"[A-Za-z_]\w*(?:\.\w+)*", i) for i in items):
                return {"templates": [f"{{{{ row.{i} }}}}" for i in items]}
    raise ctx.refuse("doc_to_choice", f"{raw!r} is not translated (a column, a list, {{{{ column }}}} or "
                     "{{[col1, col2]}})")


def _mc_target(ctx: _Ctx) -> tuple[str, dict[str, Any]]:
    """``fields.target`` and the ``choices`` keys saying what the target holds."""
    raw = ctx.config.get("doc_to_target")
    if isinstance(raw, str):
        path = raw if re.fullmatch(r"[A-Za-z_]\w*", raw) else _single_path(raw)
        if path is not None:
            return path, {"gold": "index"}
        match = re.fullmatch(r"\s*\{\{\s*([A-Za-z_][\w.]*)\.index\(\s*([A-Za-z_][\w.]*)\s*\)\s*\}\}\s*", raw)
        if match is not None:  # ARC: {{choices.label.index(answerKey)}}
            return match.group(2), {"gold": "label", "labels_field": match.group(1)}
    raise ctx.refuse("doc_to_target", f"{raw!r} is not translated for multiple_choice (a column, {{{{ column }}}} "
                     "or {{labels.index(key)}})")


def _plain_target(ctx: _Ctx) -> str:
    raw = ctx.config.get("doc_to_target")
    if isinstance(raw, str):
        path = raw if re.fullmatch(r"[A-Za-z_]\w*", raw) else _single_path(raw)
        if path is not None:
            return path
    raise ctx.refuse("doc_to_target", f"{raw!r} is not translated (a column or {{{{ column }}}})")


def _continuation_target(ctx: _Ctx) -> tuple[str, str]:
    """``fields.target`` and ``prompt.target_template`` of a loglikelihood task: ``doc_to_target``
    (a column, or a template over the doc's columns, as LAMBADA's ``{{' '+text.split(' ')[-1]}}``);
    the field is the first column the template reads. lm-eval scores ``doc_to_target`` *without*
    the target delimiter here, but puts the delimiter between a few-shot example's text and
    target; llmbench renders both with one template, so only an empty delimiter is translated
    with few-shot examples."""
    raw = ctx.config.get("doc_to_target")
    if int(ctx.config.get("num_fewshot") or 0) > 0 and str(ctx.config.get("target_delimiter", " ")):
        raise ctx.refuse("target_delimiter", "a loglikelihood task with num_fewshot > 0 is translated only with "
                         "target_delimiter: \"\" (lm-eval scores the target without it but joins examples with it)",
                         "set num_fewshot: 0 or target_delimiter: \"\"")
    if isinstance(raw, str) and re.fullmatch(r"[A-Za-z_]\w*", raw):
        return raw, "{{ target }}"
    if not isinstance(raw, str):
        raise ctx.refuse("doc_to_target", f"{raw!r} is not translated (a column or a Jinja template)")
    parsed = _parse(raw, "doc_to_target", ctx.where)
    names = jinja2.meta.find_undeclared_variables(parsed)
    first = next((n.name for n in parsed.find_all(jinja2.nodes.Name) if n.name in names), None)
    if first is None:
        raise ctx.refuse("doc_to_target", "reads no column of the document", "name the target column")
    return first, _as_row_template(raw, "doc_to_target", ctx.where)


def _generation(ctx: _Ctx) -> dict[str, Any]:
    kwargs = ctx.config.get("generation_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ctx.refuse("generation_kwargs", "not a mapping")
    extra = set(kwargs) - {"until", "max_gen_toks", "do_sample", "temperature"}
    if extra:
        raise ctx.refuse(f"generation_kwargs.{sorted(extra)[0]}", "not translated",
                         "drop it (llmbench's generation: max_new_tokens, temperature, top_p, stop)")
    until = kwargs.get("until", ["\n\n"])  # lm-eval's default: the fewshot delimiter
    until = [until] if isinstance(until, str) else list(until)
    temperature = float(kwargs.get("temperature", 0.0)) if kwargs.get("do_sample") else 0.0
    return {"max_new_tokens": int(kwargs.get("max_gen_toks", _LMEVAL_DEFAULT_MAX_GEN)),
            "temperature": temperature, "stop": until}


def _version(raw: Any) -> int:
    """lm-eval's ``metadata.version`` (1.0, "2.0", "1.0.2") as llmbench's integer task version."""
    match = re.match(r"\s*(\d+)", str(raw))
    return max(1, int(match.group(1))) if match else 1


def _name(ctx: _Ctx) -> str:
    name = ctx.config.get("task")
    if not isinstance(name, str) or not name:
        raise ctx.refuse("task", "the file names no task (a group file or a template?)",
                         "give a file with 'task: NAME'")
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)


def _tags(ctx: _Ctx) -> list[str]:
    tags = ["lm-eval"]
    for key in ("group", "tag"):
        value = ctx.config.get(key)
        for t in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
            if isinstance(t, str) and t not in tags:
                tags.append(t)
    return tags


def translate(path: Path) -> dict[str, Any]:
    """The llmbench task mapping (``TaskSpec``'s keys) equivalent to lm-eval task file ``path``."""
    return translate_config(read_config(path), path)


#: keys lm-eval's results JSON adds to a task's config (``configs``) that change nothing here
_DUMP_ONLY = {"unsafe_code": False, "repeats": 1}


def translate_config(config: dict[str, Any], path: Path) -> dict[str, Any]:
    """``translate`` for a config already read (a file's merged keys or a results JSON's
    ``configs`` entry, whose relative data paths resolve against ``path``'s folder)."""
    config = dict(config)
    config.setdefault("__dir__", str(path.parent))
    for key, default in _DUMP_ONLY.items():
        if config.get(key) == default:
            config.pop(key)
    if int(config.get("num_fewshot") or 0) == 0:
        config.pop("fewshot_config", None)  # the dump's mirror of doc_to_*; no examples are drawn
    ctx = _Ctx(path=path, config=config)
    preprocess = _check_functions(ctx)
    unknown = sorted(k for k in ctx.config if k not in _IGNORED and k != "__dir__")
    if unknown:
        raise ctx.refuse(unknown[0], "is outside the translated subset of lm-eval's task schema")
    repeats = ctx.config.get("repeats") or 1
    if repeats != 1:  # a task's answers per sample are a run option in llmbench, not a task key
        raise ctx.refuse("repeats", f"{repeats} answers per document inside one task is not translated",
                         f"drop the key and run with `llmbench run --repeats {repeats}` (a suite: repeats: "
                         f"{repeats}), which answers every sample {repeats} times with distinct seeds")
    output_type = ctx.config.get("output_type", "generate_until")
    if output_type not in ("multiple_choice", "generate_until", "loglikelihood", "loglikelihood_rolling"):
        raise ctx.refuse("output_type", f"'{output_type}' is not translated")
    pipelines = _check_filters(ctx, output_type)
    extract = pipelines[0].extract
    metrics, primary = _metrics(ctx, output_type, pipelines)
    prompt, input_field = _prompt(ctx, output_type, preprocess)
    metadata = ctx.config.get("metadata")
    version = _version(metadata.get("version", 1) if isinstance(metadata, dict) else 1)
    out: dict[str, Any] = {
        "name": _name(ctx),
        "version": version,
        "description": f"translated from lm-eval task file {path.name}",
        "dataset": _dataset(ctx, output_type),
    }
    if output_type == "multiple_choice":
        target, gold = _mc_target(ctx)
        out |= {"kind": "multiple_choice", "choices": {**_mc_choices(ctx), **gold},
                "fields": {"input": input_field or target, "target": target}, "scoring": ["loglikelihood"]}
        if preprocess:
            out["preprocess"] = preprocess
    elif output_type == "generate_until":
        target = _plain_target(ctx)
        out |= {"kind": "qa", "fields": {"input": input_field or target, "target": target},
                "scoring": ["generate"], "generation": _generation(ctx)}
        if extract is not None:
            out["extract"] = extract
    elif output_type == "loglikelihood":
        target, target_template = _continuation_target(ctx)
        prompt["target_template"] = target_template
        out |= {"kind": "continuation", "fields": {"input": input_field or target, "target": target},
                "scoring": ["loglikelihood"]}
    else:
        if ctx.config.get("doc_to_text", "") != "":
            raise ctx.refuse("doc_to_text", "a loglikelihood_rolling task scores doc_to_target alone",
                             "set doc_to_text: \"\"")
        out |= {"kind": "language_modeling", "fields": {"input": _plain_target(ctx)},
                "scoring": ["loglikelihood_rolling"]}
        prompt = {}
    if prompt:
        out["prompt"] = prompt
    out |= {"metrics": metrics, "primary_metric": primary, "tags": _tags(ctx)}
    return out


def expand_refs(refs: Sequence[str]) -> list[str]:
    """Task references with every ``lm-eval:FOLDER`` replaced by one ``lm-eval:FILE`` per task
    file in it (``llmbench run -t lm-eval:DIR``); other references unchanged."""
    out: list[str] = []
    for ref in refs:
        path = Path(ref.removeprefix(PREFIX))
        if ref.startswith(PREFIX) and path.is_dir():
            out += [f"{PREFIX}{f}" for f in task_files(path)]
        else:
            out.append(ref)
    return out


def load_lmeval(ref: str, *, data: str | None = None) -> Task:
    """The llmbench task for ``lm-eval:PATH`` (one task file)."""
    from llmbench.tasks import _override_data

    path = Path(ref)
    files = task_files(path)
    if len(files) != 1:
        raise LmEvalError(f"lm-eval folder '{path}' holds {len(files)} tasks — give one file with "
                          f"lm-eval:{files[0]} (or convert them all: llmbench tasks convert lm-eval:{path})")
    raw = translate(files[0])
    if data is not None:
        raw["dataset"] = _override_data(raw["dataset"], data, files[0])
    return _build(_validate(raw, files[0]), files[0])


def _validate(raw: dict[str, Any], path: Path) -> TaskSpec:
    from pydantic import ValidationError

    try:
        return TaskSpec.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise LmEvalError(f"lm-eval task '{path}': translates to an invalid llmbench task ({loc}: "
                          f"{first['msg']}) — {_PYTHON_TASK}") from None


def load_translated(config: dict[str, Any], path: Path, *, replay_rows: Path, id_column: str) -> Task:
    """The task lm-eval ran (a results JSON's ``configs`` entry), reading the documents lm-eval
    logged (``replay_rows``, ids in ``id_column``) instead of its dataset, with the identity
    (fingerprint) of the task as configured: an imported run then pairs with a native run of the
    same task file sample by sample."""
    from llmbench.tasks import _override_data

    raw = translate_config(config, path)
    as_configured = _build(_validate(raw, path), path)
    dataset = _override_data(raw["dataset"], str(replay_rows), path)
    fewshot = raw["dataset"].get("fewshot_split")
    original = raw["dataset"].get("data_files") or {}
    if fewshot and fewshot != raw["dataset"]["split"] and fewshot in original:
        # lm-eval logs the evaluated documents only: the few-shot examples are still drawn from
        # the few-shot split the task names, as lm-eval drew them (its rows, given an id column)
        dataset["data_files"] = {**dataset["data_files"],
                                 fewshot: str(_fewshot_rows(raw, fewshot, replay_rows.parent, id_column, path))}
    replay = dict(raw, dataset=dataset, fields={**raw["fields"], "id": id_column})
    task = _build(_validate(replay, path), path)
    fingerprint = as_configured.config_fingerprint()
    task.config_fingerprint = lambda: fingerprint  # type: ignore[method-assign]
    return task


def _fewshot_rows(raw: dict[str, Any], split: str, folder: Path, id_column: str, path: Path) -> Path:
    """The task's few-shot split as a JSONL file in ``folder`` with ``id_column`` added."""
    import json

    from llmbench.tasks.data import DataError, load_rows
    from llmbench.tasks.spec import DatasetSpec

    try:
        rows = load_rows(DatasetSpec.model_validate(raw["dataset"]), split, path.parent)
    except DataError as err:
        raise LmEvalError(f"lm-eval task '{path}': few-shot split '{split}': {err}") from None
    out = folder / f"fewshot-{split}.jsonl"
    out.write_text("".join(json.dumps({**row, id_column: f"fewshot-{i}"}, ensure_ascii=False, default=str) + "\n"
                           for i, row in enumerate(rows)), encoding="utf-8")
    return out


def _build(spec: TaskSpec, path: Path) -> Task:
    """The task class for the translated spec's kind (as ``load_task_file`` picks it)."""
    from llmbench.tasks.continuation import ContinuationTask
    from llmbench.tasks.language_modeling import LanguageModelingTask
    from llmbench.tasks.multiple_choice import MultipleChoiceTask
    from llmbench.tasks.yaml_task import YamlTask

    classes: dict[str, type[YamlTask]] = {"multiple_choice": MultipleChoiceTask,
                                          "language_modeling": LanguageModelingTask,
                                          "continuation": ContinuationTask}
    task = classes.get(spec.kind, YamlTask)(spec, path=path)
    task.source = f"{PREFIX}{path}"
    return task


def to_yaml(mapping: dict[str, Any], source: Path) -> str:
    """The translated task as an llmbench task file (``llmbench tasks convert``)."""
    head = f"# Translated by `llmbench tasks convert` from lm-eval task file {source}\n"
    body = yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, width=100)
    return head + body
