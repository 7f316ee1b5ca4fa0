#!/usr/bin/env bash
# bench/privs.sh — what the privilege shim (upkeep __exec) costs a restart.
#
#   sudo bash bench/privs.sh          (root: one service runs as nobody)
#
# One daemon, three services that are the same `sleep` but for their privileges:
#   plain    runs as root with the defaults: one fork+exec, no shim;
#   shim     runs as nobody: the defaults (no capabilities, no_new_privileges)
#            need the shim, so each start is fork, exec of upkeep, exec of sleep;
#   rootnnp  runs as root with no_new_privileges = true: the shim, as root.
# Each service's sleep is SIGKILLed N times; bench/measure times kill → the new
# sleep has exec'd (p50/p95), as bench/run.sh does for crash → restart.
# Everything is in a temp dir; the EXIT trap stops the daemon and removes it.
#
# Knobs (env): N (100) GAP (100ms)

set -uo pipefail
if [ -z "${UPKEEP_BENCH_INNER:-}" ]; then
	export UPKEEP_BENCH_INNER=1
	exec timeout -k 30 240 bash "$0" "$@"
fi
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
N=${N:-100}
GAP=${GAP:-100ms}
# say, die and the cleanup shared by the bench scripts
. "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root"

T=$(mktemp -d /tmp/upkeep-privs.XXXXXX) || die "mktemp"
chmod 755 "$T"       # the nobody service enters its directory as nobody
RUN=$(( (RANDOM * 32768 + RANDOM) % 900000 + 100000 ))
M_PLAIN="8${RUN}1"
M_SHIM="8${RUN}2"
M_ROOT="8${RUN}3"
DAEMON=
MEASURE="$T/measure"
UPKEEP_ROOTS=("$T/root")
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	STARTED=()
	[ -n "$DAEMON" ] && STARTED=("upkeep:$DAEMON")
	bench_stop_started 50
	[ -n "$DAEMON" ] && kill -KILL "$DAEMON" 2>/dev/null
	bench_cleanup 0 20 "$M_PLAIN,$M_SHIM,$M_ROOT" >/dev/null
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "building upkeep (CGO_ENABLED=0) and the measure helper"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$T/upkeep" ./cmd/upkeep && go build -o "$T/measure" ./bench/measure) || die "go build failed"

service() { # NAME MARKER EXTRA
	mkdir -p "$T/root/var/www/$1"
	cat >"$T/root/var/www/$1/service.toml" <<TOML
command = ["/bin/sleep", "$2"]
ready_after = "0s"
$3
[restart]
backoff = "1ms"
max_backoff = "1s"
stable_after = "50ms"
limit = 1000
window = "60s"
TOML
}
service www-plain "$M_PLAIN" ""
service www-shim "$M_SHIM" 'user = "nobody"'
service www-rootnnp "$M_ROOT" 'no_new_privileges = true'
chmod -R a+rX "$T/root"
cd "$T" || die "cd"
"$T/upkeep" --root "$T/root" daemon -q >"$T/daemon.out" 2>&1 &
DAEMON=$!
for m in "$M_PLAIN" "$M_SHIM" "$M_ROOT"; do
	for _ in $(seq 100); do [ "$("$T/measure" count -marker "$m")" -ge 1 ] && break; sleep 0.1; done
done
for c in plain:$M_PLAIN shim:$M_SHIM rootnnp:$M_ROOT; do
	line=$(timeout 200 "$T/measure" restart -parent "$DAEMON" -marker "${c#*:}" -n "$N" -gap "$GAP" -timeout 180s) ||
		{ say "${c%%:*}: measurement failed"; cat "$T/daemon.out" >&2; exit 1; }
	echo "${c%%:*}: crash→restart $line"
done
