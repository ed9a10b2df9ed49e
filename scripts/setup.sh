#!/usr/bin/env bash
# One-command, idempotent set-up of a Debian 12 machine for trails:
#   apt packages (PostgreSQL 15 + PL/Python), the venv with pinned dependencies and the
#   trails package (scripts/install_package.sh), a running cluster, a role for the current
#   user and the demo database.
# A second run changes nothing and finishes in seconds.
# Environment: TRAILS_VENV (default /opt/trails-venv), TRAILS_DB (default trails), TRAILS_EXTRAS
# (optional dependency sets to add, e.g. "ray": requirements-ray.txt; `make test` adds ray).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRAILS_VENV:-/opt/trails-venv}"
DB="${TRAILS_DB:-trails}"
PY=/usr/bin/python3.11
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

say() { printf '[setup] %s\n' "$*"; }

# 1. apt packages -------------------------------------------------------------
PKGS="postgresql-15 postgresql-client-15 postgresql-plpython3-15 python3.11-venv"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  say "installing apt packages:$missing"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
  say "apt packages present"
fi

# 2. venv ---------------------------------------------------------------------
REQ_HASH="$(sha256sum "$REPO/requirements.txt" | cut -c1-16)"
if [ -f "$VENV/.trails-requirements" ] && [ "$(cat "$VENV/.trails-requirements")" = "$REQ_HASH" ]; then
  say "venv $VENV up to date"
else
  say "creating venv $VENV (pinned requirements; takes a few minutes the first time)"
  $SUDO mkdir -p "$VENV"
  $SUDO chown "$(id -u):$(id -g)" "$VENV"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REPO/requirements.txt"
  echo "$REQ_HASH" > "$VENV/.trails-requirements"
fi

for extra in ${TRAILS_EXTRAS:-}; do
  req="$REPO/requirements-$extra.txt"
  [ -f "$req" ] || { say "ERROR: no $req for TRAILS_EXTRAS=$extra"; exit 1; }
  hash="$(sha256sum "$req" | cut -c1-16)"
  if [ "$(cat "$VENV/.trails-requirements-$extra" 2>/dev/null)" != "$hash" ]; then
    say "installing the optional dependencies $extra ($(basename "$req"))"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
    echo "$hash" > "$VENV/.trails-requirements-$extra"
  fi
done

TRAILS_VENV="$VENV" bash "$REPO/scripts/install_package.sh"

# 3. the postgres user must read the venv (PL/Python imports trails from it) ---
for path in "$VENV/lib/python3.11/site-packages/trails/__init__.py" "$VENV/lib/python3.11/site-packages/numpy/__init__.py"; do
  if ! $SUDO runuser -u postgres -- test -r "$path"; then
    say "ERROR: the postgres user cannot read $path"
    say "HINT: PL/Python runs as postgres. Put the venv where postgres can read it"
    say "      (not under /root, mode 0700): e.g. TRAILS_VENV=/opt/trails-venv."
    exit 1
  fi
done

# 4. cluster, role, database -------------------------------------------------
if ! pg_lsclusters -h 2>/dev/null | awk '$1==15 && $2=="main"' | grep -q .; then
  say "creating cluster 15/main"
  $SUDO pg_createcluster 15 main >/dev/null
fi
if ! pg_lsclusters -h | awk '$1==15 && $2=="main" {print $4}' | grep -q online; then
  say "starting cluster 15/main"
  $SUDO pg_ctlcluster 15 main start
fi
ME="$(id -un)"
psql_pg() { $SUDO runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
if [ "$(psql_pg -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ME'")" != "1" ]; then
  say "creating role $ME"
  psql_pg -c "CREATE ROLE \"$ME\" LOGIN SUPERUSER"
fi
if [ "$(psql_pg -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
  say "creating database $DB"
  psql_pg -c "CREATE DATABASE \"$DB\" OWNER \"$ME\""
fi
say "ready: PostgreSQL $(psql_pg -tAc 'SHOW server_version'), venv $VENV, database $DB"
