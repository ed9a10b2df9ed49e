#!/usr/bin/env bash
# The GPU check on a lent GPU machine (see scripts/gpu_check.py for what it runs and writes).
#
#   bash scripts/gpu_check.sh --make-bundle [BUNDLE]   here, on the Debian 12 development machine:
#       put into BUNDLE (default .gpu, git-ignored) what the GPU machine lacks: PostgreSQL 15's
#       binaries with their libraries (pg.tar.xz), wheels of our pinned dependencies for its
#       Python 3.12 (whl/), frappe's files (data/frappe); and build the extension's SQL.
#   bash scripts/gpu_check.sh [BUNDLE [OUT [ARGS...]]] there: install the wheels, unpack
#       PostgreSQL, run scripts/gpu_check.py (ARGS: its options, e.g. --budget 60); results
#       under OUT (default exps/results).
#
# The GPU machine has no package registry and a Python (3.12) whose torch is a CUDA build
# (2.11 at the time of writing): that torch is used as it is; the pinned 2.13.0 cannot be
# installed there. Ray is not carried (its wheel alone is larger than what may travel).
# Environment: TRAILS_GPU_PYTHON (default python3), TRAILS_DATA_DIR (for --make-bundle).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${TRAILS_GPU_PYTHON:-python3}"
WHEELS="psycopg2-binary==2.9.13 lightgbm==4.7.0 fastapi==0.165.0 starlette==1.10.0 pydantic==2.14.4
pydantic_core==2.50.5 annotated-types==0.8.0 annotated-doc==0.0.7 typing-inspection==0.4.5 uvicorn==0.54.0
opentelemetry-api==1.45.3"

make_bundle() {
  local bundle="$1" stage pgbin=/usr/lib/postgresql/15/bin
  stage="$(mktemp -d)"
  mkdir -p "$bundle/whl" "$bundle/data" "$stage/usr/lib/postgresql/15/bin" "$stage/usr/lib/postgresql/15/lib" \
    "$stage/usr/share/postgresql" "$stage/pglibs" "$stage/zoneinfo"
  cp -a $pgbin/{postgres,initdb,pg_ctl,psql} "$stage/usr/lib/postgresql/15/bin/"
  cp -a /usr/lib/postgresql/15/lib/*.so "$stage/usr/lib/postgresql/15/lib/"
  rm -f "$stage"/usr/lib/postgresql/15/lib/llvmjit*.so  # jit = off there
  cp -a /usr/share/postgresql/15 "$stage/usr/share/postgresql/"
  # the libraries they link, but the C library's own (the GPU machine's glibc is newer)
  for lib in $(ldd $pgbin/{postgres,initdb,pg_ctl,psql} | awk '/=>/ {print $3}' | sort -u |
               grep -vE '/(libc|libm|libresolv|libstdc\+\+|libgcc_s)\.so'); do
    cp -L "$lib" "$stage/pglibs/"
  done
  cp -L /usr/share/zoneinfo/UTC "$stage/zoneinfo/"
  tar -C "$stage" -cJf "$bundle/pg.tar.xz" .
  rm -rf "$stage"
  # shellcheck disable=SC2086
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d "$bundle/whl" $WHEELS
  local data="${TRAILS_DATA_DIR:-$REPO/../shared/data}"
  rm -rf "$bundle/data/frappe" && cp -rL "$data/frappe" "$bundle/data/frappe" && chmod -R u+w "$bundle/data"
  make -C "$REPO" -s all
  du -sh "$bundle"
}

run_check() {
  local bundle="$1" out="$2" root=/tmp/trails-pgroot
  shift 2
  if ! "$PY" -c 'import fastapi, uvicorn, psycopg2, lightgbm' 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$bundle"/whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export PYTHONPATH="$REPO/python${PYTHONPATH:+:$PYTHONPATH}"
  "$PY" -c 'import trails.refinement.service.api, trails.selection.phases, trails.families.gbdt' ||
    { echo "gpu_check: trails cannot be imported with $PY (a wheel missing from the bundle?)" >&2; exit 1; }
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  rm -rf "$root" && mkdir -p "$root" && tar -C "$root" -xJf "$bundle/pg.tar.xz" && chmod 755 "$root"
  # PostgreSQL reads the system's time zones; a bare image may have none
  [ -e /usr/share/zoneinfo/UTC ] || { mkdir -p /usr/share/zoneinfo && cp "$root/zoneinfo/UTC" /usr/share/zoneinfo/; }
  PYTHONUNBUFFERED=1 "$PY" "$REPO/scripts/gpu_check.py" --pg-root "$root" --pg-libs "$root/pglibs" \
    --data-dir "$bundle/data" --out "$out" "$@"
}

if [ "${1:-}" = "--make-bundle" ]; then
  make_bundle "${2:-$REPO/.gpu}"
else
  run_check "${1:-$REPO/.gpu}" "${2:-$REPO/exps/results}" "${@:3}"
fi
