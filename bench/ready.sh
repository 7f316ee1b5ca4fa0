#!/usr/bin/env bash
# bench/ready.sh — readiness latency: READY=1 sent → the dependent's process started (issue 14).
#
#   bash bench/ready.sh              # 3 runs of 60 rounds
#   ROUNDS=200 RUNS=1 bash bench/ready.sh
#
# Each round (internal/supervise TestReadyLatencyBench, the daemon in-process on a temp root):
# service-db (ready = "notify", the test binary re-executed) writes the time and sends READY=1
# on its NOTIFY_SOCKET; api-app, which depends on it, writes the time its main starts. The
# difference is the latency; both services are then stopped and started again. The
# dependent is the same Go test binary, so its own start-up (exec, Go runtime init, ~2 ms
# here) is inside the figure. Set SPLIT=1 for where each round's time went. The goal is
# p50 ≤ 5 ms. The machine's load average is printed beside: the figure moves with it.

set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-60} RUNS=${RUNS:-3}
for i in $(seq "$RUNS"); do
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  UPKEEP_BENCH_READY=$ROUNDS UPKEEP_BENCH_SPLIT=${SPLIT:-} go test -count=1 -run '^TestReadyLatencyBench$' -v ./internal/supervise |
    grep -E '^(ready latency|sent)' || { echo "bench/ready.sh: the run failed" >&2; exit 1; }
done
