#!/usr/bin/env bash
# Record, for one Debian PostgreSQL cluster, where PL/Python finds the trails package and the
# venv: PYTHONPATH in /etc/postgresql/<cluster>/environment, computed from this checkout and
# $TRAILS_VENV at install time (nothing absolute is stored in the repository). Restarts the
# cluster when the value changes, since the postmaster reads that file at start.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRAILS_VENV:-/opt/trails-venv}"
CLUSTER="${PG_CLUSTER:-15/main}"
ENV_FILE="/etc/postgresql/$CLUSTER/environment"
SITE="$VENV/lib/python3.11/site-packages"
VALUE="$REPO/python:$SITE"

if [ ! -d "$SITE" ]; then
  echo "[install] ERROR: venv $VENV not found. HINT: run 'make setup' first (or set TRAILS_VENV)." >&2
  exit 1
fi
if [ ! -f "$ENV_FILE" ]; then
  echo "[install] no $ENV_FILE: set PYTHONPATH='$VALUE' in the environment of your PostgreSQL server yourself"
  exit 0
fi
LINE="PYTHONPATH = '$VALUE'"
if grep -qxF "$LINE" "$ENV_FILE"; then
  echo "[install] $ENV_FILE already has $LINE"
  exit 0
fi
sed -i '/^PYTHONPATH[[:space:]]*=/d' "$ENV_FILE"
echo "$LINE" >> "$ENV_FILE"
echo "[install] wrote $LINE to $ENV_FILE"
if pg_lsclusters -h | awk -v v="${CLUSTER%/*}" -v n="${CLUSTER#*/}" '$1==v && $2==n {print $4}' | grep -q online; then
  echo "[install] restarting cluster $CLUSTER so its backends see PYTHONPATH"
  pg_ctlcluster "${CLUSTER%/*}" "${CLUSTER#*/}" restart
fi
