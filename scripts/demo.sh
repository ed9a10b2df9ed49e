#!/usr/bin/env bash
# The demo behind `make demo`: load frappe (once) into the trails database, then run in psql
# the best query trails can run so far.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PGDATABASE="${PGDATABASE:-trails}"
PSQL="psql -X -v ON_ERROR_STOP=1"

if [ "$($PSQL -tAc "SELECT to_regclass('frappe_test') IS NOT NULL")" != "t" ]; then
  bash "$REPO/scripts/load_dataset.sh" frappe
fi
$PSQL -c "CREATE EXTENSION IF NOT EXISTS trails CASCADE" >/dev/null
set -x
$PSQL -c "SELECT * FROM trails.describe('frappe')"
$PSQL -c "SELECT * FROM trails.read_batch('frappe', 3)"
$PSQL -c "SELECT * FROM trails.read_batch_stats('frappe')"
