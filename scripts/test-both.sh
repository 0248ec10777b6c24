#!/usr/bin/env bash
# `make test`: the whole suite on SQLite and on a fresh PostgreSQL database at the same time.
# Neither run uses both cores for long (Python is one core, PostgreSQL and Chromium come and
# go), so together they take about the longer of the two instead of their sum. Each run's
# output is shown as it ends; the exit status fails when either run fails.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
trap 'kill 0 2>/dev/null' INT TERM

make --no-print-directory test-sqlite >"$logs/sqlite.log" 2>&1 &
sqlite=$!
bash scripts/with-postgres.sh make --no-print-directory test-postgres \
  >"$logs/postgresql.log" 2>&1 &
postgresql=$!
echo "== the suite runs on SQLite and on PostgreSQL at once; each run's output follows as it ends =="

status=0
started=$SECONDS
for run in sqlite postgresql; do
  pid=${!run}
  if wait "$pid"; then result=passed; else result=FAILED; status=1; fi
  cat "$logs/$run.log"
  echo "== $run: $result ($(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s since the start) =="
done
rm -rf "$logs"
exit $status
