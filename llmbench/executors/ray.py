"""The Ray executor: model replicas as actors, the driver as the one writer.

How a plan runs here:

* ``RayExecutor.adapter`` builds the model's adapter *in the driver* too (never prepared,
  so no weights load there). It answers what the runner asks before any request:
  ``identity``, ``cache_identity``, ``scoring_method``, ``adapt_request``, ``describe`` —
  so cache keys and stored identities are computed exactly as a local run computes them.
* It returns a ``RayModel``, a ``ModelAdapter`` whose ``run`` splits the cache misses the
  runner hands it into shards, sends them to the replicas and yields ``(index, Response)``
  as each shard comes back. ``runner.evaluate`` is unchanged: it caches every answer as it
  arrives and writes the store, in this process only.
* A replica (``Replica``) is an actor that builds the adapter once, from the spec and
  options with ``load_adapter`` (a loaded model is never pickled), and serves many shards,
  across every task of the plan for that model. Its resources come from the model's
  placement options (``num_cpus``/``num_gpus``/``resources``/``replicas``).

Why an actor pool driven by ``ray.wait`` and not Ray Data's ``map_batches``: the runner
hands over one chunk of misses at a time and wants each answer back as soon as it exists
(to cache it); a Ray Data pipeline starts its own actor pool per dataset, i.e. reloads the
model for every chunk and every task, and would move ``Request`` objects through Arrow
blocks for nothing. ``ray.util.ActorPool`` is close, but it keeps one call per idle actor
(a replica idles during every round trip) and, when a call fails, it does not say which
shard it was, which is what a retry on another replica needs. The loop below keeps
``IN_FLIGHT`` shards queued per replica and knows which shard each future carries.

Failures: replicas are created with ``max_restarts`` and their calls with
``max_task_retries``, so a killed replica process is restarted by Ray and the shard it held
is run again (on the restarted replica, which Ray may place on another node). A replica
that is gone for good has its shard queued again for the others. A shard's answers reach
the driver once, as one return value, so a retried shard is never counted twice. An error
raised inside a replica arrives as the exception the adapter raised (a ``UserError`` stays
that ``UserError``, with its message), not as a ``RayTaskError`` with a remote traceback.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

from llmbench import registry
from llmbench.executors import Executor, ExecutorError, ExecutorName, Placement, split_options
from llmbench.models import load_adapter, split_spec
from llmbench.models.base import ModelAdapter
from llmbench.types import Request, RequestKind, Response, Sample

#: Restarts of a dead replica process, and re-runs of the shard it held, before giving up on it.
MAX_RESTARTS = 4
#: Shards queued at each replica: while it answers one, the next is already there.
IN_FLIGHT = 2
#: Default shards per replica per runner chunk: small enough that the last shard of a chunk
#: holds up little, large enough that a replica still batches inside a shard.
SHARDS_PER_REPLICA = 8
#: Seconds to wait for every replica to be placed and loaded before saying the cluster cannot
#: run them (a GPU request on a CPU-only cluster would otherwise wait forever).
START_TIMEOUT_S = float(os.environ.get("LLMBENCH_RAY_START_TIMEOUT", "600"))
#: What a replica needs from the driver's environment to answer as the driver would.
FORWARDED_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "TRANSFORMERS_OFFLINE",
                 "TRANSFORMERS_VERBOSITY", "TOKENIZERS_PARALLELISM", "LLMBENCH_CACHE", "OPENAI_API_KEY",
                 "OPENAI_BASE_URL")


class Replica:
    """One copy of a model, living in a Ray worker process; serves many shards.

    The adapter is built on first use, not in ``__init__``: an error building it (a bad
    path on this node) then arrives as that error from a method call, rather than as an
    actor that failed to start. After a restart (the process was killed) the same happens
    again, and ``fit`` is replayed from the key each call carries.
    """

    def __init__(self, spec: str, options: dict[str, Any], backend: str, factory: Any) -> None:
        # A backend registered at run time in the driver (a plugin in a notebook, a test, a
        # benchmark) is unknown to a fresh worker process; the driver ships its factory.
        if backend not in registry.models:
            registry.models.register(backend, factory, origin="driver")
        self.spec, self.options = spec, options
        self.adapter: ModelAdapter | None = None
        self.fit_key = 0

    def _ready(self, fit_key: int, fit_box: list[Any]) -> ModelAdapter:
        if self.adapter is None:
            self.adapter = load_adapter(self.spec, self.options)
        if fit_key != self.fit_key:
            self.adapter.fit(ray.get(fit_box[0]) if fit_box else [])
            self.fit_key = fit_key
        return self.adapter

    def start(self, fit_key: int, fit_box: list[Any]) -> dict[str, Any]:
        """Load the model; say what it is and where it runs (the driver checks both)."""
        adapter = self._ready(fit_key, fit_box)
        adapter.prepare()
        return {"cache_identity": adapter.cache_identity(), "identity": adapter.identity(),
                "node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def run(self, fit_key: int, fit_box: list[Any],
            requests: Sequence[Request]) -> tuple[list[tuple[int, Response]], list[str]]:
        """The shard's answers, and the notes its adapter took on the way (fallbacks)."""
        adapter = self._ready(fit_key, fit_box)
        return list(adapter.run(requests)), adapter.take_scoring_notes()

    def where(self) -> tuple[str, int]:
        return ray.get_runtime_context().get_node_id(), os.getpid()

    def close(self) -> None:
        if self.adapter is not None:
            self.adapter.close()


@dataclass
class _Slot:
    """A replica as the driver's dispatch loop sees it."""

    handle: Any
    in_flight: int = 0
    answered: int = 0


class _Feed:
    """The chunks a dispatch loop takes, numbered in order, cut into shards. A shard is
    ``shard_size`` requests, or an eighth of a replica's share of the largest chunk so far
    (``SHARDS_PER_REPLICA``): a short last chunk keeps the full chunks' shard size, so a
    replica still fills its batches (a shard of 4 for a replica that batches 8 takes a whole
    batch's time). An empty chunk (all cached) takes a number and no shard."""

    def __init__(self, chunks: Iterator[Sequence[Request]], model: RayModel) -> None:
        self.chunks, self.model = chunks, model
        self.count = 0
        self.size = 0
        self.done = False

    def next_shards(self) -> list[tuple[int, int, Sequence[Request]]]:
        """The next chunk's shards (the replicas started first); [] once every chunk is taken."""
        for requests in self.chunks:
            c, self.count = self.count, self.count + 1
            if not requests:
                continue
            model = self.model
            model.prepare()
            self.size = model.placement.shard_size or max(
                self.size, math.ceil(len(requests) / (max(1, len(model.handles())) * SHARDS_PER_REPLICA)))
            return [(c, start, requests[start:start + self.size]) for start in range(0, len(requests), self.size)]
        self.done = True
        return []


@dataclass
class ShardLog:
    """What the replicas did, for the progress line and for tests: which replica answered
    how many requests, and how many shards had to be queued again."""

    answered: dict[int, int] = field(default_factory=dict)
    requeued: int = 0
    seconds: float = 0.0


class RayModel(ModelAdapter):
    """A model whose ``run`` happens on Ray replicas; everything else is answered by the
    same adapter built (but never loaded) in the driver."""

    streams_answers = True  # each shard's answers reach the runner as the shard comes back

    def __init__(self, executor: RayExecutor, spec: str, options: dict[str, Any], placement: Placement) -> None:
        self._executor = executor
        self._spec, self._options, self.placement = spec, options, placement
        self._local = load_adapter(spec, options)  # checks the spec now, as a local run does
        self.name = self._local.name
        self.supports: frozenset[RequestKind] = self._local.supports
        self._slots: list[_Slot] = []
        self._fit_key = 0
        self._fit_box: list[Any] = []
        self._train: list[Sample] = []
        self._started_for = -1  # the fit key the replicas' identities were last checked under
        self.nodes: dict[int, str] = {}  # replica number -> node id, as the replicas reported
        self.log = ShardLog()
        self._notes: list[str] = []  # the replicas' scoring notes, in order, without repeats

    # -- what the model is: the driver's own copy answers, as in a local run -----------------
    def identity(self) -> dict[str, Any]:
        return self._local.identity()

    def describe(self) -> dict[str, Any]:
        return self._local.describe()

    def cache_identity(self) -> dict[str, Any]:
        return self._local.cache_identity()

    def scoring_method(self, kind: RequestKind) -> str:
        return self._local.scoring_method(kind)

    def adapt_request(self, request: Request) -> Request:
        return self._local.adapt_request(request)

    def take_scoring_notes(self) -> list[str]:
        """Every replica's notes since the last call (fallbacks happen where the model runs)."""
        notes, self._notes = self._notes, []
        return notes

    def fit(self, train: Sequence[Sample]) -> None:
        """Fit the driver's copy (its identity may include what it learnt) and remember the
        rows under a new key; every call to a replica carries the key, so a replica fits
        once per task, and again after a restart."""
        self._local.fit(train)
        self._fit_key += 1
        self._train = list(train)
        self._fit_box = []  # put in Ray's object store by ``prepare`` (Ray may not be up yet)

    # -- life cycle ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """Start the replicas (once per model) and check that each sees the model as the
        driver does: the cache keys are computed here, so a replica whose ``device`` or
        weights differ would file its answers under another model's key."""
        if self._slots and self._started_for == self._fit_key:
            return
        self._executor.ensure_started()
        if self._fit_key and not self._fit_box:
            self._fit_box = [ray.put(self._train)]
        if not self._slots:
            self._slots = [_Slot(h) for h in self._executor.start_replicas(self._spec, self._options, self.placement)]
        refs = [s.handle.start.remote(self._fit_key, self._fit_box) for s in self._slots]
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=START_TIMEOUT_S)
        if pending:
            self.close()
            raise ExecutorError(
                f"model '{self.name}': {len(pending)} of {len(refs)} replicas did not start within "
                f"{START_TIMEOUT_S:.0f} s — the cluster may lack the resources they ask for "
                f"({self._executor.request_text(self.placement)}); lower 'replicas' or the resource options, "
                "or raise LLMBENCH_RAY_START_TIMEOUT")
        want = self._local.cache_identity()
        for k, ref in enumerate(refs):
            info = _get(ref)
            self.nodes[k] = info["node_id"]
            if info["cache_identity"] != want:
                diff = sorted(key for key in set(want) | set(info["cache_identity"])
                              if want.get(key) != info["cache_identity"].get(key))
                self.close()
                raise ExecutorError(
                    f"model '{self.name}': a replica sees it differently from the driver ({', '.join(diff)}: "
                    f"{[info['cache_identity'].get(key) for key in diff]} there, {[want.get(key) for key in diff]} "
                    "here), so its answers would be cached under the wrong key — pin the option that differs "
                    "(e.g. device, dtype) and make the same model files reachable at the same path on every node")
        self._started_for = self._fit_key

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        if not requests:
            return iter(())
        self.prepare()
        return ((j, response) for _, j, response in self._dispatch(iter([requests])))

    def run_chunks(self, chunks: Iterator[Sequence[Request]]) -> Iterator[tuple[int, int, Response]]:
        """One dispatch loop over every chunk: once chunk k's last shards are sent, chunk
        k+1's are queued behind them, so no replica waits at a chunk's end for the slowest
        shard (with one ``run`` per chunk, every chunk ended that way)."""
        return self._dispatch(chunks)

    def _dispatch(self, chunks: Iterator[Sequence[Request]]) -> Iterator[tuple[int, int, Response]]:
        todo: deque[tuple[int, int, Sequence[Request]]] = deque()  # (chunk, start, shard)
        pending: dict[Any, tuple[int, int, Sequence[Request], int]] = {}
        feed = _Feed(chunks, self)
        t0 = time.perf_counter()
        try:
            while True:
                if not todo and not feed.done:
                    todo.extend(feed.next_shards())  # the next chunk, as soon as this one is all sent
                self._submit(todo, pending)
                if not pending:
                    if todo:
                        raise ExecutorError(f"model '{self.name}': every replica is gone — see the Ray logs "
                                            "(/tmp/ray/session_latest/logs) for why they died")
                    if feed.done:
                        return
                    continue
                [ref], _ = ray.wait(list(pending), num_returns=1)
                c, start, shard, k = pending.pop(ref)
                slot = self._slots[k]
                slot.in_flight -= 1
                try:
                    answers, notes = _get(ref)
                except ActorUnavailableError:  # restarting: Ray retries on it; requeue if it gave up
                    todo.appendleft((c, start, shard))
                    self.log.requeued += 1
                    continue
                except RayActorError:  # gone for good (restarts used up): the others take its work
                    slot.handle = None
                    todo.appendleft((c, start, shard))
                    self.log.requeued += 1
                    continue
                self._notes += [n for n in notes if n not in self._notes]
                slot.answered += len(answers)
                self.log.answered[k] = self.log.answered.get(k, 0) + len(answers)
                for j, response in answers:
                    yield c, start + j, response
        finally:
            self.log.seconds += time.perf_counter() - t0
            for ref in pending:  # the runner stopped early (an error): drop queued work
                with contextlib.suppress(Exception):
                    ray.cancel(ref)

    def _submit(self, todo: deque[tuple[int, int, Sequence[Request]]],
                pending: dict[Any, tuple[int, int, Sequence[Request], int]]) -> None:
        """Top every live replica up to ``IN_FLIGHT`` shards, least loaded first."""
        live = [k for k, s in enumerate(self._slots) if s.handle is not None]
        while todo and live:
            k = min(live, key=lambda i: self._slots[i].in_flight)
            slot = self._slots[k]
            if slot.in_flight >= IN_FLIGHT:
                return
            c, start, shard = todo.popleft()
            ref = slot.handle.run.remote(self._fit_key, self._fit_box, list(shard))
            pending[ref] = (c, start, shard, k)
            slot.in_flight += 1

    def handles(self) -> list[Any]:
        """The replicas' actor handles (tests kill one; ``where`` says where each runs)."""
        return [s.handle for s in self._slots if s.handle is not None]

    def close(self) -> None:
        for slot in self._slots:
            if slot.handle is not None:
                ray.kill(slot.handle, no_restart=True)
        self._slots = []
        self._started_for = -1
        self._local.close()


def _get(ref: Any) -> Any:
    """``ray.get``, with an exception raised in a replica re-raised as itself: a
    ``UserError`` keeps its type and one-line message, as in a local run."""
    try:
        return ray.get(ref)
    except RayTaskError as err:
        cause = err.cause
        if isinstance(cause, BaseException) and not isinstance(cause, RayActorError):
            raise cause.with_traceback(None) from None
        raise


#: Seconds to wait for a Ray head's port to accept a connection.
CONNECT_TIMEOUT_S = 5.0


def _check_reachable(address: str) -> None:
    """A ``HOST:PORT`` nobody listens on: one line within seconds, not minutes of Ray's own
    GCS retries. ``auto`` and ``ray://`` addresses are left to Ray."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError, OverflowError) as err:
        raise ExecutorError(f"cannot reach the Ray cluster at '{address}' ({getattr(err, 'strerror', None) or err})"
                            " — start it with `ray start --head` or fix --ray-address (auto, or HOST:PORT of the "
                            "head's GCS)") from None


class RayExecutor(Executor):
    """Replicas on a Ray cluster: a local instance (no address) or the one at ``address``."""

    name: ExecutorName = "ray"

    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self.started = False
        self._owns_ray = False

    def adapter(self, spec: str, options: dict[str, Any]) -> ModelAdapter:
        adapter_options, placement = split_options(spec, options)
        return RayModel(self, spec, adapter_options, placement)

    def describe(self, adapter: ModelAdapter) -> str | None:
        if isinstance(adapter, RayModel):
            return f"ray ×{adapter.placement.replicas}"
        return None

    def chunk_samples(self, adapter: ModelAdapter, default: int) -> int:
        """At least a few shards' worth per replica, so that many replicas are all busy
        between two of the runner's chunks."""
        if isinstance(adapter, RayModel):
            return max(default, adapter.placement.replicas * 256)
        return default

    def ensure_started(self) -> None:
        """Connect on first need: a rerun answered entirely from the cache never starts Ray."""
        if self.started:
            return
        if ray.is_initialized():  # a caller (a test, a notebook) connected already: use theirs
            self.started = True
            return
        common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING, "configure_logging": True}
        if self.address is not None:
            _check_reachable(self.address)
        try:
            if self.address is None:
                ray.init(num_cpus=os.cpu_count() or 1, **common)
            else:
                ray.init(address=self.address, **common)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"the Ray cluster at '{self.address}'" if self.address else "a local Ray instance"
            raise ExecutorError(f"cannot start or reach {where}: {' '.join(str(err).split())[:300]} — check "
                                "--ray-address (auto, or HOST:PORT of `ray start --head`)") from None
        self.started = self._owns_ray = True

    def request_text(self, placement: Placement) -> str:
        parts = [f"num_cpus={placement.num_cpus:g}"]
        if placement.num_gpus:
            parts.append(f"num_gpus={placement.num_gpus:g}")
        parts += [f"{k}={v:g}" for k, v in placement.resources.items()]
        have = ray.cluster_resources()
        shown = ", ".join(f"{k}={v:g}" for k, v in sorted(have.items())
                          if k in ("CPU", "GPU") or k in placement.resources)
        return f"{' '.join(parts)} each; the cluster has {shown}"

    def start_replicas(self, spec: str, options: dict[str, Any], placement: Placement) -> list[Any]:
        """Create the replicas (they load on their first call). Refuses at once a request no
        node of the cluster could ever satisfy."""
        have = ray.cluster_resources()
        need = {"CPU": placement.num_cpus, "GPU": placement.num_gpus, **placement.resources}
        missing = [k for k, v in need.items() if v > 0 and have.get(k, 0) < v]
        if missing:
            raise ExecutorError(f"model '{spec}': the cluster has no {', '.join(missing)} to give a replica "
                                f"({self.request_text(placement)}) — change the model's placement options")
        backend, _ = split_spec(spec)
        factory = registry.models.get(backend)
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        actor = ray.remote(Replica).options(
            num_cpus=placement.num_cpus, num_gpus=placement.num_gpus, resources=placement.resources or None,
            max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS, scheduling_strategy="SPREAD",
            runtime_env={"env_vars": env} if env else None)
        return [actor.remote(spec, options, backend, factory) for _ in range(placement.replicas)]

    def close(self) -> None:
        if self._owns_ray:
            ray.shutdown()
        self.started = self._owns_ray = False
