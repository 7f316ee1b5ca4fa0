#!/usr/bin/env bash
# bench/sandbox.sh — what `upkeep test` adds to a plain start.
#
#   sudo bash bench/sandbox.sh
#
# One service (a shell that execs sleep, ready_after = "0s", no checks, no
# [test]) on a temp root, N times each:
#   sandbox  `upkeep test` from launch to its exit: namespaces, overlay,
#            provision, daemon as PID 1, running, stop, teardown;
#   plain    `upkeep daemon` on the same root from launch until `status`
#            says running, then `stop` and SIGTERM, until the daemon is gone;
#   unshare  Debian's unshare (mount, pid, net, uts, ipc) + an overlayfs of
#            the same root mounted by hand + /bin/true inside: the kernel's
#            share of the cost.
# Prints the median and p90 in ms of each. Knobs (env): N (20)

set -uo pipefail
if [ -z "${UPKEEP_BENCH_INNER:-}" ]; then
	export UPKEEP_BENCH_INNER=1
	exec timeout -k 30 300 bash "$0" "$@"
fi
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
N=${N:-20}
say() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
command -v unshare >/dev/null || die "unshare (util-linux) is missing"

T=$(mktemp -d /tmp/upkeep-sandbox-bench.XXXXXX) || die "mktemp"
trap 'rm -rf "$T"' EXIT
(cd "$REPO" && CGO_ENABLED=0 go build -o "$T/upkeep" ./cmd/upkeep) || die "build"
R=$T/root
mkdir -p "$R/var/www/www-bench"
cat > "$R/var/www/www-bench/service.toml" <<'TOML'
script = "exec sleep 600"
ready_after = "0s"
[stop]
timeout = "2s"
TOML

now() { date +%s%N; }
stats() { sort -n | awk '{a[NR]=$1} END {printf "median %.1f ms  p90 %.1f ms  (n=%d)\n", a[int((NR+1)/2)]/1e6, a[int(NR*0.9+0.5)]/1e6, NR}'; }

sandbox() {
	for _ in $(seq "$N"); do
		t0=$(now)
		"$T/upkeep" --root "$R" test www-bench >/dev/null 2>&1 || die "upkeep test failed"
		echo $(($(now) - t0))
	done | stats
}

plain() {
	for _ in $(seq "$N"); do
		t0=$(now)
		"$T/upkeep" --root "$R" daemon -q 2>/dev/null &
		pid=$!
		until "$T/upkeep" --root "$R" status --json www-bench 2>/dev/null | grep -q '"state": *"running"'; do :; done
		"$T/upkeep" --root "$R" stop www-bench >/dev/null
		kill -TERM "$pid"; wait "$pid"
		echo $(($(now) - t0))
	done | stats
	rm -rf "$R/var/log" "$R/run" "$R/var/db"
}

byhand() {
	mkdir -p "$T/s"
	for _ in $(seq "$N"); do
		t0=$(now)
		unshare -m -p -n -u -i -f --propagation private sh -c "
			mount -t tmpfs none '$T/s' && mkdir '$T/s/u' '$T/s/w' '$T/s/m' &&
			mount -t overlay overlay -o 'lowerdir=$R,upperdir=$T/s/u,workdir=$T/s/w' '$T/s/m' &&
			/bin/true" || die "unshare"
		echo $(($(now) - t0))
	done | stats
}

say "sandbox: $(sandbox)"
say "plain:   $(plain)"
say "unshare: $(byhand)"
