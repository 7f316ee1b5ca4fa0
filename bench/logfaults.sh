#!/usr/bin/env bash
# bench/logfaults.sh — the figures of docs/reliability.md ("Logs under faults"): the log faults of
# test/logfaults_test.go (a full var/log, the daemon at its descriptor limit, a flood's peak
# RSS), run N times against the built daemon, their "figure:" lines collected.
#
#   sudo bash bench/logfaults.sh        (root: the tests mount tmpfs; about 15 s a round)
#
# Knobs (env): N (5 rounds) OUT (bench/out/logfaults, git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5}
OUT=${OUT:-bench/out/logfaults}
mkdir -p "$OUT"
CGO_ENABLED=0 go test -count="$N" -v -timeout 20m \
	-run '^(TestLogDiskFull|TestDaemonAtDescriptorLimit|TestFloodMemoryBounded)$' ./test/ \
	| tee "$OUT/run.log" | grep -E 'figure:|^(--- FAIL|FAIL|ok)' | sed 's/^ *logfaults_test.go:[0-9]*: //' | tee "$OUT/figures.txt"
