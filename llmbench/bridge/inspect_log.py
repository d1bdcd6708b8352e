"""inspect_ai logs (``.json``, or the ``.eval`` zip) as llmbench runs.

Read as data with the standard library (``json``, ``zipfile``); inspect_ai is not needed.
Each log becomes one run: the model (``inspect:<model>``, with inspect_ai's version and the
model's generate config as identity; argument names that look like credentials are dropped),
the task (name, version, arguments, dataset and scorer as its fingerprint), and one record per
sample and epoch (id ``<sample id>``, or ``<id>#<epoch>`` when the log has several epochs).
The headline scorer's per-sample value (``C``/``I``/``P``/``N`` as inspect's
``value_to_float`` reads them, or a number) is stored in the stats layout of llmbench's
``accuracy`` metric, so ``compare`` and ``gate`` pair two inspect runs sample by sample with
McNemar's test; inspect's own aggregate numbers are kept beside it in ``usage``.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from llmbench.bridge import BridgeError
from llmbench.store import ResultStore, RunInfo, SampleRecord, StoredMetric, new_id, now_iso

HARNESS = "inspect_ai"
_SCORE = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}  # inspect_ai's value_to_float defaults
_SECRET = re.compile(r"key|token|secret|password|auth|credential", re.I)
_ZSTD = 93


def _log_files(root: Path) -> list[Path]:
    if not root.exists():
        raise BridgeError(f"'{root}' does not exist — give an inspect_ai log (.eval or .json) or its folder")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in {".eval", ".json"})
    if not files:
        raise BridgeError(f"'{root}' holds no .eval or .json log — give inspect_ai's log folder")
    return files


def read_log(path: Path) -> dict[str, Any]:
    """The log as one mapping (``eval``, ``results``, ``status``, ``samples``), either format."""
    if path.suffix == ".eval":
        return _read_eval(path)
    try:
        log = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BridgeError(f"'{path}' is not a readable inspect_ai JSON log ({type(err).__name__}) — give a "
                          ".json or .eval log") from None
    if not isinstance(log, dict) or "eval" not in log:
        raise BridgeError(f"'{path}' is not an inspect_ai log (no 'eval' key) — give a .json or .eval log")
    return log


def _read_eval(path: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as z:
            if any(i.compress_type == _ZSTD for i in z.infolist()):
                _need_zstd(path)
            log = json.loads(z.read("header.json"))
            names = sorted(n for n in z.namelist() if n.startswith("samples/") and n.endswith(".json"))
            log["samples"] = [json.loads(z.read(n)) for n in names]
    except (OSError, zipfile.BadZipFile, KeyError, json.JSONDecodeError) as err:
        raise BridgeError(f"'{path}' is not a readable inspect_ai .eval log ({type(err).__name__}: {err}) — "
                          "give a .eval or .json log") from None
    return dict(log)


def _need_zstd(path: Path) -> None:
    """zstd entries (inspect_ai's default since 0.3.1xx) need the zipfile_zstd patch on Python < 3.14."""
    try:
        import zipfile_zstd  # noqa: F401
    except ImportError:
        raise BridgeError(f"'{path}' is zstd-compressed, which this Python's zipfile cannot read — "
                          "`pip install zipfile-zstd`, or convert it: `inspect log convert --to json`") from None


def _value(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        return _SCORE.get(raw.strip().upper())
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # chat messages or a list of targets
        return "\n".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in value)
    return "" if value is None else str(value)


def _headline(log: dict[str, Any]) -> str:
    results = log.get("results") or {}
    head = (results.get("headline") or {}).get("scorer")
    if head:
        return str(head)
    scores = results.get("scores") or []
    if scores:
        return str(scores[0].get("name"))
    for sample in log.get("samples") or []:
        if sample.get("scores"):
            return str(next(iter(sample["scores"])))
    raise BridgeError("the log has no scorer results — import a scored log")


def import_logs(store: ResultStore, root: Path, *, n_resamples: int = 1000) -> list[str]:
    return [import_log(store, file, n_resamples=n_resamples) for file in _log_files(root)]


def import_log(store: ResultStore, path: Path, *, n_resamples: int = 1000) -> str:
    from llmbench.metrics.classification import Accuracy

    log = read_log(path)
    ev = log["eval"]
    scorer = _headline(log)
    epochs = {int(s.get("epoch", 1)) for s in log.get("samples") or []}
    metric = Accuracy()
    records: list[SampleRecord] = []
    stats: list[dict[str, Any]] = []
    for s in log.get("samples") or []:
        sid = str(s["id"]) if len(epochs) <= 1 else f"{s['id']}#{s.get('epoch', 1)}"
        score = (s.get("scores") or {}).get(scorer)
        value = _value(score.get("value")) if isinstance(score, dict) else None
        answer = score.get("answer") if isinstance(score, dict) else None
        prediction = _text(answer if answer is not None else (s.get("output") or {}).get("completion"))
        error = s.get("error")
        sample_stats: dict[str, Any] = {}
        if value is not None and not error:
            sample_stats = {"accuracy": {"prediction": prediction, "gold": _text(s.get("target")),
                                         "correct": value}}
            stats.append(sample_stats["accuracy"])
        records.append(SampleRecord(
            idx=len(records), sample_id=sid, input=_text(s.get("input")), prompt=_text(s.get("input")),
            prediction=prediction, references=[_text(s.get("target"))], stats=sample_stats,
            error=None if not error else str(error.get("message", error) if isinstance(error, dict) else error)))
    if not records:
        raise BridgeError(f"'{path}' holds no samples — import a log written with samples (inspect's default)")
    values = [StoredMetric(value=v, metric="accuracy") for v in metric.aggregate(stats, n_resamples=n_resamples)]
    version = (ev.get("packages") or {}).get("inspect_ai", "unknown")
    model_args = {k: v for k, v in (ev.get("model_args") or {}).items() if not _SECRET.search(str(k))}
    identity = {"backend": HARNESS, "harness": HARNESS, "harness_version": version, "model": ev.get("model"),
                "model_args_sha256": hashlib.sha256(json.dumps(model_args, sort_keys=True, default=str)
                                                    .encode()).hexdigest()[:16],
                "generate_config": ev.get("model_generate_config") or {}, "revision": ev.get("revision")}
    task_id = {"task": ev.get("task"), "task_version": ev.get("task_version"), "task_args": ev.get("task_args"),
               "dataset": {k: (ev.get("dataset") or {}).get(k) for k in ("name", "location", "sample_ids")},
               "scorer": scorer}
    fingerprint = hashlib.sha256(json.dumps(task_id, sort_keys=True, default=str).encode()).hexdigest()[:16]
    run_id = new_id()
    label = f"inspect:{ev.get('model')}"
    task_version = ev.get("task_version")
    store.begin_run(RunInfo(
        id=run_id, batch_id=run_id, created_at=now_iso(), finished_at=None, status="running", model=label,
        model_kind=HARNESS, model_identity=identity, task=str(ev.get("task")), task_kind="inspect",
        task_version=max(1, int(task_version)) if isinstance(task_version, int) else 1,
        task_fingerprint=fingerprint, scoring_mode="generate", scoring_method=f"{HARNESS}-{scorer}",
        primary_metric="accuracy",
        config={"task": task_id, "labels": None, "metric_stats": {"accuracy": metric.describe_stats()},
                "source": {"harness": HARNESS, "version": version, "log": path.name, "eval_id": ev.get("eval_id"),
                           "scorer": scorer, "model_args": model_args}},
        environment={"harness": HARNESS, "harness_version": version},
        tags=["imported", HARNESS, f"{HARNESS}-{version}"], usage={}))
    store.add_samples(run_id, records)
    n_errors = sum(1 for r in records if r.error)
    store.finish_run(run_id, status="complete" if log.get("status") == "success" and not n_errors else "incomplete",
                     metrics=values, counts={"n_samples": len(records), "n_errors": n_errors, "cache_hits": 0,
                                             "cache_misses": 0,
                                             "usage": {"inspect_results": log.get("results") or {}}})
    return run_id
