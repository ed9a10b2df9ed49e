#!/usr/bin/env bash
# Install the trails package from this checkout into the venv (`pip install .`, not editable:
# the database must keep working when the checkout moves). Skipped when neither the package's
# files nor pyproject.toml changed since the last install.
# Environment: TRAILS_VENV (default /opt/trails-venv).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRAILS_VENV:-/opt/trails-venv}"
STAMP="$VENV/.trails-package"
if [ ! -x "$VENV/bin/pip" ]; then
  echo "[package] ERROR: no venv at $VENV. HINT: run 'make setup' first (or set TRAILS_VENV)." >&2
  exit 1
fi
HASH="$(cd "$REPO" && find pyproject.toml python -type f ! -name '*.pyc' ! -path '*.egg-info*' -print0 \
        | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && "$VENV/bin/pip" show -q trails 2>/dev/null; then
  echo "[package] trails $("$VENV/bin/python" -c 'import trails; print(trails.__version__)') in $VENV up to date"
  exit 0
fi
echo "[package] installing trails into $VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation "$REPO"
rm -rf "$REPO/build" "$REPO"/python/*.egg-info
echo "$HASH" > "$STAMP"
