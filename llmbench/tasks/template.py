"""The Jinja sandbox task templates render in, with bounds on time, size and numbers.

A task file is data someone else may have written. Jinja's immutable sandbox already keeps a
template from reaching Python internals (``''.__class__.__mro__``) or mutating objects; it
does not keep one from running for hours or filling memory, and a task file could make every
``llmbench run`` that reads it hang: ``{% for i in range(99999) %}{% for j in range(99999) %}``,
``{{ 10**(10**10) }}``, ``'{:>999999999}'.format(1)``, ``{{ lipsum(1000000) }}``.

``BoundedSandbox`` adds, on top of the immutable sandbox:

* **time**: ``render`` traces the template's own frames (``sys.settrace``, chained to any
  tracer already installed, e.g. coverage) and stops a render after ``RENDER_SECONDS``;
  a Python-level loop cannot outlast it. Only the template's own frames were ever checked
  (a filter's Python frames are not, so one call is never interrupted), so a template with
  nothing that repeats its own code — no loop, macro, call block, block or other template
  (``_REPEATS``, found in its syntax tree when it is compiled) — runs each of its statements
  once and renders without the tracer, which cost more than the render itself (the runner
  renders a prompt per sample).
* **size**: the output is collected chunk by chunk and stops at ``MAX_CHARS``; ``*``, ``+``,
  ``%``, ``str.format`` widths, ``replace``/``join`` (the method and the filter, whose
  separator repeats between every item), ``indent`` (on every line), ``batch``, ``slice``,
  ``tojson`` and numeric arguments of calls and filters are checked *before* the C code
  that would build a huge string runs (a single C call, or a filter's own Python loop,
  cannot be interrupted by the tracer).
* **numbers**: ``**`` and ``*`` on integers refuse results above ``MAX_INT_BITS`` bits
  (``10**(10**7)`` would take a minute to compute and then could not even be printed);
  ``range`` stays capped by Jinja's ``MAX_RANGE``; ``lipsum`` by ``MAX_LIPSUM``.

Every refusal is a ``TemplateLimit`` (a ``SecurityError``), which the task turns into one
line naming the file, the template key and the sample. The limits are far above what a
prompt needs (a 10-million-character prompt is ~2.5M tokens).
"""

from __future__ import annotations

import re
import string
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from functools import update_wrapper
from types import FrameType
from typing import Any

import jinja2
import jinja2.sandbox
from jinja2 import nodes
from jinja2.runtime import Context

#: Longest rendered text and longest string a template may build.
MAX_CHARS = 10_000_000
#: Largest integer (in bits) ``*`` and ``**`` may produce: ~30,000 decimal digits.
MAX_INT_BITS = 100_000
#: Wall time of one render.
RENDER_SECONDS = 2.0
#: Most paragraphs ``lipsum`` may generate.
MAX_LIPSUM = 100

_PRINTF_WIDTH = re.compile(r"%[-+ #0]*(\d+)?(?:\.(\d+))?")


class TemplateLimit(jinja2.sandbox.SecurityError):
    """A template went past a bound on time, size or numbers."""


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple | bytes) else None


def _check_number(n: Any, what: str) -> None:
    if isinstance(n, int) and not isinstance(n, bool) and abs(n) > MAX_CHARS:
        raise TemplateLimit(f"{what} {n} is above the template limit of {MAX_CHARS:,}")


def _check_chars(n: int, what: str) -> None:
    if n > MAX_CHARS:
        raise TemplateLimit(f"{what} would build {n:,} characters, above the template limit of {MAX_CHARS:,}")


def _check_spec(fmt: str, args: Iterable[Any]) -> None:
    """Widths and precisions of a ``str.format`` string (``{:>999999999}``); with a nested
    field (``{:>{}}``) the width is an argument, so the arguments' numbers are checked too."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises its own error for a malformed string
    for _, _, spec, _ in parsed:
        for number in re.findall(r"\d+", spec or ""):
            _check_number(int(number), "a format width or precision")
        if spec and "{" in spec:
            for arg in args:
                _check_number(arg, "a format argument")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (left, right))
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        if abs(left).bit_length() * right > MAX_INT_BITS:
            raise TemplateLimit(f"{left} ** {right} is above the template limit of {MAX_INT_BITS:,} bits")
    elif operator == "*" and ints:
        if abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"a product above the template limit of {MAX_INT_BITS:,} bits")
    elif operator == "*":
        seq, count = (left, right) if _size(left) is not None else (right, left)
        if _size(seq) is not None and isinstance(count, int):
            _check_chars(_size(seq) * count, "repeating a sequence")  # type: ignore[operator]
    elif operator == "+" and _size(left) is not None and _size(right) is not None:
        _check_chars(_size(left) + _size(right), "joining two sequences")  # type: ignore[operator]
    elif operator == "%" and isinstance(left, str):
        for width, precision in _PRINTF_WIDTH.findall(left):
            for number in (width, precision):
                if number:
                    _check_number(int(number), "a %-format width or precision")


#: Methods and filters whose numeric argument is the size of what they build.
_WIDTH_CALLS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "do_center", "do_indent"})


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Sizes a call would blow up to, before it runs: ``'x'.center(10**9)``,
    ``s.replace('', big)``, ``big.join(range(99999))``."""
    name = getattr(obj, "__name__", "")
    owner = getattr(obj, "__self__", None)
    if name in _WIDTH_CALLS:
        for value in (*args, *kwargs.values()):
            _check_number(value, f"{name.removeprefix('do_')} width")
    elif name == "replace" and isinstance(owner, str) and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        hits = len(owner) + 1 if old == "" else owner.count(old)
        _check_chars(len(owner) + hits * len(new), "replace")
    elif name == "join" and isinstance(owner, str):
        items = args[0] if args else ()
        count = len(items) if hasattr(items, "__len__") else 0
        _check_chars(len(owner) * count, "join")


#: Most pieces ``slice`` may cut a sequence into (each is a Python list built in a loop that
#: no tracer interrupts), and the widest ``tojson`` indent (repeated on every nested line).
MAX_PIECES = 100_000
MAX_JSON_INDENT = 100


def _arg(rest: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
    return rest[0] if rest else kwargs.get(name)


def _check_filter(name: str, value: Any, rest: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Sizes a filter's own Python or C code would blow up to, before it runs:
    ``range(99999)|join('x' * 10**6)``, ``(['x' * 10**6] * 99999)|join``,
    ``[1]|batch(10**9, 'x')``, ``range(3)|slice(10**9)``, ``x|tojson(10**6)``,
    ``('x\n' * 10**6)|indent(10**6)``."""
    if name == "do_join" and hasattr(value, "__len__"):
        sep = _arg(rest, kwargs, "d") or ""
        chars = len(str(sep)) * max(0, len(value) - 1)
        if not (rest[1:] or kwargs.get("attribute") is not None):
            chars += sum(len(x) for x in value if isinstance(x, str))
        _check_chars(chars, "join")
    elif name == "do_batch":
        _check_number(_arg(rest, kwargs, "linecount"), "batch size")
    elif name == "do_slice":
        slices = _arg(rest, kwargs, "slices")
        if isinstance(slices, int) and slices > MAX_PIECES:
            raise TemplateLimit(f"slice count {slices} is above the template limit of {MAX_PIECES:,}")
    elif name == "do_tojson":
        indent = _arg(rest, kwargs, "indent")
        if isinstance(indent, int) and indent > MAX_JSON_INDENT:
            raise TemplateLimit(f"tojson indent {indent} is above the template limit of {MAX_JSON_INDENT}")
    elif name == "do_indent" and isinstance(value, str):
        width = _arg(rest, kwargs, "width")
        width = len(width) if isinstance(width, str) else width
        if isinstance(width, int):
            _check_chars(len(value) + width * (value.count("\n") + 1), "indent")


def _bounded_filter(fn: Callable[..., Any]) -> Callable[..., Any]:
    skip = 2 if hasattr(fn, "jinja_pass_arg") else 1  # the context/environment, then the value

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value, rest = (args[skip - 1] if len(args) >= skip else None), args[skip:]
        if fn.__name__ == "do_join" and value is not None and not hasattr(value, "__len__"):
            value = list(value)  # a generator: counted here, then joined as the list it is
            args = (*args[:skip - 1], value, *rest)
        _check_call(fn, rest, kwargs)
        _check_filter(fn.__name__, value, rest, kwargs)
        if fn.__name__ == "do_replace" and len(rest) >= 2 and isinstance(value, str):
            _check_call(value.replace, rest[:2], {})
        if fn.__name__ == "do_format" and isinstance(value, str):
            _check_binop("%", value, None)
        return fn(*args, **kwargs)

    return update_wrapper(wrapper, fn)


def _lipsum(env: jinja2.Environment) -> Callable[..., str]:
    original: Callable[..., Any] = env.globals["lipsum"]  # type: ignore[assignment]

    def lipsum(n: int = 5, *args: Any, **kwargs: Any) -> str:
        if n > MAX_LIPSUM:
            raise TemplateLimit(f"lipsum({n}) is above the template limit of {MAX_LIPSUM} paragraphs")
        return str(original(n, *args, **kwargs))

    return lipsum


#: Syntax after which a template's own code may run more than once (or run another template's):
#: loops; macros and call blocks (which may recurse); blocks (``self.name()``); includes,
#: imports and extends.
_REPEATS: tuple[type[nodes.Node], ...] = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.Block, nodes.Include,
                                          nodes.Import, nodes.FromImport, nodes.Extends)
#: Templates compiled by a ``BoundedSandbox`` whose syntax has none of ``_REPEATS``.
_STRAIGHT: weakref.WeakSet[jinja2.Template] = weakref.WeakSet()
_STRAIGHT_LOCK = threading.Lock()


#: Templates of literal text and bare variables only (``{{ input }}``, the default prompt):
#: each part as (is a variable name, text). ``render`` joins them itself when every variable
#: is given as a string — what Jinja writes for them — without building a Jinja context per
#: sample (a third of the driver's prompt building).
_PLAIN: weakref.WeakKeyDictionary[jinja2.Template, tuple[tuple[bool, str], ...]] = weakref.WeakKeyDictionary()


def _plain_parts(tree: nodes.Template) -> tuple[tuple[bool, str], ...] | None:
    parts: list[tuple[bool, str]] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for part in node.nodes:
            if type(part) is nodes.TemplateData:
                parts.append((False, part.data))
            elif type(part) is nodes.Name and part.ctx == "load":
                parts.append((True, part.name))
            else:
                return None
    return tuple(parts)


class BoundedSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """The immutable sandbox with the bounds of this module (see its docstring)."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = {name: _bounded_filter(fn) for name, fn in self.filters.items()}
        self.globals["lipsum"] = _lipsum(self)

    def from_string(self, source: str | nodes.Template, globals: Any = None,
                    template_class: type[jinja2.Template] | None = None) -> jinja2.Template:
        """Jinja's ``from_string``; a template whose syntax repeats nothing is remembered as
        one ``render`` need not trace."""
        template = super().from_string(source, globals, template_class)  # Jinja's errors, as before
        tree = self.parse(source) if isinstance(source, str) else source
        if not any(True for kind in _REPEATS for _ in tree.find_all(kind)):
            with _STRAIGHT_LOCK:
                _STRAIGHT.add(template)
                plain = _plain_parts(tree)
                if plain is not None:
                    _PLAIN[template] = plain
        return template

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_spec(fmt, (*args, *kwargs.values()))
            return wrapped(*args, **kwargs)

        return checked


def render(template: jinja2.Template, **variables: Any) -> str:
    """``template.render(**variables)`` within ``RENDER_SECONDS`` and ``MAX_CHARS``."""
    plain = _PLAIN.get(template)
    if plain is not None:
        text = _join_plain(plain, variables)
        if text is not None:
            _check_chars(len(text), "the template's output")
            return text
    if template in _STRAIGHT:  # each statement runs once: nothing for the clock to stop
        return _collect(_generate(template, variables))
    deadline = time.monotonic() + RENDER_SECONDS
    previous: Any = sys.gettrace()

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise TemplateLimit(f"rendering took longer than the template limit of {RENDER_SECONDS:g} s")
        return local

    def outer(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == "<template>":
            return local
        return previous(frame, event, arg) if previous is not None else None

    sys.settrace(outer)
    try:
        return _collect(_generate(template, variables))
    finally:
        sys.settrace(previous)


def _join_plain(parts: tuple[tuple[bool, str], ...], variables: dict[str, Any]) -> str | None:
    """A plain template's output, or None when a variable is missing (a global, or Jinja's
    undefined error) or not a string (Jinja's own rendering then decides)."""
    out: list[str] = []
    for is_name, text in parts:
        if not is_name:
            out.append(text)
            continue
        value = variables.get(text)
        if type(value) is not str:
            return None
        out.append(value)
    return "".join(out)


#: Each template's globals as one plain dict. Jinja merges a template's ChainMap of globals
#: into a new dict on every render, which (traced, as above) cost more than rendering a short
#: prompt: the runner renders one per sample. The sandbox's globals are set when it is built.
_FLAT_GLOBALS: weakref.WeakKeyDictionary[jinja2.Template, dict[str, Any]] = weakref.WeakKeyDictionary()
_FLAT_LOCK = threading.Lock()


def _generate(template: jinja2.Template, variables: dict[str, Any]) -> Iterable[str]:
    """``template.generate(**variables)``, as Jinja writes it, with the context's names taken
    from the flattened globals: the same names and values (a variable hides a global of the
    same name), the same error handling."""
    if template.environment.is_async:
        yield from template.generate(**variables)
        return
    flat = _FLAT_GLOBALS.get(template)
    if flat is None:
        with _FLAT_LOCK:
            flat = _FLAT_GLOBALS[template] = dict(template.globals)
    # ``template.new_context(..., shared=True)`` as Jinja builds it, with the flat dict as the
    # context's globals too: Jinja takes ``set(template.globals)`` of the ChainMap per render.
    env = template.environment
    ctx = env.context_class(env, {**flat, **variables}, template.name, template.blocks, globals=flat)
    try:
        yield from template.root_render_func(ctx)
    except Exception:
        yield template.environment.handle_exception()


def _collect(chunks: Iterable[str]) -> str:
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        _check_chars(size, "the template's output")
        out.append(chunk)
    return "".join(out)
