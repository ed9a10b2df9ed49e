#!/usr/bin/env bash
# The demo behind `make demo`: load frappe (once), start the refinement service in the
# background, and select a model for frappe within 60 seconds, in psql.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PGDATABASE="${PGDATABASE:-trails}"
BUDGET="${TRAILS_DEMO_BUDGET:-60}"
PSQL="psql -X -v ON_ERROR_STOP=1"

if [ "$($PSQL -tAc "SELECT to_regclass('frappe_test') IS NOT NULL")" != "t" ]; then
  bash "$REPO/scripts/load_dataset.sh" frappe
fi
$PSQL -q -c "CREATE EXTENSION IF NOT EXISTS trails CASCADE"
$PSQL -q -c "ALTER EXTENSION trails UPDATE"   # a database made by an earlier version
bash "$REPO/scripts/start_refinement_service.sh" --background
set -x
$PSQL -c "SELECT * FROM model_selection('frappe', $BUDGET)"
$PSQL -c "SELECT t.label, round(trails.predict(m.model_id, t)::numeric, 4) AS p_positive
          FROM frappe_test t, (SELECT max(model_id) AS model_id FROM trails.models) m LIMIT 5"
