#!/usr/bin/env bash
# Run a command with DATABASE_URL pointing at a fresh PostgreSQL database, dropped afterwards.
# CI (CI=true) requires PostgreSQL; elsewhere the PostgreSQL run is skipped with a notice when
# the server cannot be reached. See DEVELOPERS.md.
set -euo pipefail
host=${PGHOST:-127.0.0.1}; port=${PGPORT:-5432}; user=${PGUSER:-postgres}
db="daihou_test_$$_$(date +%s)"
psql_cmd=(psql -h "$host" -p "$port" -U "$user" -d postgres -v ON_ERROR_STOP=1 -qtA)
if ! "${psql_cmd[@]}" -c "select 1" >/dev/null 2>&1; then
  if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    sleep 2
  fi
fi
if ! "${psql_cmd[@]}" -c "select 1" >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "PostgreSQL is not reachable on $host:$port and CI requires it" >&2; exit 1
  fi
  echo "NOTICE: PostgreSQL not reachable on $host:$port; PostgreSQL run skipped" >&2; exit 0
fi
# PGTEMPLATE: start from a copy of that database (bench/run.py: migrated once per run).
"${psql_cmd[@]}" -c "CREATE DATABASE $db${PGTEMPLATE:+ TEMPLATE $PGTEMPLATE}" >/dev/null
trap '"${psql_cmd[@]}" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
DATABASE_URL="postgresql://$user@$host:$port/$db" "$@"
