#!/usr/bin/env bash
# `make run`: the web server and the worker side by side; Ctrl-C (or either one exiting) stops both.
# Usage: scripts/run.sh PORT   (run from the project root, after `make setup`)
set -u
PORT="${1:-5000}"
FLASK=(.venv/bin/flask --app app)

"${FLASK[@]}" worker &
worker=$!
"${FLASK[@]}" run --host 127.0.0.1 --port "$PORT" &
web=$!

stop() {
  trap - INT TERM EXIT
  kill "$web" "$worker" 2>/dev/null
  wait "$web" "$worker" 2>/dev/null
}
trap 'stop; exit 130' INT TERM
trap stop EXIT

# Whichever ends first ends the session: a dead worker means timers silently stop.
wait -n "$web" "$worker"
status=$?
echo "a process stopped (exit $status); stopping the other" >&2
exit "$status"
