#!/usr/bin/env bash
# bench/import.sh — `upkeep import` of a 5,000-stanza monit file, in one bounded run.
#
#   bash bench/import.sh
#
# The input is the benchmarks' own generator (monitFile(5000) in internal/compat/bench_test.go).
# Each run imports it into a new directory, once on tmpfs (/dev/shm) and once on the disk
# (/var/tmp), with /usr/bin/time. The reference on each file system is `tar -x` of the tree the
# import wrote: the same 5,000 directories and files made by a tool that only copies bytes (no
# parsing, no syncfs), the floor of what the file system allows.
#
# Output directories are removed only at the end: on ext4, inodes freed a moment ago make new
# ones slow to allocate for a while (docs/benchmarks.md). Figures go to bench/out/import.txt.
#
# Knobs (env): RUNS (5) OUT (bench/out)

set -uo pipefail

if [ -z "${UPKEEP_BENCH_INNER:-}" ]; then
	export UPKEEP_BENCH_INNER=1
	exec timeout -k 30 300 bash "$0" "$@"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
RUNS=${RUNS:-5}
OUT=${OUT:-$REPO/bench/out}
mkdir -p "$OUT"
WORK=$(mktemp -d /var/tmp/upkeep-import.XXXXXX)
SHM=$(mktemp -d /dev/shm/upkeep-import.XXXXXX)
trap 'rm -rf "$WORK" "$SHM"' EXIT

say() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }

cd "$REPO"
say "building upkeep (static, as the README installs it) and the input"
CGO_ENABLED=0 go build -o "$WORK/upkeep" ./cmd/upkeep || exit 1
go test ./internal/compat/ -run WriteMonit5000 -write-monit5000 "$WORK/monit5000.monitrc" >/dev/null || exit 1
"$WORK/upkeep" import "$WORK/monit5000.monitrc" --to "$WORK/tree" >/dev/null 2>&1
tar -C "$WORK/tree" -cf "$WORK/tree.tar" .

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

{
	echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# $(wc -c <"$WORK/monit5000.monitrc") bytes, $(grep -c '^check ' "$WORK/monit5000.monitrc") stanzas"
	echo "# fs run wall_s user_s sys_s maxrss_kb"
} >"$OUT/import.txt"
for fs in tmpfs ext4; do
	base=$SHM
	[ "$fs" = ext4 ] && base=$WORK
	for i in $(seq "$RUNS"); do
		/usr/bin/time -f "$fs upkeep %e %U %S %M" -a -o "$OUT/import.txt" \
			"$WORK/upkeep" import "$WORK/monit5000.monitrc" --to "$base/imp$i" >/dev/null 2>&1
		mkdir "$base/tar$i"
		/usr/bin/time -f "$fs tar %e %U %S %M" -a -o "$OUT/import.txt" tar -C "$base/tar$i" -xf "$WORK/tree.tar"
	done
	n=$(find "$base/imp1" -name service.toml | wc -l)
	[ "$n" = 5000 ] || say "warning: $fs: $n service.toml files, not 5000"
done
cat "$OUT/import.txt"
for fs in tmpfs ext4; do
	for who in upkeep tar; do
		printf '%-6s %-6s wall median %s s (%s)\n' "$fs" "$who" \
			"$(awk -v f=$fs -v w=$who '$1==f && $2==w {print $3}' "$OUT/import.txt" | median)" \
			"$(awk -v f=$fs -v w=$who '$1==f && $2==w {printf "%s ", $3}' "$OUT/import.txt")"
	done
done | tee -a "$OUT/import.txt"
