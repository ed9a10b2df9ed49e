#!/usr/bin/env bash
# Filtering benchmark (P1, P2, P3 of issue #3) against the trails database; loads frappe if absent.
#   scripts/bench_filtering.sh [--quick]   (scripts/bench_filtering.py --in-db; without it: no database)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRAILS_VENV:-/opt/trails-venv}"
export PGDATABASE="${PGDATABASE:-trails}"
if [ "$(psql -X -tAc "SELECT to_regclass('frappe_test') IS NOT NULL")" != "t" ]; then
  bash "$REPO/scripts/load_dataset.sh" frappe
fi
psql -X -q -c "CREATE EXTENSION IF NOT EXISTS trails CASCADE"
exec "$VENV/bin/python" "$REPO/scripts/bench_filtering.py" --in-db "$@"
