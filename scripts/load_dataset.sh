#!/usr/bin/env bash
# Load a benchmark dataset into PostgreSQL as NAME_train, NAME_valid, NAME_test (by COPY).
#   scripts/load_dataset.sh NAME [DATA_DIR]      NAME: frappe | uci_diabetes | criteo
# Connection: PGHOST / PGPORT / PGUSER / PGDATABASE, as for psql (PGDATABASE defaults to trails).
# DATA_DIR: default $TRAILS_DATA_DIR, then ../shared/data beside the repository.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRAILS_VENV:-/opt/trails-venv}"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 NAME [DATA_DIR]   (NAME: frappe | uci_diabetes | criteo)" >&2
  exit 2
fi
export PGDATABASE="${PGDATABASE:-trails}"
export TRAILS_CONFIG="${TRAILS_CONFIG:-$REPO/config.ini}"  # data_dir, chunk sizes
exec "$VENV/bin/python" -m trails.data.loaders "$@"
