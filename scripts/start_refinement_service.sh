#!/usr/bin/env bash
# Start the trails refinement service (successive halving out of the database; GPU when present).
#   scripts/start_refinement_service.sh [--background] [--config FILE] [--host H] [--port P] [--dsn DSN] ...
#   scripts/start_refinement_service.sh --stop
# Arguments other than --background/--stop go to `python -m trails.refinement.service`.
# Defaults come from [service] in config.ini (127.0.0.1:8093). Rows are read with libpq's PG*
# variables unless [service] dsn / --dsn says otherwise (PGDATABASE defaults to trails).
# --background: run detached, log to $TRAILS_RUN_DIR/refinement_service.log (default /tmp/trails),
#   pid in $TRAILS_RUN_DIR/refinement_service.pid, and return once /healthz answers.
# --stop: stop the service started with --background.
# TRAILS_VENV: the virtual environment with torch and fastapi (default /opt/trails-venv).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRAILS_VENV:-/opt/trails-venv}"
PYTHON="$VENV/bin/python"
RUN_DIR="${TRAILS_RUN_DIR:-/tmp/trails}"
PID_FILE="$RUN_DIR/refinement_service.pid"
LOG_FILE="$RUN_DIR/refinement_service.log"
WAIT_S="${TRAILS_SERVICE_WAIT_S:-60}"
export TRAILS_CONFIG="${TRAILS_CONFIG:-$REPO/config.ini}"
export PGDATABASE="${PGDATABASE:-trails}"

background=0
stop=0
args=()
host=""
port=""
config=""
while [ $# -gt 0 ]; do
  case "$1" in
    --background) background=1 ;;
    --stop) stop=1 ;;
    --host) host="$2"; args+=("$1" "$2"); shift ;;
    --port) port="$2"; args+=("$1" "$2"); shift ;;
    --config) config="$2"; args+=("$1" "$2"); shift ;;
    *) args+=("$1") ;;
  esac
  shift
done

running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

if [ "$stop" = 1 ]; then
  if pid="$(running_pid)"; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$PID_FILE"
    echo "refinement service (pid $pid) stopped"
  else
    echo "no refinement service running from $PID_FILE"
  fi
  exit 0
fi

if [ ! -x "$PYTHON" ]; then
  echo "no python at $PYTHON: run 'make setup' or set TRAILS_VENV" >&2
  exit 1
fi

if [ "$background" = 0 ]; then
  exec "$PYTHON" -m trails.refinement.service ${args[@]+"${args[@]}"}
fi

mkdir -p "$RUN_DIR"
if pid="$(running_pid)"; then
  echo "refinement service already running (pid $pid, log $LOG_FILE)"
  exit 0
fi

# The address /healthz is polled at: the arguments, else [service] of the configuration.
url="$(TRAILS_CONFIG="${config:+$(cd "$(dirname "$config")" && pwd)/$(basename "$config")}" \
  HOST="$host" PORT="$port" "$PYTHON" - <<'EOF'
import os
from trails.config import load_config
config = load_config()
host = os.environ["HOST"] or config.get("service", "host", fallback="127.0.0.1") or "127.0.0.1"
port = os.environ["PORT"] or config.get("service", "port", fallback="8093")
if host in ("0.0.0.0", "::"):
    host = "127.0.0.1"
print(f"http://{host}:{port}")
EOF
)"

nohup "$PYTHON" -m trails.refinement.service ${args[@]+"${args[@]}"} >>"$LOG_FILE" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$PID_FILE"

for _ in $(seq $((WAIT_S * 5))); do
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$PID_FILE"
    echo "refinement service exited during start-up; last lines of $LOG_FILE:" >&2
    tail -n 20 "$LOG_FILE" >&2
    exit 1
  fi
  if health="$("$PYTHON" -c "
import json, sys
from trails.refinement.client import RefinementClient, ServiceUnavailable
try:
    print(json.dumps(RefinementClient(sys.argv[1], timeout=1).health()))
except ServiceUnavailable:
    sys.exit(1)
" "$url" 2>/dev/null)"; then
    echo "refinement service running at $url (pid $pid, log $LOG_FILE): $health"
    exit 0
  fi
  sleep 0.2
done
echo "refinement service did not answer $url/healthz within ${WAIT_S}s; see $LOG_FILE" >&2
exit 1
