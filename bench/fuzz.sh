#!/usr/bin/env bash
# bench/fuzz.sh — every fuzz target of the repository, each for FUZZTIME, in one bounded run.
#
#   bash bench/fuzz.sh                 # 10 minutes per target (the issue's figure)
#   FUZZTIME=30s bash bench/fuzz.sh    # a quick pass
#   ONLY=FuzzPolicy bash bench/fuzz.sh # one target (a regexp on the name)
#
# Targets are found, not listed: `go test -list '^Fuzz'` in each package, so a parser that gains a
# FuzzXxx is fuzzed here without editing this script. A crasher is written by go test itself to
# the package's testdata/fuzz/FuzzXxx/ (commit it: plain `go test` then replays it for ever). With
# KEEP=1 the inputs the fuzzer found interesting (its cache corpus) are copied there too, as the
# kept corpora of earlier sessions were.
#
# Figures: bench/out/fuzz.md, one row per target: executions, executions per second, new
# interesting inputs, and the verdict. The run is bounded: each target gets FUZZTIME plus a
# minute of `timeout`, and the script stops at the first crasher unless ALL=1.
#
# Knobs (env): FUZZTIME (10m) ONLY (.) KEEP (0) ALL (0) PARALLEL (GOMAXPROCS, 2 here) OUT (bench/out)

set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
FUZZTIME=${FUZZTIME:-10m}
ONLY=${ONLY:-.}
OUT=${OUT:-$REPO/bench/out}
PARALLEL=${PARALLEL:-$(nproc)}
mkdir -p "$OUT"
cd "$REPO" || exit 1
export PATH="$PATH:/usr/local/go/bin"

# FUZZTIME in seconds, for the outer timeout.
secs() {
	local t=$1
	case $t in
	*h) echo $((${t%h} * 3600)) ;;
	*m) echo $((${t%m} * 60)) ;;
	*s) echo "${t%s}" ;;
	*) echo "$t" ;;
	esac
}
limit=$(($(secs "$FUZZTIME") + 60))

say() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }

# Every module of the repository: ./... leaves out nested ones (internal/shim).
targets=()
for mod in $(git ls-files '*go.mod' | xargs -n1 dirname); do
	for pkg in $(cd "$mod" && go list ./...); do
		for f in $(cd "$mod" && go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' | grep -E "$ONLY"); do
			targets+=("$mod $pkg $f")
		done
	done
done
if ((${#targets[@]} == 0)); then
	say "no fuzz target matches $ONLY"
	exit 1
fi
say "${#targets[@]} targets, $FUZZTIME each, $PARALLEL workers; load $(cut -d' ' -f1-3 /proc/loadavg)"

report=$OUT/fuzz.md
{
	echo "# bench/fuzz.sh — $(date -u +%FT%TZ), FUZZTIME=$FUZZTIME, $PARALLEL workers, $(go version | cut -d' ' -f3)"
	echo
	echo "| package | target | executions | per second | new inputs | verdict |"
	echo "| --- | --- | ---: | ---: | ---: | --- |"
} >"$report"

failed=0
for t in "${targets[@]}"; do
	read -r mod pkg name <<<"$t"
	log=$OUT/fuzz-$name-$(basename "$pkg").log
	say "$pkg $name"
	(cd "$mod" && timeout -k 10 "$limit" go test "$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -parallel "$PARALLEL") >"$log" 2>&1
	rc=$?
	# go test's progress lines: "fuzz: elapsed: 10m0s, execs: 1234567 (2057/sec), new interesting: 3 (total: 120)"
	last=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -1)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	elapsed=$(sed -nE 's/^fuzz: elapsed: ([^,]+),.*/\1/p' <<<"$last")
	newin=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	rate="-"
	if [ -n "$execs" ] && [ -n "$elapsed" ]; then
		rate=$(awk -v e="$execs" -v t="$elapsed" 'BEGIN {
			s = 0; if (match(t, /[0-9]+h/)) s += substr(t, RSTART, RLENGTH-1) * 3600
			if (match(t, /[0-9]+m/)) s += substr(t, RSTART, RLENGTH-1) * 60
			if (match(t, /[0-9.]+s/)) s += substr(t, RSTART, RLENGTH-1)
			if (s > 0) printf "%.0f", e / s; else print "-" }')
	fi
	verdict=ok
	if ((rc != 0)); then
		verdict="FAIL (exit $rc, see $(basename "$log"))"
		failed=1
	fi
	echo "| ${pkg#upkeep/} | $name | ${execs:--} | $rate | ${newin:--} | $verdict |" >>"$report"
	if [ "${KEEP:-0}" = 1 ]; then
		dir=$(cd "$mod" && go list -f '{{.Dir}}' "$pkg")
		cache=$(go env GOCACHE)/fuzz/$pkg/$name
		if [ -d "$cache" ]; then
			mkdir -p "$dir/testdata/fuzz/$name"
			cp -n "$cache"/* "$dir/testdata/fuzz/$name/" 2>/dev/null
		fi
	fi
	if ((failed)) && [ "${ALL:-0}" != 1 ]; then
		break
	fi
done
say "load $(cut -d' ' -f1-3 /proc/loadavg); report: $report"
cat "$report"
exit $failed
