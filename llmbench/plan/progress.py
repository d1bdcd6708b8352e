"""How a plan shows that it is alive: a bar in a terminal, a line every few seconds elsewhere.

Both say what is honest about the work: nothing is counted while a model loads (the bar
only appears, and the rate clock only starts, when the first sample is handed over), the
rate is samples done over seconds since then (not rich's moving window, which a batch that
lands all at once turns into thousands per second), and a piped log gets one line per
``every_s`` seconds from a timer, so a long batch still shows up as time passing rather
than as a burst of lines with one timestamp when it ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Task as RichTask
from rich.text import Text

if TYPE_CHECKING:
    from llmbench.plan.build import PlannedTask
    from llmbench.runner import RunResult
    from llmbench.store import ResultStore
    from llmbench.tasks.base import Task

#: Seconds between two progress lines in a log (and between two model-load notes).
LINE_EVERY_S = 10.0


class Tracker(Protocol):
    """What the runner reports to: the sample count once known, then samples as they finish."""

    done: int

    def start(self, total: int) -> None: ...

    def advance(self, k: int) -> None: ...


class ProgressLines:
    """Progress for a console that is not a terminal: a line every ``every_s`` seconds,
    written by a timer (``tick``), plus one at the start and one at the end."""

    def __init__(self, label: str, console: Console, every_s: float = LINE_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.console, self.every_s, self._clock = label, console, every_s, clock
        self.total: int | None = None
        self.done = 0
        self._opened = self._last = clock()
        self._started: float | None = None
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        with self._lock:
            self.total, self._started = total, self._clock()
            self._last = self._started
        loaded = self._started - self._opened
        extra = f" (model ready after {loaded:.1f} s)" if loaded >= 1 else ""
        self.console.print(f"{escape(self.label)}: {total} samples{extra}", highlight=False)

    def advance(self, k: int) -> None:
        with self._lock:
            self.done += k

    def tick(self) -> None:
        """Called by the timer: a line when ``every_s`` has passed since the last one."""
        now = self._clock()
        if now - self._last < self.every_s:
            return
        self._last = now
        if self._started is None:
            self.console.print(f"{escape(self.label)}: loading the model ({now - self._opened:.0f} s)",
                               highlight=False)
        else:
            self._print(now)

    def finish(self) -> None:
        if self._started is not None:
            self._print(self._clock())

    def _print(self, now: float) -> None:
        started = self._started if self._started is not None else now
        with self._lock:
            done, total = self.done, self.total
        of = f"/{total} ({100 * done / total:.0f}%)" if total else ""
        elapsed = now - started
        rate = f" · {done / elapsed:.1f}/s" if elapsed > 0 else ""
        self.console.print(f"{escape(self.label)}: {done}{of} · {elapsed:.1f} s{rate}", highlight=False)

    @contextmanager
    def ticking(self) -> Iterator[ProgressLines]:
        """Run the timer thread for the duration of the block."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(min(1.0, self.every_s)):
                self.tick()

        thread = threading.Thread(target=loop, daemon=True, name="llmbench-progress")
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=2)


class _Bar:
    """A rich bar that appears when the samples are known (not as "0/?" during model load)."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress, self.label, self.done = progress, label, 0
        self._id = progress.add_task(f"{label} · loading the model", total=None)

    def start(self, total: int) -> None:
        self.progress.remove_task(self._id)
        self._id = self.progress.add_task(self.label, total=total)

    def advance(self, k: int) -> None:
        self.done += k
        self.progress.advance(self._id, k)


class _CountColumn(ProgressColumn):
    """``done/total``, or nothing while the total is unknown."""

    def render(self, task: RichTask) -> Text:
        return Text("" if task.total is None else f"{int(task.completed)}/{int(task.total)}",
                    style="progress.download")


class _RateColumn(ProgressColumn):
    """Samples per second since the bar appeared (cache hits included, model load excluded)."""

    def render(self, task: RichTask) -> Text:
        elapsed = task.elapsed
        if task.total is None or not elapsed or not task.completed:
            return Text("")
        return Text(f"{task.completed / elapsed:.1f}/s", style="progress.data.speed")


class Reporter:
    """Where a plan reports: notes, progress, and one line per finished run. The CLI
    subclasses it to print its tables; ``llmbench.evaluate`` uses it as it is (on stderr)."""

    def __init__(self, console: Console, *, every_s: float = LINE_EVERY_S) -> None:
        self.console, self.every_s = console, every_s

    def note(self, text: str, style: str = "dim") -> None:
        self.console.print(f"[{style}]{escape(text)}[/{style}]", highlight=False, soft_wrap=True)

    def task_loaded(self, task: Task, n: int, planned: PlannedTask) -> None:
        """A task of the plan was loaded and has ``n`` samples (the CLI checks a suite's ``detect:``)."""

    @contextmanager
    def tracking(self, label: str) -> Iterator[Tracker]:
        if self.console.is_terminal:
            with Progress(TextColumn("{task.description}"), BarColumn(), _CountColumn(), _RateColumn(),
                          TimeElapsedColumn(), console=self.console, transient=False) as progress:
                yield _Bar(progress, label)
            return
        lines = ProgressLines(label, self.console, self.every_s)
        with lines.ticking():
            yield lines
        lines.finish()

    def run_done(self, result: RunResult, store: ResultStore) -> None:
        primary = next((m for m in result.metrics if m.name == result.primary_metric), None)
        value = "-" if primary is None else f"{primary.value:.4f}"
        self.console.print(f"{escape(result.model)} · {escape(result.task)}: {result.primary_metric}={value} "
                           f"({result.status}, run {result.run_id}, cache {result.cache_hits} hit / "
                           f"{result.cache_misses} miss)", highlight=False, soft_wrap=True)
