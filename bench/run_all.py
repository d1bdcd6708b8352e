"""Run every speed benchmark in sequence and print all their tables at the end.

    .venv/bin/python bench/run_all.py            # full versions (30-60 min on a 2-core machine)
    .venv/bin/python bench/run_all.py --quick    # smoke version (a few minutes after the one-time setup)
    .venv/bin/python bench/run_all.py --only peer_lmeval cache

Each benchmark runs as its own process (so none inherits another's imports or memory)
and writes ``bench/out/<name>.json``; this script also writes ``bench/out/summary.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

BENCHES: dict[str, tuple[list[str], list[str]]] = {
    # name: (full args, quick args)
    "fixed_cost": ([], ["--quick"]),
    "overhead": ([], ["--quick"]),
    "cache": ([], ["--quick"]),
    "memory": ([], ["--quick"]),
    "roofline": ([], ["--models", "gpt2", "--repeats", "1"]),  # before peer_lmeval, which reads it
    "peer_lmeval": ([], ["--quick"]),
    "api_concurrency": ([], ["--requests", "200", "--requests-c1", "50"]),
    "api_startup": ([], ["--repeats", "2"]),
}
MARKER = "--- results ---"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke versions of every benchmark")
    ap.add_argument("--only", nargs="+", choices=list(BENCHES), default=None)
    args = ap.parse_args()
    names = args.only or list(BENCHES)
    summaries: dict[str, str] = {}
    status: dict[str, dict[str, object]] = {}
    for name in names:
        full, quick = BENCHES[name]
        argv = [sys.executable, str(c.BENCH / f"{name}.py"), *(quick if args.quick else full)]
        print(f"\n=== {name} {' '.join(argv[2:])}", flush=True)
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=c.ROOT, env=c.bench_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
        rc = proc.wait()
        text = "".join(lines)
        summaries[name] = text.split(MARKER, 1)[1].strip() if MARKER in text else text.strip()
        status[name] = {"rc": rc, "seconds": round(time.perf_counter() - start, 1)}
    print("\n\n" + "=" * 100 + "\nALL RESULTS" + (" (quick)" if args.quick else ""))
    for name in names:
        st = status[name]
        print(f"\n### {name} (exit {st['rc']}, {st['seconds']} s)\n")
        print(summaries[name] if st["rc"] == 0 else summaries[name][-3000:])
    c.write_json("summary", {"quick": args.quick, "status": status, "tables": summaries})
    return 0 if all(s["rc"] == 0 for s in status.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
