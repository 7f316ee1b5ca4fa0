#!/usr/bin/env bash
# bench/sandbox.sh — what `upkeep test` adds to a plain start, start and
# teardown apart.
#
#   sudo bash bench/sandbox.sh
#
# One service (a shell that execs sleep, ready_after = "0s", no checks, no
# [test]) on a temp root, N times each:
#   sandbox  `upkeep test --json`: start = launch to the service running
#            inside (the report's start_ms: namespaces, overlay, provision,
#            daemon as PID 1, running); teardown = the service stopped to
#            the sandbox gone (teardown_ms: PID 1 killed and reaped, the
#            kernel dropping the namespaces); total = launch to exit;
#   plain    `upkeep daemon` on the same root: start = launch until `status`
#            says running; teardown = after `stop`, SIGTERM until the daemon
#            is gone;
#   unshare  Debian's unshare (mount, pid, net, uts, ipc) + an overlayfs of
#            the same root mounted by hand: start = launch until a shell
#            inside has mounted it; teardown = from there to unshare's exit;
#   nspawn   systemd-nspawn (Debian's systemd-container) --volatile=overlay
#            --private-network on the same root (its /usr bound from the
#            host): start = launch until /bin/sh inside runs; teardown =
#            from there to exit. Skipped with a note when it is missing.
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
stats() { sort -n | awk '{a[NR]=$1} END {printf "median %.1f ms  p90 %.1f ms  (n=%d)", a[int((NR+1)/2)]/1e6, a[int(NR*0.9+0.5)]/1e6, NR}'; }
# Each run appends "start teardown total" (ns) to a file; report prints
# the three columns' stats.
report() {
	printf 'start %s | teardown %s | total %s\n' "$(cut -d' ' -f1 "$1" | stats)" "$(cut -d' ' -f2 "$1" | stats)" "$(cut -d' ' -f3 "$1" | stats)"
}

sandbox() {
	: > "$T/sandbox.txt"
	for _ in $(seq "$N"); do
		t0=$(now)
		out=$("$T/upkeep" --root "$R" test www-bench --json 2>/dev/null) || die "upkeep test failed"
		t1=$(now)
		s=$(printf '%s' "$out" | sed -n 's/^  "start_ms": \([0-9]*\).*/\1/p')
		d=$(printf '%s' "$out" | sed -n 's/^  "teardown_ms": \([0-9]*\).*/\1/p')
		[ -n "$s" ] && [ -n "$d" ] || die "no start_ms/teardown_ms in the report"
		echo "$((s * 1000000)) $((d * 1000000)) $((t1 - t0))" >> "$T/sandbox.txt"
	done
	report "$T/sandbox.txt"
}

plain() {
	: > "$T/plain.txt"
	for _ in $(seq "$N"); do
		t0=$(now)
		"$T/upkeep" --root "$R" daemon -q 2>/dev/null &
		pid=$!
		until "$T/upkeep" --root "$R" status --json www-bench 2>/dev/null | grep -q '"state": *"running"'; do :; done
		t1=$(now)
		"$T/upkeep" --root "$R" stop www-bench >/dev/null
		t2=$(now)
		kill -TERM "$pid"; wait "$pid"
		t3=$(now)
		echo "$((t1 - t0)) $((t3 - t2)) $((t3 - t0))" >> "$T/plain.txt"
	done
	report "$T/plain.txt"
	rm -rf "$R/var/log" "$R/run" "$R/var/db"
}

byhand() {
	mkdir -p "$T/s"
	: > "$T/unshare.txt"
	for _ in $(seq "$N"); do
		t0=$(now)
		t1=$(unshare -m -p -n -u -i -f --propagation private sh -c "
			mount -t tmpfs none '$T/s' && mkdir '$T/s/u' '$T/s/w' '$T/s/m' &&
			mount -t overlay overlay -o 'lowerdir=$R,upperdir=$T/s/u,workdir=$T/s/w' '$T/s/m' &&
			date +%s%N") || die "unshare"
		t2=$(now)
		echo "$((t1 - t0)) $((t2 - t1)) $((t2 - t0))" >> "$T/unshare.txt"
	done
	report "$T/unshare.txt"
}

nspawn() {
	command -v systemd-nspawn >/dev/null || { echo "skipped: no systemd-nspawn (apt-get install systemd-container)"; return; }
	# nspawn wants an OS tree: /usr (the host's, bound read-only), the
	# merged-/usr links, an os-release.
	local D=$T/nspawn-root
	cp -a "$R" "$D" && mkdir -p "$D/usr" "$D/etc" && cp /etc/os-release "$D/etc/"
	for d in bin sbin lib lib64; do [ -L "/$d" ] && ln -sfn "usr/$d" "$D/$d"; done
	: > "$T/nspawn.txt"
	for _ in $(seq "$N"); do
		t0=$(now)
		t1=$(systemd-nspawn -q --register=no --keep-unit -D "$D" --volatile=overlay --private-network \
			--bind-ro=/usr /bin/sh -c 'date +%s%N' 2>/dev/null | tr -d '\r') || { echo "skipped: systemd-nspawn failed here"; return; }
		t2=$(now)
		echo "$((t1 - t0)) $((t2 - t1)) $((t2 - t0))" >> "$T/nspawn.txt"
	done
	report "$T/nspawn.txt"
}

say "sandbox: $(sandbox)"
say "plain:   $(plain)"
say "unshare: $(byhand)"
say "nspawn:  $(nspawn)"
