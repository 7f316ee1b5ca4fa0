#!/usr/bin/env bash
# bench/logs.sh — capturing a service's output: throughput against a shell redirect, lines lost under
# rotation (upkeep's logsink against logrotate copytruncate), peak RSS of the capturing process.
#
#   bash bench/logs.sh          (from the repository root; about 2–4 minutes for 1 GiB × 3 rounds)
#
# What runs (internal/logsink/bench_test.go, TestLogsBench): a child writes BYTES of 61-byte numbered
# lines to its stdout in writes of BUF bytes, (1) redirected straight into a file, as `cmd > file`
# does: the baseline; (2) through a pipe into a second process that drains it into a logsink.Sink, as
# the daemon captures a service (a flood is spliced pipe → file), without rotation; (3) the same with
# the defaults plus size rotation every 64 MiB (compress, delaycompress, rotate 7); (4) the same
# without compression. ROUNDS rounds, alternating; medians reported, with the capturing process's own
# CPU time and the share of bytes moved by splice(2). Then LOST_LINES lines with a rotation forced
# every FORCE_MS ms, every file (.gz too) read back and counted; then the same writer writing its own
# file (O_APPEND), rotated three times by upkeep (a [[log.file]]: rename + SIGUSR1, then
# copytruncate) and by `logrotate -f` with copytruncate, at the same moments; all of it again with
# PACED_LINES lines at RATE_MB MB/s.
#
# Knobs (env): BYTES (1073741824) ROUNDS (3) BUF (65536) LOST_LINES (20000000) PACED_LINES (3000000)
# RATE_MB (50) FORCE_MS (20) OUT (bench/out); to compare, NOSPLICE=1 (read + write, no splice) and
# PIPE_SZ (bytes a flooding pipe grows to, 1048576).
# Everything runs in a temp dir (removed at exit); nothing is installed: without logrotate the
# copytruncate comparison is skipped.

set -euo pipefail
if [ -z "${UPKEEP_BENCH_INNER:-}" ]; then
	export UPKEEP_BENCH_INNER=1
	exec timeout -k 30 1500 bash "$0" "$@"   # the bound of the whole run
fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$REPO/bench/out}
mkdir -p "$OUT"
T=$(mktemp -d /var/tmp/upkeep-logs-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir "$T/data"
cd "$REPO"
go test -c -o "$T/logsink.test" ./internal/logsink
{
	echo "date: $(date -u +%FT%TZ)"
	echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "logrotate: $(logrotate --version 2>&1 | head -1 || echo none)"
	echo "disk: $(df -h "$T" | tail -1)"
} | tee "$OUT/logs-machine.txt"
UPKEEP_LOGS_BENCH=1 DIR="$T/data" "$T/logsink.test" -test.run '^TestLogsBench$' -test.v -test.timeout 20m 2>&1 |
	tee "$OUT/logs.txt"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/logs-machine.txt"
