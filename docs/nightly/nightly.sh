#!/usr/bin/env bash
# Nightly llmbench: run the suite tagged "nightly", gate it against the previous night,
# rebuild the leaderboard. The gate and the leaderboard run even when some runs failed.
#
# Exit code (see README.md, "What the exit code says"):
#   0  every gated value tested, no significant drop (or the first night, with every run complete)
#   1  a metric dropped significantly
#   2  the gate cannot decide: untested values, runs missing or incomplete tonight (a failed
#      model), another model behind a label, a changed benchmark, or the first night with failed runs
#   3  an internal error (llmbench crashed in the run, the gate or the report)
#
#   crontab -e
#   0 2 * * *  cd /srv/llmbench && docs/nightly/nightly.sh >> results/nightly.log 2>&1
#
# From a checkout it runs in the checkout with its .venv; anywhere else (an installed package:
# `pip install llmbench`, then copy this file) it runs in the current folder with the
# `llmbench` found on PATH and the suite that ships in the package (`--suite default`).
#
# Environment (all optional):
#   LLMBENCH_STORE   results store (SQLite path or SQLAlchemy URL); default results/llmbench.db
#   SUITE            suite file or packaged suite name; default suites/default.yaml if present, else default
#   BIN              folder holding llmbench and python; default .venv/bin in a checkout, else PATH
#   GATE_ARGS        extra gate options, e.g. "--metric primary --max-drop 0.01"
#   LEADERBOARD      output folder; default leaderboard/
#   GATE_JSON        where the JSON decision goes; default results/gate.json
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
if [ -f "$HERE/../../pyproject.toml" ] && [ -d "$HERE/../../llmbench" ]; then
  cd "$HERE/../.."  # a checkout: results/ and leaderboard/ live in it
fi
if [ -z "${BIN:-}" ]; then
  if [ -x .venv/bin/llmbench ]; then
    BIN=.venv/bin
  elif command -v llmbench >/dev/null; then
    BIN=$(dirname "$(command -v llmbench)")
  else
    echo "== llmbench is not installed here (no .venv/bin/llmbench, none on PATH) — pip install llmbench or set BIN"
    exit 3
  fi
fi
PYTHON="$BIN/python"
[ -x "$PYTHON" ] || PYTHON=python3
if [ -z "${SUITE:-}" ]; then
  if [ -f suites/default.yaml ]; then SUITE=suites/default.yaml; else SUITE=default; fi
fi
LEADERBOARD=${LEADERBOARD:-leaderboard}
GATE_JSON=${GATE_JSON:-results/gate.json}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
# A tag only tonight's batch carries: the gate's candidate is what *this* invocation stored,
# never last night's batch when tonight stored nothing.
NIGHT=${NIGHT:-night-$(date -u +%Y%m%dT%H%M%SZ)-$$}

mkdir -p "$(dirname "$GATE_JSON")"
echo "== $(date -u +%FT%TZ) nightly run ($NIGHT)"
"$BIN/llmbench" run --suite "$SUITE" --tag nightly --tag "$NIGHT"
run_code=$?
[ "$run_code" -ne 0 ] && echo "== the run exited $run_code (failed or incomplete runs); gating what was stored"

echo "== gate: previous night -> this night"
rm -f "$GATE_JSON"
# shellcheck disable=SC2086  # GATE_ARGS is a list of options
"$BIN/llmbench" gate --baseline prev:nightly --candidate "last:$NIGHT" --json-out "$GATE_JSON" ${GATE_ARGS:-}
gate_code=$?
# The decision is read from the JSON, never from the wording of a message.
decision=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["decision"])' "$GATE_JSON" \
  2>/dev/null || echo "none")
echo "== gate decision: $decision (exit $gate_code)"

echo "== leaderboard"
"$BIN/llmbench" report --out "$LEADERBOARD"
report_code=$?

case "$decision" in
  pass) code=0 ;;
  regression) code=1 ;;
  cannot_decide) code=2 ;;
  no_baseline)  # the first night: nothing to compare against; the night is as good as its runs
    echo "first night: no previous night to compare against"
    if [ "$run_code" -eq 0 ]; then code=0; elif [ "$run_code" -eq 3 ]; then code=3; else code=2; fi ;;
  *) code=3 ;;  # no decision written: the gate crashed
esac
# A crash anywhere is never hidden behind a pass.
if [ "$code" -eq 0 ] && { [ "$run_code" -eq 3 ] || [ "$report_code" -ne 0 ]; }; then
  echo "== the run or the report failed (run exit $run_code, report exit $report_code)"
  code=3
fi
echo "== nightly exit $code"
exit "$code"
