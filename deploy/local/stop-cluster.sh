#!/usr/bin/env bash
# Stop a cluster started by start-cluster.sh: workers first, then the scheduler.
set -uo pipefail
run_dir="${1:-${TMPDIR:-/tmp}/daskseg-cluster}"
[ -f "$run_dir/pids" ] || { echo "no pids file in $run_dir" >&2; exit 1; }
tac "$run_dir/pids" | while read -r pid; do
  kill "$pid" 2>/dev/null || true
done
for _ in $(seq 1 40); do
  alive=0
  while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done < "$run_dir/pids"
  [ "$alive" = 0 ] && break
  sleep 0.25
done
while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$run_dir/pids"
rm -f "$run_dir/pids"
