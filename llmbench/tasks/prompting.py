"""The adapter half of a task file: templates, few-shot examples and the requests sent.

``_ENV`` is the one template sandbox of the project (``judge.prompts`` renders with it too).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from functools import cached_property

import jinja2
import jinja2.sandbox

from llmbench.tasks.base import TaskError
from llmbench.tasks.data import Row, get_field, same_rows
from llmbench.tasks.rows import TaskFileBase
from llmbench.tasks.template import BoundedSandbox, TemplateLimit, render
from llmbench.types import ChatMessage, Prompt, Request, RequestKind, Sample

# The sandbox: a task file is data someone else may have written, and a plain Environment
# lets a template reach ``''.__class__.__mro__`` or ``cycler.__init__.__globals__.os`` and run
# shell commands. The immutable sandbox refuses private attributes, unsafe callables and
# mutating methods; a template that tries is a one-line TaskError naming the file. It is also
# bounded in time, output size and number size (``tasks.template``): a task file cannot hang.
_ENV = BoundedSandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
_FEWSHOT_POOL = 2000  # few-shot examples are drawn from at most this many rows of their split


class TaskPrompting(TaskFileBase):
    """Rendering a sample (and its few-shot examples) into the prompt and requests a model sees."""

    def _render(self, sample: Sample) -> str:
        try:
            text = render(self._template, input=sample.input, context=sample.context,
                          choices=self.labels, row=sample.extra.get("row", {}))
        except Exception as err:  # any template failure is the task file's
            raise self._template_error("prompt.template", sample, err) from None
        return self._nonempty(text, sample)

    def _nonempty(self, prompt: str, sample: Sample) -> str:
        """An empty prompt gives a model nothing to answer (a causal LM cannot even run on zero
        tokens); it is the template's or the row's mistake, said before any model loads."""
        if not prompt.strip():
            raise TaskError(f"{self._where()}: prompt.template renders an empty prompt for sample '{sample.id}' — "
                            "make the template use {{ input }} (or the row's fields), or fix the row's input")
        return prompt

    def _render_target(self, sample: Sample, target: str) -> str:
        memo = self._target_memo
        try:
            if memo is not None:
                if target not in memo:
                    memo[target] = render(self._target_template, target=target)
                return memo[target]
            return render(self._target_template, target=target, input=sample.input,
                          row=sample.extra.get("row", {}))
        except Exception as err:  # any template failure is the task file's
            raise self._template_error("prompt.target_template", sample, err) from None

    def _template_error(self, key: str, sample: Sample, err: Exception) -> TaskError:
        """One line naming the file, the template key and the sample, for every way a
        template can fail at render time: an undefined name, a sandbox refusal, or an
        exception raised by the expression itself (``{{ 1/0 }}``)."""
        from llmbench.errors import one_line

        where = f"{self._where()}: {key} (sample '{sample.id}')"
        if isinstance(err, TemplateLimit):
            return TaskError(f"{where} stopped: {one_line(err, 160)} — templates format one sample's "
                             "fields; remove the loop, power or padding that builds this much")
        if isinstance(err, jinja2.sandbox.SecurityError):
            return TaskError(f"{where} reaches outside the template sandbox ({one_line(err, 160)}) — templates "
                             "may only read input, context, choices, row and target and use Jinja filters; "
                             "remove the attribute access or call")
        if isinstance(err, jinja2.UndefinedError):
            return TaskError(f"{where} uses {err.message} — fix the template or the fields")
        return TaskError(f"{where} failed: {type(err).__name__}: {one_line(err, 160)} — fix the template")

    def _check_prompts(self, sample: Sample) -> None:
        """Render every prompt shape of one sample, once per task, when the samples are first
        built: a template that fails for every row (``{{ 1/0 }}``, a sandbox escape) is then
        found while the CLI checks the data, before any model loads or run record exists."""
        if self._prompt_checked:
            return
        self._prompt_checked = True
        self._render(sample)
        for label in self.labels or sample.references[:1]:
            self._render_target(sample, label)

    @cached_property
    def _fewshot_pool(self) -> list[Sample]:
        fs = self.spec.prompt.fewshot
        split = self._fewshot_split
        if fs.k == 0:
            return []
        if split is None:
            raise TaskError(f"{self._where()}: prompt.fewshot.k = {fs.k} needs prompt.fewshot.split "
                            "(or dataset.fewshot_split) — name the split to draw examples from")
        shared = same_rows(self.spec.dataset, split, self.eval_split, self.base_dir)
        if shared is not None and not fs.allow_evaluated_rows:
            raise TaskError(f"{self._where()}: few-shot examples (split '{split}') would be drawn from the evaluated "
                            f"rows (split '{self.eval_split}'; both read {shared}) — give the few-shot split its "
                            "own file (dataset.data_files: {test: ..., train: ...}), or set "
                            "prompt.fewshot.allow_evaluated_rows: true")
        pool = self.load_split(split)[:_FEWSHOT_POOL]
        room = len(pool) - (1 if shared is not None else 0)  # a sample's own row is left out
        if fs.k > room:
            raise TaskError(f"{self._where()}: prompt.fewshot.k = {fs.k} but split '{split}' offers {max(room, 0)} "
                            f"example(s) per sample — lower k or add rows to the split")
        return pool

    def _shots(self, sample: Sample) -> list[Sample]:
        """The sample's k examples, never the sample itself. ``random``: drawn with a seed that
        depends only on the sample id, so a sample's prompt never depends on which other samples
        are in the run; ``first_n``: the first k in pool order, one prefix shared by every sample
        (of its group, with ``match``)."""
        fs = self.spec.prompt.fewshot
        if fs.sampler == "sequential" and fs.k:
            return self._sequential_shots[sample.id]
        candidates = self._fewshot_pool if fs.match is None else self._fewshot_group(sample)
        own = self._own_row(sample)
        pool = [s for s in candidates if s.id != own] if own is not None else candidates
        if fs.k == 0 or not pool:
            return []
        if fs.sampler == "first_n":
            return pool[: fs.k]
        seed = int(hashlib.sha256(f"{fs.seed}:{sample.id}".encode()).hexdigest()[:12], 16)
        return random.Random(seed).sample(pool, min(fs.k, len(pool)))

    def _own_row(self, sample: Sample) -> str | None:
        """The id of the sample's own row in the few-shot pool, which it must never be shown:
        its id when the pool reads the evaluated rows (ids are unique within a split), else
        None. By id alone: a perturbed sample's input differs from its clean row (which would
        then be shown with its answer), and a row of another split that happens to share a
        sample's id and text is a different row, kept as lm-eval keeps it."""
        return sample.id if self._pool_reads_evaluated_rows else None

    @cached_property
    def _pool_reads_evaluated_rows(self) -> bool:
        return same_rows(self.spec.dataset, self._fewshot_split or "", self.eval_split, self.base_dir) is not None

    @cached_property
    def _fewshot_split(self) -> str | None:
        """Where few-shot examples come from: ``prompt.fewshot.split``, else the dataset's
        ``fewshot_split``, else the training split."""
        return self.spec.prompt.fewshot.split or self.spec.dataset.fewshot_split or self.train_split

    @cached_property
    def _sequential_shots(self) -> dict[str, list[Sample]]:
        """lm-eval 0.4.13's default ``ContextSampler``: one ``random.Random(seed)`` for the task,
        drawing for every row of the evaluated split in order (a row's examples depend on the
        rows before it, so all are drawn once, in split order, whichever samples run). Each draw
        is ``rnd.sample(pool, k)`` from the whole few-shot split; when the few-shot split *is* the
        evaluated split (by name, lm-eval's test) it draws k + 1 and drops the rows equal to the
        evaluated one, keeping the first k, and draws k again from the pool without it when
        duplicates left fewer."""
        fs = self.spec.prompt.fewshot
        split = self._fewshot_split
        self._fewshot_pool  # noqa: B018 - the checks (split named, k within the pool, shared rows)
        assert split is not None
        pool = self.load_split(split)
        rnd = random.Random(fs.seed)
        same_split = split == self.eval_split
        shots: dict[str, list[Sample]] = {}
        for sample in self.load_split(self.eval_split):
            if not same_split:
                shots[sample.id] = rnd.sample(pool, fs.k)
                continue
            row = sample.extra.get("row")
            drawn = [s for s in rnd.sample(pool, fs.k + 1) if s.extra.get("row") != row][: fs.k]
            if len(drawn) < fs.k:
                drawn = rnd.sample([s for s in pool if s.extra.get("row") != row], fs.k)
            shots[sample.id] = drawn
        return shots

    def _match_key(self, row: Row, what: str) -> str:
        """The ``prompt.fewshot.match`` value of a row, as comparable text (JSON for a structure)."""
        field = self.spec.prompt.fewshot.match
        assert field is not None
        try:
            value = get_field(row, field)
        except (KeyError, TypeError):
            cols = ", ".join(sorted(row)) if isinstance(row, dict) else "?"
            raise TaskError(f"{self._where()}: prompt.fewshot.match = '{field}' is not in {what} (columns: {cols}) "
                            "— fix prompt.fewshot.match or the data") from None
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)

    @cached_property
    def _fewshot_groups(self) -> dict[str, list[Sample]]:
        """The pool split by the ``match`` field, each group in pool order; every evaluated row's
        group is checked to hold k examples here, once, rather than when its prompt is built."""
        split = self._fewshot_split
        self._fewshot_pool  # noqa: B018 - its checks (split named, shared rows allowed, k within the split)
        assert split is not None
        # From the whole split, each group then capped: a group after the pool's first
        # ``_FEWSHOT_POOL`` rows is as much the split's as the first subject's.
        groups: dict[str, list[Sample]] = {}
        for s in self.load_split(split):
            groups.setdefault(self._match_key(s.extra.get("row", {}), f"few-shot row '{s.id}' of split '{split}'"),
                              []).append(s)
        groups = {key: group[:_FEWSHOT_POOL] for key, group in groups.items()}
        own = 1 if self._pool_reads_evaluated_rows else 0
        for index, row in enumerate(self._rows(self.eval_split)):
            key = self._match_key(row, f"row {index} of split '{self.eval_split}'")
            self._check_group(key, len(groups.get(key, ())) - own, split)
        return groups

    def _check_group(self, key: str, available: int, split: str | None) -> None:
        fs = self.spec.prompt.fewshot
        if available < fs.k:
            raise TaskError(f"{self._where()}: prompt.fewshot.k = {fs.k} but only {max(available, 0)} row(s) of split "
                            f"'{split}' have {fs.match} = '{key}' — lower k or add few-shot rows for '{key}'")

    def _fewshot_group(self, sample: Sample) -> list[Sample]:
        fs = self.spec.prompt.fewshot
        if fs.k == 0:
            return []
        key = self._match_key(sample.extra.get("row", {}), f"the row of sample '{sample.id}'")
        group = self._fewshot_groups.get(key, [])
        own = self._own_row(sample)
        mine = sum(1 for s in group if s.id == own)
        self._check_group(key, len(group) - mine, self._fewshot_split)
        return group

    def _instruction(self, sample: Sample) -> str | None:
        """``prompt.instruction``, rendered with the sample's variables when it has Jinja markup
        (a plain text is used as written, exactly as before instructions could be templates)."""
        text = self.spec.prompt.instruction
        if not text or not any(mark in text for mark in ("{{", "{%", "{#")):
            return text
        try:
            return render(self._instruction_template, input=sample.input, context=sample.context,
                          choices=sample.choices, row=sample.extra.get("row", {}))
        except TaskError:
            raise  # already the task file's one line (a syntax error, found when the template is built)
        except Exception as err:  # any template failure is the task file's
            raise self._template_error("prompt.instruction", sample, err) from None

    @cached_property
    def _instruction_template(self) -> jinja2.Template:
        try:
            return _ENV.from_string(self.spec.prompt.instruction or "")
        except jinja2.TemplateSyntaxError as err:
            raise TaskError(f"{self._where()}: prompt.instruction template error: {err.message} (line {err.lineno}) "
                            "— fix the template's syntax") from None

    def prompt_for(self, sample: Sample, *, chat: bool) -> Prompt:
        p = self.spec.prompt
        shots = self._shots(sample)
        instruction = self._instruction(sample)
        if not chat:
            parts = [self._render(s) + self._render_target(s, s.references[0]) for s in shots]
            parts.append(self._render(sample))
            body = p.fewshot.separator.join(parts)
            return f"{instruction}\n\n{body}" if instruction else body
        messages: list[ChatMessage] = []
        if p.system:
            messages.append(ChatMessage(role="system", content=p.system))
        for shot in shots:
            messages.append(ChatMessage(role="user", content=self._render(shot)))
            messages.append(ChatMessage(role="assistant",
                                        content=self._render_target(shot, shot.references[0]).strip()))
        messages.append(ChatMessage(role="user", content=self._render(sample)))
        if instruction:
            first = messages[1 if p.system else 0]
            messages[1 if p.system else 0] = ChatMessage(role="user", content=f"{instruction}\n\n{first.content}")
        return tuple(messages)

    def build_requests(
        self, samples: Sequence[Sample], mode: RequestKind, *, chat: bool = False
    ) -> list[Request]:
        out = []
        for s in samples:
            common = {"sample_id": s.id, "kind": mode, "input": s.input, "context": s.context,
                      "config": self.generation}
            if mode == "classify":
                out.append(Request(prompt=self.prompt_for(s, chat=chat), continuations=self.labels, **common))
            elif mode == "loglikelihood":
                assert self.labels is not None
                conts = tuple(self._render_target(s, lab) for lab in self.labels)
                if chat:
                    conts = tuple(c.strip() for c in conts)
                out.append(Request(prompt=self.prompt_for(s, chat=chat), continuations=conts, **common))
            else:
                out.append(Request(prompt=self.prompt_for(s, chat=chat), **common))
        return out
