"""lm-evaluation-harness results in and out of the store.

Import (``llmbench import lm-eval DIR``): for every task of every ``results_*.json`` under
DIR, the task's config (``configs[task]``, what lm-eval ran) is translated by
``llmbench.tasks.lmeval`` into llmbench's task, and lm-eval's ``--log_samples`` answers are
*replayed* through llmbench's own runner: a replay adapter answers each request with lm-eval's
per-choice log-likelihoods or generated text, after checking that llmbench renders the same
prompt and continuations for that document. So an imported run holds the same per-sample
statistics, signatures and task fingerprint as a native ``llmbench run -t lm-eval:FILE`` of the
same file — ``gate`` pairs the two sample by sample (by lm-eval's ``doc_id``) — and every
per-sample ``acc``/``acc_norm`` is checked equal to lm-eval's own before anything is kept.
A task without samples, or one outside the translated subset, imports aggregate-only: its
numbers from the results JSON, no per-sample records, tagged ``aggregate-only`` (no paired
test is possible).

Export (``llmbench show RUN --format lm-eval``): ``results_<run>.json`` and
``samples_<task>_<run>.jsonl`` in lm-eval's layout, so dashboards that read lm-eval output
read llmbench runs; importing the export gives back the same per-sample values.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from llmbench.bridge import BridgeError
from llmbench.models.base import ModelAdapter
from llmbench.store import ResultStore, RunInfo, SampleRecord, StoredMetric, new_id, now_iso
from llmbench.types import MetricValue, Request, RequestKind, Response

HARNESS = "lm-eval"
ID_COLUMN = "__lmeval_doc_id"  # the column the replayed rows carry lm-eval's doc_id in


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BridgeError(f"'{path}' is not readable JSON ({type(err).__name__}: {err}) — give lm-eval's "
                          "output folder (results_*.json and samples_*.jsonl)") from None


def _read_samples(path: Path) -> list[dict[str, Any]]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise BridgeError(f"'{path}' line {lineno} is not JSON ({err.msg}) — re-run lm-eval with "
                              "--log_samples or remove the file") from None
        if not isinstance(row, dict) or "doc_id" not in row or "doc" not in row:
            raise BridgeError(f"'{path}' line {lineno} has no doc_id/doc — not an lm-eval samples file")
        rows.append(row)
    return sorted(rows, key=lambda r: int(r["doc_id"]))


class ReplayAdapter(ModelAdapter):
    """Answers llmbench's requests with what lm-eval's model answered for the same document.

    Every request's prompt (and, for multiple choice, every continuation) must equal lm-eval's
    for that ``doc_id``, else the translation is not lm-eval's task and the import stops.
    """

    def __init__(self, name: str, identity: dict[str, Any], samples: dict[str, dict[str, Any]],
                 kind: RequestKind) -> None:
        self.name = name
        self._identity = identity
        self._samples = samples
        self.supports = frozenset({kind})

    def identity(self) -> dict[str, Any]:
        return self._identity

    def scoring_method(self, kind: RequestKind) -> str:
        return f"{HARNESS}-replay-{kind}"

    def run(self, requests: Sequence[Request]) -> Iterator[tuple[int, Response]]:
        for i, request in enumerate(requests):
            yield i, self._answer(request)

    def _answer(self, request: Request) -> Response:
        row = self._samples[request.sample_id]
        raw = row["arguments"]
        if isinstance(raw, list):  # lm-eval before 0.4.3 logged [[context, continuation], ...]
            args = [{"arg_0": a[0], "arg_1": a[1] if len(a) > 1 else None} for a in raw]
        else:
            args = [a for _, a in sorted(raw.items(), key=lambda kv: int(kv[0].rsplit("_", 1)[1]))]
        where = f"doc_id {request.sample_id}"
        if request.prompt != args[0]["arg_0"]:
            raise BridgeError(f"{where}: llmbench renders another prompt than lm-eval recorded "
                              f"({request.prompt!r:.80} vs {args[0]['arg_0']!r:.80}) — the translation of "
                              "this task differs; import it aggregate-only with --aggregate-only")
        if request.kind == "loglikelihood":
            conts = [a["arg_1"] for a in args]
            if list(request.continuations or ()) != conts:
                raise BridgeError(f"{where}: llmbench's continuations {list(request.continuations or ())!r:.80} "
                                  f"are not lm-eval's {conts!r:.80} — import it with --aggregate-only")
            lls = [float(r[0][0]) for r in row["resps"]]
            greedy = tuple(str(r[0][1]) == "True" for r in row["resps"])
            return Response(logprobs=tuple(lls), greedy_match=greedy)
        if request.kind == "loglikelihood_rolling":
            return Response(logprobs=(float(row["resps"][0][0]),))
        # the raw generation: llmbench applies the task's filter (``extract``) itself, as lm-eval did
        # to this text; with lm-eval's default take_first the raw and filtered answers are the same
        raw_resps = row.get("resps")
        if isinstance(raw_resps, list) and raw_resps and isinstance(raw_resps[0], list) and raw_resps[0]:
            return Response(text=str(raw_resps[0][0]))
        return Response(text=str(row["filtered_resps"][0]))


def _results_files(root: Path) -> list[Path]:
    if not root.exists():
        raise BridgeError(f"'{root}' does not exist — give lm-eval's --output_path folder or a results_*.json")
    files = [root] if root.is_file() else sorted(root.rglob("results_*.json"))
    if not files:
        raise BridgeError(f"'{root}' holds no results_*.json — give lm-eval's --output_path folder")
    return files


def _identity(results: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The model label and identity of an lm-eval run: harness, version and what lm-eval says of
    the model (backend, arguments, name, revision/sha, dtype)."""
    cfg = results.get("config") or {}
    name = str(results.get("model_name") or cfg.get("model_args") or "unknown")
    identity = {"backend": HARNESS, "harness": HARNESS, "harness_version": results.get("lm_eval_version"),
                "model": cfg.get("model"), "model_args": cfg.get("model_args"), "model_name": name,
                "model_sha": cfg.get("model_sha") or None, "model_revision": cfg.get("model_revision"),
                "dtype": cfg.get("model_dtype"), "transformers_version": results.get("transformers_version")}
    return f"{HARNESS}:{cfg.get('model', 'model')}:{name}", identity


def import_results(store: ResultStore, root: Path, *, aggregate_only: bool = False, label: str | None = None,
                   n_resamples: int = 1000) -> list[str]:
    """Import every task of every results file under ``root``; the new run ids. ``label`` names
    the model (default ``lm-eval:<backend>:<model name>``)."""
    ids = []
    for file in _results_files(root):
        results = _read_json(file)
        if not isinstance(results, dict) or "results" not in results or "configs" not in results:
            raise BridgeError(f"'{file}' is not an lm-eval results file (no 'results'/'configs') — give "
                              "lm-eval's output folder")
        if label is not None:
            results["llmbench_label"] = label
        stamp = file.stem.removeprefix("results_")
        if "llmbench_run_info" in results:  # llmbench's own export: restore it as stored
            task = next(iter(results["configs"]))
            samples = file.parent / f"samples_{task}_{stamp}.jsonl"
            ids.append(_import_export(store, results, samples if samples.exists() else None))
            continue
        for task in sorted(results["configs"]):
            samples_file = file.parent / f"samples_{task}_{stamp}.jsonl"
            if aggregate_only or not samples_file.exists():
                ids.append(_import_aggregate(store, results, task, "no --log_samples file" if not
                                             samples_file.exists() else "imported with --aggregate-only"))
            else:
                ids.append(_import_samples(store, results, task, _read_samples(samples_file), file,
                                           n_resamples=n_resamples))
    return ids


def _import_samples(store: ResultStore, results: dict[str, Any], task_name: str, rows: list[dict[str, Any]],
                    file: Path, *, n_resamples: int) -> str:
    from llmbench.runner import ModelEntry, RunConfig, evaluate
    from llmbench.tasks.lmeval import LmEvalError, load_translated

    config = results["configs"][task_name]
    lines, rows = rows, _one_per_document(rows)
    with tempfile.TemporaryDirectory(prefix="llmbench-import-") as tmp:
        docs = Path(tmp) / "docs.jsonl"
        docs.write_text("".join(json.dumps({**r["doc"], ID_COLUMN: str(r["doc_id"])}, ensure_ascii=False) + "\n"
                                for r in rows), encoding="utf-8")
        try:
            task = load_translated(config, file, replay_rows=docs, id_column=ID_COLUMN)
        except LmEvalError as err:
            return _import_aggregate(store, results, task_name, f"not translated: {err}")
        if task.kind == "language_modeling":  # perplexity needs each document's token count
            return _import_aggregate(store, results, task_name, "lm-eval logs no token count per document")
        label, identity = _identity(results)
        mode = task.scoring[0]
        adapter = ReplayAdapter(label, identity, {str(r["doc_id"]): r for r in rows}, mode)
        entry = ModelEntry(spec=label, label=results.get("llmbench_label"))
        version = results.get("lm_eval_version") or "unknown"
        result = evaluate(task, adapter, entry, RunConfig(n_resamples=n_resamples,
                          tags=("imported", HARNESS, f"{HARNESS}-{version}")), store=store, cache=None)
    _check_values(store, result.run_id, lines, task_name)
    return result.run_id


def _one_per_document(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """lm-eval logs a document once per filter pipeline (gsm8k: strict-match, flexible-extract),
    each line with the same raw answer; llmbench replays it once and scores every pipeline."""
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(str(row["doc_id"]), row)
    return list(seen.values())


def _check_values(store: ResultStore, run_id: str, lines: list[dict[str, Any]], task: str) -> None:
    """Every per-sample acc/acc_norm, and exact_match of every filter, that llmbench computed
    must be lm-eval's own (``lines``: lm-eval's samples, one per document and filter)."""
    theirs: dict[tuple[str, str], Any] = {}
    for line in lines:
        doc = str(line["doc_id"])
        for name in ("acc", "acc_norm"):
            theirs[(doc, name)] = line.get(name)
        flt = str(line.get("filter", "none"))
        theirs[(doc, "exact_match" if flt == "none" else f"exact_match,{flt}")] = line.get("exact_match")
    for record in store.samples(run_id):
        mine = {**(record.stats.get("acc") or {}), **(record.stats.get("lmeval_exact_match") or {})}
        for name, value in mine.items():
            other = theirs.get((record.sample_id, name))
            if other is not None and float(other) != float(value):
                store.mark(run_id, "failed", reason=f"{name} of doc_id {record.sample_id} differs from lm-eval's")
                raise BridgeError(f"task '{task}' doc_id {record.sample_id}: llmbench's {name} {value} is not "
                                  f"lm-eval's {other} — import it with --aggregate-only")


def _import_aggregate(store: ResultStore, results: dict[str, Any], task: str, why: str) -> str:
    """A run with lm-eval's task-level numbers only (no samples: nothing to pair)."""
    spec, identity = _identity(results)
    label = str(results.get("llmbench_label") or spec)
    values = results["results"].get(task) or {}
    n = int(((results.get("n-samples") or {}).get(task) or {}).get("effective") or 0)
    higher = (results.get("higher_is_better") or {}).get(task) or {}
    metrics = []
    for key, value in values.items():
        name, _, flt = key.partition(",")
        if not flt or name.endswith("_stderr") or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        stderr = values.get(f"{name}_stderr,{flt}")
        half = 1.96 * float(stderr) if isinstance(stderr, int | float) and math.isfinite(float(stderr)) else None
        vname = name if flt == "none" else f"{name},{flt}"
        metrics.append(StoredMetric(
            value=MetricValue(name=vname, value=float(value), ci_low=None if half is None else float(value) - half,
                              ci_high=None if half is None else float(value) + half, n=n,
                              higher_is_better=bool(higher.get(name, True)),
                              signature=f"{HARNESS}-{results.get('lm_eval_version')}|aggregate-only|ci:normal-stderr"),
            metric=f"{HARNESS}:{name}"))
    config = results["configs"].get(task) or {}
    primary = metrics[0].value.name if metrics else "none"
    version = (config.get("metadata") or {}).get("version", 1)
    run_id = new_id()
    import hashlib

    fingerprint = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    store.begin_run(RunInfo(
        id=run_id, batch_id=run_id, created_at=now_iso(), finished_at=None, status="running", model=label,
        model_kind=HARNESS, model_identity=identity, task=task, task_kind=str(config.get("output_type", "unknown")),
        task_version=max(1, int(float(version))) if isinstance(version, int | float | str) else 1,
        task_fingerprint=fingerprint, scoring_mode=str(config.get("output_type", "unknown")),
        scoring_method=f"{HARNESS}-aggregate", primary_metric=primary,
        config={"aggregate_only": True, "aggregate_only_reason": why, "lmeval_config": config},
        environment={"harness": HARNESS, "harness_version": results.get("lm_eval_version")},
        tags=["imported", HARNESS, "aggregate-only"], usage={}))
    store.finish_run(run_id, status="complete", metrics=metrics,
                     counts={"n_samples": n, "n_errors": 0, "cache_hits": 0, "cache_misses": 0,
                             "usage": {"aggregate_only": why}})
    return run_id


# -- export ---------------------------------------------------------------------------------------
def export_run(store: ResultStore, info: RunInfo, out: Path) -> list[Path]:
    """``results_<id>.json`` + ``samples_<task>_<id>.jsonl`` (lm-eval 0.4's layout) for one run."""
    out.mkdir(parents=True, exist_ok=True)
    records = store.samples(info.id)
    metrics = store.metrics(info.id)
    task_cfg = (info.config.get("task") or {}).get("spec") or info.config.get("lmeval_config") or {}
    values: dict[str, Any] = {"alias": info.task}
    for m in metrics:
        # lm-eval's "metric,filter" key; a value named "exact_match,strict-match" names its filter
        name, _, flt = m.value.name.partition(",")
        values[f"{name},{flt or 'none'}"] = m.value.value
        if m.value.ci_low is not None and m.value.ci_high is not None:
            values[f"{name}_stderr,{flt or 'none'}"] = (m.value.ci_high - m.value.ci_low) / (2 * 1.96)
    results = {
        "results": {info.task: values},
        "configs": {info.task: {"task": info.task, "llmbench_spec": task_cfg,
                                "metadata": {"version": info.task_version}}},
        "versions": {info.task: info.task_version},
        "n-samples": {info.task: {"original": info.n_samples, "effective": info.n_samples}},
        "higher_is_better": {info.task: {m.value.name: m.value.higher_is_better for m in metrics}},
        "config": {"model": "llmbench", "model_args": info.model, "model_identity": info.model_identity},
        "model_name": info.model, "llmbench_run": info.id, "date": info.created_at,
        # what `llmbench import lm-eval` needs to restore the run exactly (round trip)
        "llmbench_run_info": info.model_dump(mode="json"),
        "llmbench_metrics": [m.model_dump(mode="json") for m in metrics],
    }
    stamp = info.id
    paths = [out / f"results_{stamp}.json", out / f"samples_{info.task}_{stamp}.jsonl"]
    paths[0].write_text(json.dumps(results, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    with paths[1].open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(_sample_line(rec), ensure_ascii=False, default=str) + "\n")
    return paths


def _sample_line(rec: SampleRecord) -> dict[str, Any]:
    """One lm-eval samples line: doc_id, prompt as ``arguments``, answer, per-sample metrics."""
    line: dict[str, Any] = {"doc_id": int(rec.sample_id) if rec.sample_id.isdigit() else rec.sample_id,
                            "doc": {"input": rec.input}, "target": rec.references[0] if rec.references else "",
                            "arguments": {"gen_args_0": {"arg_0": rec.prompt}},
                            "resps": [[rec.prediction]], "filtered_resps": [rec.prediction]}
    for stats in rec.stats.values():
        if isinstance(stats, dict):
            line.update({k: v for k, v in stats.items() if isinstance(v, int | float) and not isinstance(v, bool)
                         and k not in line})
    line["llmbench_record"] = rec.model_dump(mode="json")
    return line


def _import_export(store: ResultStore, results: dict[str, Any], samples_file: Path | None) -> str:
    """A run written by ``export_run``: restored as it was stored, under a new id."""
    try:
        info = RunInfo.model_validate(results["llmbench_run_info"])
        metrics = [StoredMetric.model_validate(m) for m in results["llmbench_metrics"]]
        lines = _read_samples(samples_file) if samples_file is not None else []
        records = [SampleRecord.model_validate(line["llmbench_record"]) for line in lines]
    except (KeyError, TypeError, ValueError) as err:
        raise BridgeError(f"an llmbench export is incomplete ({type(err).__name__}: {err}) — export it again "
                          "with llmbench show RUN --format lm-eval") from None
    run_id = new_id()
    tags = list(dict.fromkeys([*info.tags, "imported", "llmbench-export"]))
    store.begin_run(info.model_copy(update={"id": run_id, "batch_id": run_id, "status": "running",
                                            "finished_at": None, "tags": tags}))
    store.add_samples(run_id, records)
    store.finish_run(run_id, status=info.status if info.status in ("complete", "incomplete") else "incomplete",
                     metrics=metrics, counts={"n_samples": info.n_samples, "n_errors": info.n_errors,
                                              "cache_hits": info.cache_hits, "cache_misses": info.cache_misses,
                                              "usage": info.usage})
    return run_id
