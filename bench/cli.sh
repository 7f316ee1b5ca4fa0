#!/usr/bin/env bash
# bench/cli.sh: what the operator's CLI costs (issue 15, cliux part).
#   1. the static binary's size (CGO_ENABLED=0), this tree and, with BASE=DIR, another checkout's
#   2. `upkeep __complete start ""` (what a Tab runs) on a root of 1,000 services and on an empty one,
#      and `upkeep --version` (a start of the binary that does nothing) beside them
# Usage: [BASE=/work/main] [N=50] bash bench/cli.sh
set -euo pipefail
cd "$(dirname "$0")/.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
N=${N:-50}
go build -o "$T/measure" ./bench/measure
CGO_ENABLED=0 go build -o "$T/upkeep" ./cmd/upkeep
echo "binary: $(stat -c %s "$T/upkeep") bytes"
if [ -n "${BASE:-}" ]; then
	(cd "$BASE" && CGO_ENABLED=0 go build -o "$T/upkeep-base" ./cmd/upkeep)
	echo "binary of $BASE: $(stat -c %s "$T/upkeep-base") bytes"
fi
R="$T/root"
for i in $(seq -w 1 1000); do
	mkdir -p "$R/var/www/www-s$i"
	echo 'command = ["/bin/true"]' >"$R/var/www/www-s$i/service.toml"
done
mkdir -p "$T/empty"
echo "__complete start, 1,000 services: $("$T/measure" timecmd -n "$N" -- "$T/upkeep" --root "$R" __complete start '')"
echo "__complete start, no services:    $("$T/measure" timecmd -n "$N" -- "$T/upkeep" --root "$T/empty" __complete start '')"
echo "--version:                        $("$T/measure" timecmd -n "$N" -- "$T/upkeep" --version)"
