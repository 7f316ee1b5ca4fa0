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
#
# Both may be given, for one run of both (BEFORE first). BEFORE=REV (a git revision, e.g. main): the capture benchmark of REV's internal/logsink too, the two
# builds alternated PAIRS (3) times with ROUNDS=1 each, LOST_LINES and PACED_LINES cut to 1 (only the
# throughput is compared); for the time index's cost. READ=1: the reading benchmark: a history
# of HIST_BYTES (1 GiB) captured through Sinks with size rotation every HIST_ROTATE_MB (100) MiB
# (compressed but the newest, with their time indexes), then REPS (5) timings each, medians, of
# `upkeep logs NAME -n 100` read directly, the same through a daemon's socket, `-n 100 --grep`, and
# `tail -n 100` of the live file, and, when systemd-journal-remote is installed, `journalctl --file -n 100`
# over a journal of JOURNAL_LINES (4,000,000) such lines, about 1 GB of journal files.

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
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
if [ -n "${BEFORE:-}" ]; then
	mkdir "$T/before"
	git -C "$REPO" archive "$BEFORE" | tar -x -C "$T/before"
	(cd "$T/before" && go test -c -o "$T/before.test" ./internal/logsink)
	for i in $(seq "${PAIRS:-3}"); do
		for which in before after; do
			bin=$T/logsink.test
			[ $which = before ] && bin=$T/before.test
			echo "== pair $i: $which"
			UPKEEP_LOGS_BENCH=1 DIR="$T/data" ROUNDS=1 LOST_LINES=1 PACED_LINES=1 "$bin" -test.run '^TestLogsBench$' -test.v -test.timeout 20m 2>&1 |
				grep -E '^\| (shell|captured)|^moved|^peak|round 1' | tee -a "$OUT/logs-$which.txt"
		done
	done
	# The write path alone, in the process (no disk wait in the figure but the page cache's).
	for i in $(seq "${PAIRS:-3}"); do
		for which in before after; do
			bin=$T/logsink.test
			[ $which = before ] && bin=$T/before.test
			(cd "$T/data" && "$bin" -test.run '^$' -test.bench '^Benchmark(Write|Drain|WriteLine)$' -test.benchtime 2s 2>&1) |
				grep -E '^Benchmark' | sed "s/^/$which: /" | tee -a "$OUT/logs-$which.txt"
		done
	done
	[ "${READ:-0}" = 1 ] || exit 0
fi
if [ "${READ:-0}" = 1 ]; then
	CGO_ENABLED=0 go build -o "$T/upkeep" ./cmd/upkeep
	R="$T/root"
	mkdir -p "$R/var/log" "$R/var/www/www-hist"
	HIST_BYTES=${HIST_BYTES:-1073741824}
	HIST_ROTATE_MB=${HIST_ROTATE_MB:-100}
	REPS=${REPS:-5}
	echo "generating $HIST_BYTES bytes of history (rotation every $HIST_ROTATE_MB MiB, compressed)"
	s=$(date +%s.%N)
	LOGSINK_HELPER=history DIR="$R/var/log" NAME=www-hist HIST_BYTES=$HIST_BYTES HIST_ROTATE_MB=$HIST_ROTATE_MB "$T/logsink.test"
	echo "generated in $(echo "$(date +%s.%N) - $s" | bc) s:"
	ls -l "$R/var/log" | tee -a "$OUT/logs-read.txt"
	du -sh "$R/var/log" | tee -a "$OUT/logs-read.txt"
	printf 'command = ["/bin/sleep", "100000"]\n[log]\nwhen = "never"\nsize = "%dM"\nrotate = %d\n' "$HIST_ROTATE_MB" $((HIST_BYTES / (HIST_ROTATE_MB << 20) + 2)) >"$R/var/www/www-hist/service.toml"
	live=$R/var/log/www-hist.log
	[ -s "$live" ] || live=$R/var/log/www-hist.log.1
	timeit() { # label, command...
		local label=$1 t
		shift
		"$@" >/dev/null 2>&1 # warm the page cache
		for _ in $(seq "$REPS"); do
			s=$(date +%s%N)
			"$@" >"$T/out.txt" 2>/dev/null
			echo $((($(date +%s%N) - s) / 1000))
		done | med | { read -r us; printf '| %s | %d | %.1f ms | %s |\n' "$label" "$(wc -l <"$T/out.txt")" "$(echo "$us / 1000" | bc -l)" "$REPS"; }
	}
	{
		echo "date: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "| command | lines out | median time | reps |"
		echo "| --- | ---: | ---: | ---: |"
		timeit "tail -n 100 (the live file, or .1 if empty)" tail -n 100 "$live"
		timeit "upkeep logs www-hist -n 100 --direct (both streams merged, times)" "$T/upkeep" --root "$R" logs www-hist -n 100 --direct
		timeit "upkeep logs www-hist -n 100 --direct -o cat" "$T/upkeep" --root "$R" logs www-hist -n 100 --direct -o cat
		timeit "upkeep logs -n 100 --direct (no name: every service)" "$T/upkeep" --root "$R" logs -n 100 --direct
		timeit "upkeep logs www-hist --stderr -n 100 --direct (the sparse stream)" "$T/upkeep" --root "$R" logs www-hist --stderr -n 100 --direct
		timeit "upkeep logs www-hist --stdout -n 100 --grep '^00000000' --direct (matches only the oldest lines: reads the whole history, .gz too)" "$T/upkeep" --root "$R" logs www-hist --stdout -n 100 --grep '^00000000' --direct
		timeit "zcat of every .gz | grep -m 100 '^00000000'" sh -c "for f in \$(ls -r $R/var/log/www-hist.log.*.gz); do zcat \$f; done | grep -m 100 '^00000000'"
		timeit "zcat of one 100 MiB .gz | tail -n 100" sh -c "zcat \$(ls $R/var/log/www-hist.log.*.gz | sort -t. -k3 -n | tail -1) | tail -n 100"
		"$T/upkeep" --root "$R" daemon -q &
		dpid=$!
		for _ in $(seq 100); do "$T/upkeep" --root "$R" status >/dev/null 2>&1 && break; sleep 0.1; done
		timeit "upkeep logs www-hist -n 100 (through the daemon's socket)" "$T/upkeep" --root "$R" logs www-hist -n 100
		kill -TERM $dpid; wait $dpid || true
		jr=/lib/systemd/systemd-journal-remote
		if [ -x "$jr" ] && command -v journalctl >/dev/null; then
			# The same lines as a journal: journald's export format into
			# systemd-journal-remote, then journalctl --file.
			# A journal entry of one such line takes about 260 bytes on disk
			# (fields, hashes, entry arrays): JOURNAL_LINES (4,000,000)
			# make a journal of about the history's size on disk, 1 GB.
			lines=${JOURNAL_LINES:-4000000}
			awk -v n="$lines" 'BEGIN { t = 1796000000000000; x = sprintf("%48s", ""); gsub(/ /, "x", x)
				for (i = 0; i < n; i++) printf "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\nSYSLOG_IDENTIFIER=www-hist\nMESSAGE=%010d %s|\n\n", t + i, i + 1, i, x }' |
				"$jr" -o "$T/hist.journal" - 2>/dev/null || true
			echo "journal: $(du -sh "$T"/hist*.journal | tr '\n' ' ')" >&2
			timeit "journalctl --file (same lines, $(ls "$T"/hist*.journal | wc -l) files) -n 100" sh -c "journalctl --no-pager -n 100 --file '$T/hist*.journal'"
		fi
	} | tee -a "$OUT/logs-read.txt"
	exit 0
fi
{
	echo "date: $(date -u +%FT%TZ)"
	echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "logrotate: $(logrotate --version 2>&1 | head -1 || echo none)"
	echo "disk: $(df -h "$T" | tail -1)"
} | tee "$OUT/logs-machine.txt"
UPKEEP_LOGS_BENCH=1 DIR="$T/data" "$T/logsink.test" -test.run '^TestLogsBench$' -test.v -test.timeout 20m 2>&1 |
	tee "$OUT/logs.txt"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/logs-machine.txt"
