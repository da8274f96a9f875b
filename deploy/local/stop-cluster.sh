#!/usr/bin/env bash
# Stop a cluster started by start-cluster.sh: the workers first (so none waits on a vanished
# scheduler), then the scheduler; whatever is still alive after 10 s each is killed.
set -uo pipefail
run_dir="${1:-${TMPDIR:-/tmp}/daskseg-cluster}"
[ -f "$run_dir/pids" ] || { echo "no pids file in $run_dir" >&2; exit 1; }

alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
wait_gone() {  # pids...
  for _ in $(seq 1 40); do
    local any=0
    for p in "$@"; do alive "$p" && any=1; done
    [ "$any" = 0 ] && return 0
    sleep 0.25
  done
}

mapfile -t pids < "$run_dir/pids"
scheduler="${pids[0]}"
workers=("${pids[@]:1}")
for p in "${workers[@]}"; do kill "$p" 2>/dev/null; done
[ "${#workers[@]}" -gt 0 ] && wait_gone "${workers[@]}"
kill "$scheduler" 2>/dev/null
wait_gone "$scheduler"
for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
rm -f "$run_dir/pids"
