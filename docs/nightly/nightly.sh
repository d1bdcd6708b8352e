#!/usr/bin/env bash
# Nightly llmbench: run the suite tagged "nightly", gate it against the previous night,
# rebuild the leaderboard. Exit code = the gate's: 0 pass, 1 significant drop, 2 cannot decide.
#
#   crontab -e
#   0 2 * * *  cd /srv/llmbench && docs/nightly/nightly.sh >> results/nightly.log 2>&1
#
# Environment (all optional):
#   LLMBENCH_STORE   results store (SQLite path or SQLAlchemy URL); default results/llmbench.db
#   SUITE            suite file; default suites/default.yaml
#   GATE_ARGS        extra gate options, e.g. "--metric primary --max-drop 0.01"
#   LEADERBOARD      output folder; default leaderboard/
#   GATE_JSON        where the JSON decision goes; default results/gate.json
set -uo pipefail

cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
SUITE=${SUITE:-suites/default.yaml}
LEADERBOARD=${LEADERBOARD:-leaderboard}
GATE_JSON=${GATE_JSON:-results/gate.json}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}

echo "== $(date -u +%FT%TZ) nightly run"
"$BIN/llmbench" run --suite "$SUITE" --tag nightly || { echo "suite failed (exit $?)"; exit 2; }

echo "== gate: previous night -> this night"
# shellcheck disable=SC2086  # GATE_ARGS is a list of options
err=$(mktemp)
"$BIN/llmbench" gate --baseline prev:nightly --candidate last:nightly --json-out "$GATE_JSON" \
  ${GATE_ARGS:-} 2> "$err"
code=$?
cat "$err" >&2
if [ "$code" -eq 2 ] && grep -q "only 1 batch tagged 'nightly'" "$err"; then
  echo "first night: nothing to compare against yet"
  code=0
fi
rm -f "$err"

echo "== leaderboard"
"$BIN/llmbench" report --out "$LEADERBOARD" || echo "report failed (the gate result stands)"
exit "$code"
