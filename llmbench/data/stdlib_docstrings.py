"""Summarization of Python standard-library docstrings: write the summary line.

What: real, human-written technical prose that every Python installation carries. By
convention (PEP 257) a docstring opens with a one-line summary, a blank line, then the
details; the task is to write that summary line given the details. Rows:
``{"id", "python", "name", "document", "summary"}`` where ``document`` is the docstring
without its first paragraph, ``summary`` is its first line, ``name`` the dotted path of
the function, class or method and ``python`` the interpreter's "major.minor".

Source: the docstrings of the running interpreter's standard library, read with
``inspect`` at load time. The ``python`` field records the interpreter. Sample ids depend
on neither the Python version nor the row order: an id is the dotted name plus a short
hash of the row's text (``"json.dumps#3f2a9c1e"``). A docstring that is the same on two
interpreters is therefore the same sample with the same id, so two runs made on Python
3.11 and 3.12 are compared on the docstrings both share, while a docstring that changed
gets a new id and is never paired with its old text. (A few C-implemented objects could
also differ between builds or platforms; almost all rows come from pure-Python modules.)
Python 3.11.7 gives 389 rows (336 test, 53 train).

Licence: the Python documentation strings are part of CPython, under the PSF License
Agreement (Python Software Foundation License, version 2).

Selection rule (deterministic):

1. Modules: the fixed list :data:`MODULES` (pure-Python, non-deprecated, no side effects
   on import). A module that cannot be imported on this build (say ``ssl`` without
   OpenSSL) is skipped.
2. Objects: for each module, in sorted order, its public attributes (no leading ``_``),
   in sorted order, that are functions or classes defined in that module or one of its
   submodules (``__module__`` is the module or starts with ``module.``), then the public
   methods, static/class methods and properties of each such class, except methods that a
   third-party library patched in (their ``__module__`` is not a standard-library module),
   so the rows do not depend on what else the process has imported. An object reached
   twice (re-exported by another listed module) counts once, under the first name.
3. Docstring: ``obj.__doc__`` (own, never inherited), cleaned with
   ``inspect.cleandoc``, split at the first blank line. The first paragraph must be a
   single line: that line is the **summary**, the rest is the **document**.
4. Summary: 4–30 words; not a signature or label (does not start with ``name(`` and has
   no ``->``; does not start with ``name:``) and does not end with ``:``.
5. Document: after removing every paragraph that holds doctest lines (``>>>`` or
   ``...``), the remaining prose has at least 40 words and at least 2 sentences (``.``,
   ``!`` or ``?`` followed by whitespace or the end). The document itself is kept whole,
   examples included, with its line breaks.
6. Duplicates: rows are sorted by name, and a row whose summary or document equals one
   already kept is dropped (``mimetypes.guess_type`` vs ``MimeTypes.guess_type``).

Split rule: ``train`` holds the rows whose SHA-256 of ``name`` starts with a hex digit
in 0–2 (3/16 of names in expectation; 53 of 389 rows on Python 3.11), meant for few-shot
examples; ``test`` holds the rest. The split depends on the name only, so an object
stays in its split across Python versions.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import warnings
from collections.abc import Iterator
from functools import lru_cache
from types import ModuleType
from typing import Any

from llmbench.data._common import DatasetError, check_split, sha256_hex

NAME = "stdlib_docstrings"
SPLITS: tuple[str, ...] = ("train", "test")

MODULES: tuple[str, ...] = (
    "abc", "argparse", "ast", "asyncio", "base64", "bdb", "bisect", "calendar", "cmd",
    "code", "codecs", "codeop", "collections", "compileall", "concurrent.futures",
    "configparser", "contextlib", "contextvars", "copy", "csv", "dataclasses", "datetime",
    "decimal", "difflib", "dis", "doctest", "email", "email.headerregistry",
    "email.message", "email.policy", "email.utils", "enum", "filecmp", "fileinput",
    "fnmatch", "fractions", "ftplib", "functools", "getopt", "gettext", "glob", "graphlib",
    "gzip", "hashlib", "heapq", "hmac", "html", "html.parser", "http.client",
    "http.cookiejar", "http.server", "imaplib", "importlib", "importlib.abc",
    "importlib.metadata", "importlib.resources", "importlib.util", "inspect", "io",
    "ipaddress", "json", "linecache", "locale", "logging", "logging.handlers", "lzma",
    "mailbox", "mimetypes", "modulefinder", "multiprocessing.pool", "netrc", "numbers",
    "operator", "optparse", "pathlib", "pdb", "pickle", "pkgutil", "platform", "plistlib",
    "poplib", "pprint", "profile", "pstats", "py_compile", "pydoc", "queue", "quopri",
    "random", "re", "reprlib", "runpy", "sched", "secrets", "selectors", "shelve", "shlex",
    "shutil", "smtplib", "socket", "socketserver", "ssl", "stat", "statistics", "string",
    "struct", "subprocess", "symtable", "sysconfig", "tabnanny", "tarfile", "tempfile",
    "textwrap", "threading", "timeit", "tokenize", "tomllib", "trace", "traceback",
    "tracemalloc", "types", "typing", "unittest", "unittest.mock", "urllib.parse",
    "urllib.request", "urllib.robotparser", "uuid", "warnings", "wave", "weakref",
    "wsgiref.handlers", "wsgiref.simple_server", "wsgiref.util", "wsgiref.validate",
    "xml.dom.minidom", "xml.dom.pulldom", "xml.etree.ElementTree", "xml.sax",
    "xmlrpc.client", "xmlrpc.server", "zipapp", "zipfile", "zipimport", "zoneinfo",
)  # fmt: skip

MIN_SUMMARY_WORDS = 4
MAX_SUMMARY_WORDS = 30
MIN_DOCUMENT_WORDS = 40
MIN_DOCUMENT_SENTENCES = 2
TRAIN_HEX_DIGITS = frozenset("012")

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SIGNATURE = re.compile(r"^[\w.]+\s*\(|->")
_LABEL = re.compile(r"^[\w.]+:\s")
_DOCTEST_LINE = re.compile(r"^\s*(>>>|\.\.\.)")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def python_version() -> str:
    return "{}.{}".format(*sys.version_info[:2])


def split_docstring(doc: str) -> tuple[str, str] | None:
    """``(summary, document)`` of a docstring whose first paragraph is one line."""
    parts = _PARAGRAPH_BREAK.split(inspect.cleandoc(doc).strip(), maxsplit=1)
    if len(parts) != 2 or "\n" in parts[0]:
        return None
    summary, document = parts[0].strip(), parts[1].strip()
    return (summary, document) if summary and document else None


def prose_of(document: str) -> str:
    """The document without its doctest paragraphs (examples and their output)."""
    paragraphs = _PARAGRAPH_BREAK.split(document)
    kept = [p for p in paragraphs if not any(_DOCTEST_LINE.match(x) for x in p.splitlines())]
    return "\n\n".join(kept)


def keep(summary: str, document: str) -> bool:
    """The filter of rules 4 and 5 in the module docstring."""
    if not MIN_SUMMARY_WORDS <= len(summary.split()) <= MAX_SUMMARY_WORDS:
        return False
    if _SIGNATURE.search(summary) or _LABEL.match(summary) or summary.endswith(":"):
        return False
    prose = prose_of(document)
    return len(prose.split()) >= MIN_DOCUMENT_WORDS and len(_SENTENCE_END.findall(prose)) >= MIN_DOCUMENT_SENTENCES


def _members(module: ModuleType) -> Iterator[tuple[str, Any]]:
    """``(dotted name, object)`` for the public functions, classes and methods of a module."""
    prefix = module.__name__
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        owner = getattr(obj, "__module__", None) or ""
        if owner != prefix and not owner.startswith(prefix + "."):
            continue
        yield f"{prefix}.{name}", obj
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                if attr.startswith("_"):
                    continue
                if isinstance(member, staticmethod | classmethod):
                    member = member.__func__
                elif isinstance(member, property):
                    member = member.fget
                # A method must come from the standard library too: libraries patch stdlib
                # classes (transformers adds ``logging.Logger.info_once``), and the rows must
                # not depend on what else the process imported.
                member_owner = getattr(member, "__module__", None) or ""
                if inspect.isroutine(member) and not _patched(member_owner):
                    yield f"{prefix}.{name}.{attr}", member


def _patched(module_name: str) -> bool:
    """True for a method defined outside the standard library (a third-party monkeypatch)."""
    top = module_name.partition(".")[0]
    return bool(top) and top not in sys.stdlib_module_names


def _import(name: str) -> ModuleType | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except ImportError:
        return None


@lru_cache(maxsize=1)
def _all_rows() -> tuple[dict[str, str], ...]:
    if sys.flags.optimize >= 2:
        raise DatasetError(
            f"builtin dataset {NAME!r} reads docstrings, but this Python runs with -OO "
            "(docstrings stripped) — run without -OO and unset PYTHONOPTIMIZE"
        )
    seen: set[int] = set()
    found: list[tuple[str, str, str]] = []
    for module_name in MODULES:
        module = _import(module_name)
        if module is None:
            continue
        for name, obj in _members(module):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            doc = obj.__doc__
            parts = split_docstring(doc) if isinstance(doc, str) else None
            if parts is not None and keep(*parts):
                found.append((name, *parts))
    version = python_version()
    rows: list[dict[str, str]] = []
    summaries: set[str] = set()
    documents: set[str] = set()
    for name, summary, document in sorted(found):
        if summary in summaries or document in documents:
            continue
        summaries.add(summary)
        documents.add(document)
        rows.append(
            {
                "id": sample_id(name, summary, document),
                "python": version,
                "name": name,
                "document": document,
                "summary": summary,
            }
        )
    return tuple(rows)


def sample_id(name: str, summary: str, document: str) -> str:
    """``name#<8 hex>``: the object's dotted name and a hash of its summary and document.

    Why both: the name alone would pair a rewritten docstring with its old text across
    Python versions; the hash alone would not say which object a sample is. Neither the
    interpreter's version nor the row's position goes in, so ids survive an upgrade and a
    change to the module list."""
    return f"{name}#{sha256_hex(name + chr(0) + summary + chr(0) + document)[:8]}"


def split_of(name: str) -> str:
    return "train" if sha256_hex(name)[0] in TRAIN_HEX_DIGITS else "test"


def load(split: str) -> list[dict[str, Any]]:
    """Rows ``{"id", "python", "name", "document", "summary"}`` of one split, by name."""
    check_split(NAME, split, SPLITS)
    return [dict(row) for row in _all_rows() if split_of(row["name"]) == split]
