# Shared by scripts/reproduce_*.sh (sourced, not run): connection defaults, loading the
# datasets an experiment needs when they are absent, the refinement service when asked for,
# and running a driver of exps/ with the venv's Python.
# Connection: PGHOST / PGPORT / PGUSER / PGDATABASE as for psql (PGDATABASE defaults to trails).
# TRAILS_VENV: the virtual environment (default /opt/trails-venv).
# TRAILS_RESULTS_DIR: where results go (default exps/results).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRAILS_VENV:-/opt/trails-venv}"
export PGDATABASE="${PGDATABASE:-trails}"
PSQL=(psql -X -v ON_ERROR_STOP=1 -q -tA)

# ensure_datasets NAME...: load each dataset (scripts/load_dataset.sh) unless NAME_test (for
# the raw 'diabetes': the table diabetes) exists;
# create the extension if it is missing.
ensure_datasets() {
  "${PSQL[@]}" -c "CREATE EXTENSION IF NOT EXISTS trails CASCADE" >/dev/null
  local name
  for name in "$@"; do
    local table="${name}_test" loader="$name"
    if [ "$name" = diabetes ]; then table=diabetes; loader=uci_diabetes; fi  # the raw table
    if [ "$("${PSQL[@]}" -c "SELECT to_regclass('$table') IS NOT NULL")" != "t" ]; then
      echo "loading $loader ..."
      bash "$REPO/scripts/load_dataset.sh" "$loader"
    fi
  done
}

# datasets_from_args DEFAULT ARGS...: the value of --dataset in ARGS, else DEFAULT.
datasets_from_args() {
  local default="$1"; shift
  while [ $# -gt 0 ]; do
    case "$1" in --dataset) echo "$2"; return ;; --dataset=*) echo "${1#--dataset=}"; return ;; esac
    shift
  done
  echo "$default"
}

# needs_service ARGS...: true when ARGS ask for --refinement service or auto.
needs_service() {
  local previous=""
  for arg in "$@"; do
    if [ "$previous" = "--refinement" ] && [ "$arg" != "backend" ]; then return 0; fi
    case "$arg" in --refinement=service|--refinement=auto) return 0 ;; esac
    previous="$arg"
  done
  return 1
}

# start_service_if_needed ARGS...: start the refinement service in the background when ARGS
# need it (scripts/start_refinement_service.sh; a running one is reused).
start_service_if_needed() {
  if needs_service "$@"; then
    bash "$REPO/scripts/start_refinement_service.sh" --background
  fi
}

# run_driver NAME ARGS...: exps/NAME.py with the venv's Python.
run_driver() {
  local name="$1"; shift
  local started=$SECONDS
  TRAILS_CONFIG="${TRAILS_CONFIG:-$REPO/config.ini}" "$VENV/bin/python" "$REPO/exps/$name.py" "$@"
  echo "== $name $* : $((SECONDS - started)) s"
}
