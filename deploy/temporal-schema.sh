#!/bin/sh
# One-shot (temporalio/admin-tools): create Temporal's two PostgreSQL databases and apply every schema
# version shipped with this admin-tools release. Idempotent: re-running on an up-to-date database
# changes nothing, and after a Temporal upgrade it applies the new schema versions.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
port="${DB_PORT:-5432}"
schemas=/etc/temporal/schema/postgresql/v12
until nc -z -w 5 "$POSTGRES_SEEDS" "$port"; do echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$port"; sleep 2; done
for db in temporal:temporal temporal_visibility:visibility; do
  name="${db%%:*}"; dir="${db#*:}"
  sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" --db "$name" "$@"; }
  sql create || echo "database $name exists"
  sql setup-schema -v 0.0
  sql update-schema -d "$schemas/$dir/versioned"
done
echo "Temporal schema is up to date"
