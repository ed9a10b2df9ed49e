#!/usr/bin/env bash
# Run every reproduction experiment of exps/ (issue #5) in order, each through its
# scripts/reproduce_<name>.sh:
#   scripts/reproduce_all.sh [--quick]
# --quick: CI-sized runs (≤ 4 min on 2 cores), results in *_quick.csv/png. Without it, the full
# runs whose numbers exps/README.md reports (about an hour on 2 CPU cores).
# Connection: PGHOST / PGPORT / PGUSER / PGDATABASE (default database trails); results in
# exps/results/ or $TRAILS_RESULTS_DIR.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
quick=()
for arg in "$@"; do
  case "$arg" in
    --quick) quick=(--quick) ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
  esac
done
started=$SECONDS
bash "$HERE/reproduce_tfmem_correlation.sh" --dataset frappe ${quick[@]+"${quick[@]}"}
bash "$HERE/reproduce_tfmem_correlation.sh" --dataset uci_diabetes ${quick[@]+"${quick[@]}"}
bash "$HERE/reproduce_anytime.sh" --dataset frappe ${quick[@]+"${quick[@]}"}
bash "$HERE/reproduce_anytime.sh" --dataset uci_diabetes ${quick[@]+"${quick[@]}"}
bash "$HERE/reproduce_nku_tradeoff.sh" ${quick[@]+"${quick[@]}"}
bash "$HERE/reproduce_filtering_latency.sh" ${quick[@]+"${quick[@]}"}
bash "$HERE/reproduce_budget_adherence.sh" ${quick[@]+"${quick[@]}"}
bash "$HERE/reproduce_gbdt_baseline.sh" ${quick[@]+"${quick[@]}"}
echo "== all experiments: $((SECONDS - started)) s"
