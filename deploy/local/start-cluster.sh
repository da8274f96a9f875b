#!/usr/bin/env bash
# Start a real Dask cluster on this machine: one `dask scheduler` and N `dask worker` processes,
# all listening on 127.0.0.1 only. The integration tests use this same script.
#
#   deploy/local/start-cluster.sh [--workers N] [--gpu-workers M] [--port PORT]
#                                 [--dashboard-port PORT] [--run-dir DIR]
#
# Prints the scheduler address on stdout and writes it to RUN_DIR/scheduler-address; pids go to
# RUN_DIR/pids. Stop with deploy/local/stop-cluster.sh RUN_DIR.
# GPU workers declare the resource GPU=1 (prediction and training tasks ask for it) and set
# XLA_PYTHON_CLIENT_PREALLOCATE=false so JAX does not grab all GPU memory at start.
set -euo pipefail

workers=2
gpu_workers=0
port=8786
dashboard_port=8787
run_dir="${TMPDIR:-/tmp}/daskseg-cluster"
dask_bin="${DASK:-dask}"

while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="$2"; shift 2 ;;
    --gpu-workers) gpu_workers="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --dashboard-port) dashboard_port="$2"; shift 2 ;;
    --run-dir) run_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

mkdir -p "$run_dir"
: > "$run_dir/pids"
address="tcp://127.0.0.1:${port}"

"$dask_bin" scheduler --host 127.0.0.1 --port "$port" \
  --dashboard-address "127.0.0.1:${dashboard_port}" \
  >"$run_dir/scheduler.log" 2>&1 &
echo $! >> "$run_dir/pids"

# wait until the scheduler accepts connections (bounded: 60 s)
for _ in $(seq 1 120); do
  if grep -q "Scheduler at" "$run_dir/scheduler.log" 2>/dev/null; then break; fi
  sleep 0.5
done
grep -q "Scheduler at" "$run_dir/scheduler.log" || { echo "scheduler did not start; see $run_dir/scheduler.log" >&2; exit 1; }

start_worker() {  # name, extra args...
  local name="$1"; shift
  "$dask_bin" worker "$address" --host 127.0.0.1 --nthreads 1 --nworkers 1 --name "$name" \
    --no-dashboard --local-directory "$run_dir/$name" "$@" >"$run_dir/$name.log" 2>&1 &
  echo $! >> "$run_dir/pids"
}

for i in $(seq 1 "$workers"); do
  start_worker "cpu-$i"
done
for i in $(seq 1 "$gpu_workers"); do
  XLA_PYTHON_CLIENT_PREALLOCATE=false CUDA_VISIBLE_DEVICES="$((i - 1))" start_worker "gpu-$i" --resources "GPU=1"
done

echo "$address" > "$run_dir/scheduler-address"
echo "$address"
